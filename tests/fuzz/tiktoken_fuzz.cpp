// tiktoken_fuzz.cpp: a tiktoken rank file through ImportTiktoken, as
// `lm-tokenize import --tiktoken FILE` reads it.
//
// The first byte of the input picks the pattern kind (byte % 5) and whether
// the import gets --special arguments (byte & 8); the rest is the file. An
// import that succeeds must be a vocabulary the writer accepts
// (EncodeVocabFile), which decodes back to the same table, and importing the
// same file again gives the same vocabulary.
#include <string>
#include <vector>

#include "format/vocab.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/vocab_check.h"
#include "text/import.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static lm_fuzz::MemFile file("fuzz.tiktoken");
  file.Set(data + 1, size - 1);
  const lm::PatternKind kind = (lm::PatternKind)(data[0] % 5);
  std::vector<lm::SpecialArg> specials;
  if (data[0] & 8) specials = {{"<|endoftext|>", 400}, {"<|fim|>", lm::Vocab::kNoId}};
  lm::VocabFile v;
  if (!lm::ImportTiktoken(file.path(), kind, "\\w+|.", specials, &v).ok()) return 0;
  lm_fuzz::Accepted()++;
  lm_fuzz::CheckImported(v);
  lm::VocabFile again;
  FUZZ_CHECK(lm::ImportTiktoken(file.path(), kind, "\\w+|.", specials, &again).ok());
  FUZZ_CHECK(lm_fuzz::SameTable(v, again));
  return 0;
}
