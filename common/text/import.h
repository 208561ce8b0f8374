// import.h: vocabularies from other tools (tiktoken's rank files, GPT-2's
// encoder.json + vocab.bpe). The way out (tokenizer.json, GGUF's lists) is
// text/export.h.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "format/vocab.h"
#include "text/vocab.h"
#include "util/status.h"

namespace lm {

// A special token and its id (kNoId: the next free id).
struct SpecialArg {
  std::string text;
  uint32_t id;
};

// Parses "TOKEN=ID" or "TOKEN" (id assigned later). Errors quote s; the
// caller says where it came from.
Status ParseSpecialArg(const std::string& s, SpecialArg* out);

// tiktoken's format: one "BASE64 RANK" line per token; the rank is the id.
// Specials without an id go after the highest id; <|endoftext|> is added when
// absent. Both importers refuse files whose ids are more than half unused.
Status ImportTiktoken(const std::string& path, PatternKind kind, const std::string& regex,
                      const std::vector<SpecialArg>& specials, VocabFile* out);
// GPT-2's encoder.json (token -> id, in its printable byte alphabet) and
// vocab.bpe (merges in rank order).
Status ImportGpt2(const std::string& encoder_json, const std::string& vocab_bpe, PatternKind kind,
                  const std::string& regex, const std::vector<SpecialArg>& specials,
                  VocabFile* out);

// GPT-2's printable stand-in for each byte (bytes_to_unicode), as UTF-8.
const std::string& Gpt2ByteChar(uint8_t b);

}  // namespace lm
