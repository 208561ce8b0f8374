// vocab.h: a byte-level BPE vocabulary (tok.bpe; docs/formats/vocab.md) and the
// encode/decode API that lm-tokenize, lm-eval and lm-sample share.
//
// Ids: a vocabulary lists its tokens in id order (docs/formats/vocab.md). One
// that lm-tokenize trains has the 256 byte tokens at ids 0..255 (id = byte),
// then one id per merge in rank order, then the special tokens; an imported one
// keeps its original ids (GPT-2's bytes are not at 0..255, cl100k has unused
// ids). <|endoftext|> is always present.
//
// Encoding is tiktoken's: cut the text into chunks with the vocabulary's
// pattern; a chunk that is itself a token is that token; otherwise start from
// its bytes and repeatedly merge the adjacent pair whose concatenation is the
// token of lowest id (leftmost on ties) until no pair is a token.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/vocab.h"
#include "util/status.h"

namespace lm {

class Pretokenizer;

class Vocab {
 public:
  Vocab();
  ~Vocab();
  Vocab(Vocab&&) noexcept;
  Vocab& operator=(Vocab&&) noexcept;

  // Reads and verifies a vocabulary file (magic, version, checksum).
  static Status Load(const std::string& path, Vocab* out);

  uint32_t size() const;    // number of ids
  uint64_t id() const;      // identity hash (XXH3 of the contents)
  uint32_t eot_id() const;  // <|endoftext|>
  bool is_special(uint32_t id) const;
  // The bytes a token stands for (a special token: its text).
  const std::string& token_bytes(uint32_t id) const;

  // Text to ids. Text that looks like a special token is ordinary text unless
  // allow_special. Does not append <|endoftext|>.
  Status Encode(const std::string& text, bool allow_special, std::vector<uint32_t>* out) const;
  // Ids back to bytes (exact; may be invalid UTF-8 when cut mid-character).
  // Invalid for an id >= size().
  Status Decode(const uint32_t* ids, size_t n, std::string* out) const;

  // ---- additions for lm-tokenize (train, import, export, stats) ----
  // Builds a vocabulary from a parsed/constructed file; `id` is its identity.
  static Status FromFile(VocabFile file, uint64_t id, Vocab* out);
  const VocabFile& file() const;
  PatternKind pattern_kind() const;
  const std::string& pattern() const;
  bool is_unused(uint32_t id) const;
  // The pre-tokenizer of this vocabulary's pattern.
  const Pretokenizer& pretokenizer() const;
  // The id of a non-special token with exactly these bytes, or kNoId.
  uint32_t Lookup(const char* p, size_t n) const;
  // Encodes one pre-tokenized chunk (appends to *out).
  void EncodeChunk(const char* p, size_t n, std::vector<uint32_t>* out) const;
  // Encodes ordinary text (no special tokens) from [p, p+n), appending.
  Status EncodeOrdinary(const char* p, size_t n, std::vector<uint32_t>* out) const;
  // EncodeChunk without the whole-token shortcut, by one merge algorithm:
  // 0 the small-array loop (n <= 256), 1 the heap, 2 the rank buckets. They
  // must agree; tests check that they do.
  void EncodeChunkForTest(const char* p, size_t n, int algo, std::vector<uint32_t>* out) const;
  // The merge that makes token `id`: the pair the merge loop joins last when
  // it encodes the token's bytes as a chunk of their own without the
  // whole-token shortcut. It is the only pair that ever becomes `id` in any
  // chunk (inside a longer chunk, the parts of the token's bytes can only
  // merge as they do alone, or the token never forms). False for bytes,
  // specials and unused ids, and for a token the loop does not end in (it is
  // then produced only as a whole chunk). O(n^2) in the token's length.
  bool LastMerge(uint32_t id, uint32_t* left, uint32_t* right) const;
  // The id of a special token's text, or kNoId.
  uint32_t SpecialId(const std::string& text) const;
  static constexpr uint32_t kNoId = 0xffffffffu;

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace lm
