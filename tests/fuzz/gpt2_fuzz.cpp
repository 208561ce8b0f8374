// gpt2_fuzz.cpp: GPT-2's encoder.json and vocab.bpe through ImportGpt2, as
// `lm-tokenize import --gpt2 encoder.json vocab.bpe` reads them.
//
// The input is encoder.json, a NUL byte, then vocab.bpe (JSON text holds no
// NUL, so the cut is unambiguous; an input without one is encoder.json with
// an empty vocab.bpe). An import that succeeds must be a vocabulary the
// writer accepts (EncodeVocabFile), which decodes back to the same table.
#include <cstring>
#include <string>

#include "format/vocab.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/vocab_check.h"
#include "text/import.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static lm_fuzz::MemFile encoder("encoder.json"), merges("vocab.bpe");
  const uint8_t* nul = (const uint8_t*)memchr(data, 0, size);
  size_t cut = nul ? (size_t)(nul - data) : size;
  encoder.Set(data, cut);
  merges.Set(data + cut + (nul ? 1 : 0), size - cut - (nul ? 1 : 0));
  lm::VocabFile v;
  if (!lm::ImportGpt2(encoder.path(), merges.path(), lm::PatternKind::kGpt2, "", {}, &v).ok())
    return 0;
  lm_fuzz::Accepted()++;
  lm_fuzz::CheckImported(v);
  return 0;
}
