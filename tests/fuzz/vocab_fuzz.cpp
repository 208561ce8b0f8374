// vocab_fuzz.cpp: tok.bpe (docs/formats/vocab.md) through DecodeVocabFile.
//
// Each input is read as given, then with its checksum (the last 8 bytes)
// recomputed, so that mutations reach the body behind it. An accepted
// vocabulary must encode again (EncodeVocabFile) to bytes that decode to the
// same table and identity, byte for byte when the input used shortest
// varints; as a Vocab its ordinary tokens must encode and decode back to
// their bytes; and its Hugging Face export must succeed or refuse cleanly.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "format/vocab.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/vocab_check.h"
#include "text/import.h"
#include "text/vocab.h"
#include "util/codec.h"
#include "util/hash.h"

namespace {

using lm::VocabFile;
using lm_fuzz::SameTable;

// The first 64 ordinary tokens of two bytes or more encode and decode back to
// their bytes, and the three merge algorithms agree on them (a byte token
// has nothing to merge; more tokens cost speed, not coverage).
void CheckEncoder(const VocabFile& f, uint64_t id) {
  lm::Vocab v;
  if (!lm::Vocab::FromFile(f, id, &v).ok()) return;  // e.g. a custom regex PCRE2 refuses
  int checked = 0;
  for (uint32_t i = 0; i < f.tokens.size() && checked < 64; i++) {
    if (v.is_special(i) || v.is_unused(i) || f.tokens[i].bytes.size() < 2) continue;
    checked++;
    const std::string& b = f.tokens[i].bytes;
    std::vector<uint32_t> ids;
    FUZZ_CHECK(v.Encode(b, false, &ids).ok());
    std::string back;
    FUZZ_CHECK(v.Decode(ids.data(), ids.size(), &back).ok());
    FUZZ_CHECK(back == b);
    std::vector<uint32_t> a0, a1, a2;
    v.EncodeChunkForTest(b.data(), b.size(), 0, &a0);
    v.EncodeChunkForTest(b.data(), b.size(), 1, &a1);
    v.EncodeChunkForTest(b.data(), b.size(), 2, &a2);
    FUZZ_CHECK(a0 == a1 && a1 == a2);
  }
  std::string hf;
  if (lm::ExportHf(v, &hf).ok()) {
    nlohmann::json j = nlohmann::json::parse(hf);  // throws (a finding) if not JSON
    FUZZ_CHECK(j["model"]["vocab"].is_object());
  }
}

void Check(const uint8_t* data, size_t size) {
  VocabFile f;
  uint64_t id = 0;
  if (!lm::DecodeVocabFile(data, size, "fuzz.bpe", &f, &id).ok()) return;
  lm_fuzz::Accepted()++;
  FUZZ_CHECK(id == lm::LoadU64(data + size - 8));
  std::string again;
  uint64_t id2 = 0;
  FUZZ_CHECK(lm::EncodeVocabFile(f, &again, &id2).ok());
  VocabFile g;
  uint64_t id3 = 0;
  FUZZ_CHECK(
      lm::DecodeVocabFile((const uint8_t*)again.data(), again.size(), "again", &g, &id3).ok());
  FUZZ_CHECK(id2 == id3 && SameTable(f, g));
  // The writer writes shortest varints; an input that did too is the same bytes.
  if (again.size() == size) FUZZ_CHECK(id2 == id && again == std::string((const char*)data, size));
  CheckEncoder(f, id);
}

// The last 8 bytes: the checksum of all before them.
void FixChecksum(std::vector<uint8_t>* d) {
  if (d->size() >= 8) lm::StoreU64(d->data() + d->size() - 8, lm::Hash64(d->data(), d->size() - 8));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lm_fuzz::AsGivenAndFixed(data, size, Check, FixChecksum);
  return 0;
}
