// vocab.h: a byte-level BPE vocabulary (tok.bpe; docs/formats/vocab.md) and the
// encode/decode API that lm-tokenize, lm-eval and lm-sample share.
//
// Ids: 0..255 are the byte tokens... (exact id assignment in the spec), then one
// id per merge in rank order, then the special tokens; <|endoftext|> is always
// present.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace lm {

class Vocab {
 public:
  Vocab();
  ~Vocab();
  Vocab(Vocab&&) noexcept;
  Vocab& operator=(Vocab&&) noexcept;

  // Reads and verifies a vocabulary file (magic, version, checksum).
  static Status Load(const std::string& path, Vocab* out);

  uint32_t size() const;       // number of ids
  uint64_t id() const;         // identity hash (XXH3 of the contents)
  uint32_t eot_id() const;     // <|endoftext|>
  bool is_special(uint32_t id) const;
  // The bytes a token stands for (a special token: its text).
  const std::string& token_bytes(uint32_t id) const;

  // Text to ids. Text that looks like a special token is ordinary text unless
  // allow_special. Does not append <|endoftext|>.
  Status Encode(const std::string& text, bool allow_special, std::vector<uint32_t>* out) const;
  // Ids back to bytes (exact; may be invalid UTF-8 when cut mid-character).
  // Invalid for an id >= size().
  Status Decode(const uint32_t* ids, size_t n, std::string* out) const;

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace lm
