// vocab_check.h: the checks the vocabulary targets share (vocab, tiktoken, gpt2).
#pragma once

#include <string>

#include "format/vocab.h"
#include "tests/fuzz/fuzz.h"

namespace lm_fuzz {

inline bool SameTable(const lm::VocabFile& a, const lm::VocabFile& b) {
  if (a.pattern_kind != b.pattern_kind || a.pattern != b.pattern || a.eot_id != b.eot_id ||
      a.tokens.size() != b.tokens.size())
    return false;
  for (size_t i = 0; i < a.tokens.size(); i++) {
    const lm::VocabToken &x = a.tokens[i], &y = b.tokens[i];
    if (x.kind != y.kind || x.bytes != y.bytes) return false;
    if (x.kind == lm::TokenKind::kMerge && (x.left != y.left || x.right != y.right)) return false;
  }
  return true;
}

// A vocabulary an importer made. Its table is checked as it is written
// (lm-tokenize import names the input when the writer refuses it: "no token
// for byte 25"), so the writer may refuse it, as Invalid; what the writer
// accepts must decode to the same table.
inline void CheckImported(const lm::VocabFile& v) {
  std::string bytes;
  uint64_t id = 0, id2 = 0;
  lm::Status s = lm::EncodeVocabFile(v, &bytes, &id);
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == lm::Status::kInvalid);
    return;
  }
  lm::VocabFile back;
  FUZZ_CHECK(
      lm::DecodeVocabFile((const uint8_t*)bytes.data(), bytes.size(), "imported", &back, &id2)
          .ok());
  FUZZ_CHECK(id == id2 && SameTable(v, back));
}

}  // namespace lm_fuzz
