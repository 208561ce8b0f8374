// trainer_state_fuzz.cpp: trainer-state.json (docs/formats/checkpoint.md)
// through ParseTrainerState, the part of LoadCheckpoint that reads it.
//
// Each input is read as given, then, when it has a "checksum" member, with
// the checksum written again (lmspec's state-reseal), so that mutations
// reach the fields behind it. An accepted state, its checksum member
// removed, must seal again (SealTrainerState, what lm-train writes) into
// text that parses to the same state; sealing is deterministic.
#include <nlohmann/json.hpp>
#include <string>

#include "model/checkpoint.h"
#include "tests/fuzz/fuzz.h"
#include "util/hash.h"

namespace {

using nlohmann::json;

void Check(const std::string& text) {
  json st;
  if (!lm::ParseTrainerState(text, "fuzz.json", &st).ok()) return;
  lm_fuzz::Accepted()++;
  FUZZ_CHECK(st.is_object());
  st.erase("checksum");
  const std::string sealed = lm::SealTrainerState(st);
  json again;
  lm::Status s = lm::ParseTrainerState(sealed, "again.json", &again);
  if (!s.ok()) fprintf(stderr, "%s\n", s.ToString().c_str());
  FUZZ_CHECK(s.ok());
  FUZZ_CHECK(again.contains("checksum"));
  again.erase("checksum");
  FUZZ_CHECK(again == st);
  FUZZ_CHECK(lm::SealTrainerState(again) == sealed);
}

// The text with the value after the last `"checksum": "` replaced by the
// XXH3 of everything before it, or "" when there is no such value.
std::string Reseal(const std::string& text) {
  const std::string key = "\"checksum\": \"";
  size_t at = text.rfind(key);
  if (at == std::string::npos || text.size() - at - key.size() < 16) return "";
  std::string out = text;
  out.replace(at + key.size(), 16, lm::HashHex(lm::Hash64(text.data(), at + key.size())));
  return out == text ? "" : out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text((const char*)data, size);
  Check(text);
  const std::string resealed = Reseal(text);
  if (!resealed.empty()) Check(resealed);
  return 0;
}
