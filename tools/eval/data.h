// data.h: the tokens lm-eval scores, whatever their source: a split of a
// packed dataset (--data), token streams (--tokens) or text files (--text,
// tokenized with the checkpoint's vocabulary once it is known).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/loader.h"
#include "text/vocab.h"
#include "util/status.h"

namespace lm {

struct EvalData {
  std::string name;                     // "shards/" or the files, for people and the JSON
  std::string split;                    // "val", "train", or "" for files
  uint64_t identity = 0;                // names this exact data
  int64_t n_tokens = 0;                 // all of them (--limit-tokens applies later)
  uint64_t vocab_id = 0;                // 0: text, tokenized with the checkpoint's vocabulary
  std::vector<std::string> text_files;  // --text: tokenized by TokenizeText
  std::vector<int32_t> mem;             // files: the tokens
  std::unique_ptr<Dataset> ds;
  Split ds_split = Split::kVal;
  std::vector<uint32_t> buf;

  // Tokens [start, start+n) into out (ids above INT32_MAX become -1).
  Status Read(int64_t start, int64_t n, int32_t* out);
  bool needs_tokenizing() const { return !text_files.empty() && mem.empty(); }
};

// A split ("val" or "train") of a packed dataset; `limit` (0: none) bounds
// the tokens whose shards are checked up front.
Status OpenDataset(const std::string& dir, const std::string& split, uint64_t limit, EvalData* d);
// Token streams (lm-tokenize encode's output), concatenated; one vocabulary.
Status ReadTokenFiles(const std::vector<std::string>& files, EvalData* d);
// Text files: their identity now, their tokens by TokenizeText.
Status NameTextFiles(const std::vector<std::string>& files, EvalData* d);
// Each text file one document ending in <|endoftext|>, after one that starts
// the data, in `vocab`.
Status TokenizeText(const Vocab& vocab, EvalData* d);

}  // namespace lm
