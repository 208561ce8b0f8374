// manifest_fuzz.cpp: manifest.json (docs/formats/manifest.md) through
// ParseManifest, as the loader, lm-pack (every command) and lm-eval read it.
//
// An accepted manifest must serialize (SerializeManifest, what lm-pack
// writes) to text that parses to the same manifest, and serializing that
// gives the same text again.
#include <cmath>
#include <string>

#include "format/manifest.h"
#include "tests/fuzz/fuzz.h"

namespace {

bool SameShard(const lm::ManifestShard& a, const lm::ManifestShard& b) {
  return a.file == b.file && a.split == b.split && a.bytes == b.bytes && a.tokens == b.tokens &&
         a.documents == b.documents && a.blocks == b.blocks && a.hash == b.hash &&
         a.level == b.level && a.writer == b.writer;
}

bool SameWriter(const lm::ManifestWriter& a, const lm::ManifestWriter& b) {
  return a.id == b.id && a.seed == b.seed && a.val_docs == b.val_docs &&
         (a.val_docs >= 0 || a.val_fraction == b.val_fraction) && a.documents == b.documents &&
         a.documents_known == b.documents_known && a.created == b.created && a.label == b.label;
}

bool Same(const lm::Manifest& a, const lm::Manifest& b) {
  if (a.vocab_size != b.vocab_size || a.vocab_id != b.vocab_id || a.eot_id != b.eot_id ||
      a.token_width != b.token_width || a.shards.size() != b.shards.size() ||
      a.writers.size() != b.writers.size() || a.Identity() != b.Identity())
    return false;
  for (size_t i = 0; i < a.shards.size(); i++)
    if (!SameShard(a.shards[i], b.shards[i])) return false;
  for (size_t i = 0; i < a.writers.size(); i++)
    if (!SameWriter(a.writers[i], b.writers[i])) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lm::Manifest m;
  if (!lm::ParseManifest(std::string((const char*)data, size), "fuzz.json", &m).ok()) return 0;
  lm_fuzz::Accepted()++;
  const std::string text = lm::SerializeManifest(m);
  lm::Manifest again;
  lm::Status s = lm::ParseManifest(text, "again.json", &again);
  if (!s.ok()) fprintf(stderr, "%s\n", s.ToString().c_str());
  FUZZ_CHECK(s.ok());
  FUZZ_CHECK(Same(m, again));
  FUZZ_CHECK(lm::SerializeManifest(again) == text);
  return 0;
}
