// export.h: a vocabulary as other tools describe it: Hugging Face tokenizers'
// tokenizer.json and transformers' tokenizer_config.json, and what llama.cpp's
// GGUF tokenizer holds (each token's text in GPT-2's byte alphabet, the merge
// list, the name of its pre-tokenizer). Nothing here writes a file.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "text/vocab.h"
#include "util/status.h"

namespace lm {

// One merge of a merge-list BPE: left + right -> id, ranked by id.
struct BpeMerge {
  uint32_t left, right, id;
};

// The merges that make v's tokens: one per token that some merge makes
// (Vocab::LastMerge), in id order. A merge-list BPE (tokenizers', llama.cpp's)
// given these, and a lookup of a chunk that is a whole token first, encodes
// exactly as tiktoken does: every pair tiktoken joins is the one listed for
// what it joins into, at the same rank, and no other listed pair is ever
// adjacent before it. *whole_only (optional) counts the multi-byte tokens no
// merge makes: only a chunk that is the whole token gives them.
void MergeList(const Vocab& v, std::vector<BpeMerge>* out, size_t* whole_only = nullptr);

// Every id's text as tokenizers and llama.cpp know it: an ordinary token's
// bytes in GPT-2's printable byte alphabet (Gpt2ByteChar), a special token's
// own text, "" for an unused id. Invalid when a special is not UTF-8 or is
// spelled like an ordinary token's text (both tools would give it that id).
Status ByteLevelTexts(const Vocab& v, std::vector<std::string>* texts);

struct HfExportOptions {
  // A post-processor puts <|endoftext|> before every encoded text, as
  // lm-sample puts it before a prompt (and as every document follows one in
  // training): for a model's tokenizer. Off: the ids lm-tokenize encode gives.
  bool start_of_text = false;
};
// A tokenizers tokenizer.json (byte-level BPE, MergeList's merges as "A B"
// strings, which tokenizers 0.19 and later read) that encodes like v.
Status ExportHf(const Vocab& v, const HfExportOptions& opt, std::string* json);

// The tokenizer files of a model directory, as (name, bytes): tokenizer.json
// (start_of_text on) and tokenizer_config.json (PreTrainedTokenizerFast,
// <|endoftext|> as bos and eos, model_max_length = context, no clean-up of
// spaces on decoding).
Status HfTokenizerFiles(const Vocab& v, int context,
                        std::vector<std::pair<std::string, std::string>>* files);

// llama.cpp's name for the pre-tokenizer (GGUF tokenizer.ggml.pre) that cuts
// text as v's pattern does: gpt2 "gpt-2", cl100k "llama-bpe" (Llama 3's, the
// same regex), o200k "gpt-4o"; a custom regex only when it is one of those
// patterns as lm or tiktoken spells it. Invalid otherwise (llama.cpp would
// cut the text some other way).
Status LlamaCppPretokenizer(const Vocab& v, std::string* name);

}  // namespace lm
