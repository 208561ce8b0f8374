// safetensors_fuzz.cpp: safetensors (model.safetensors and
// optimizer.safetensors, docs/formats/checkpoint.md) through
// SafetensorsReader, as LoadCheckpoint and LoadOptimizerState read them.
//
// An accepted file must meet the container's rules, checked here apart from
// the reader (each tensor's bytes are its shape's product times its dtype's
// size, computed without overflow; the tensors tile the data); every float
// tensor must convert (ReadF32); and SafetensorsWriter must write the tensors
// and metadata again into a file that reads back the same.
#include <map>
#include <string>
#include <vector>

#include "format/safetensors.h"
#include "tests/fuzz/fuzz.h"

namespace {

bool IsFloat(lm::StDtype t) {
  return t == lm::StDtype::kF32 || t == lm::StDtype::kBF16 || t == lm::StDtype::kF16 ||
         t == lm::StDtype::kF64;
}

// The spec's size rule in 128-bit arithmetic: no product can wrap around.
bool SizeMatches(const lm::StTensor& t) {
  unsigned __int128 n = (unsigned __int128)lm::StDtypeSize(t.dtype);
  for (int64_t d : t.shape) {
    if (d < 0) return false;
    n *= (uint64_t)d;
    if (n >> 64) return false;
  }
  return n == (unsigned __int128)(t.end - t.begin);
}

void RoundTrip(const lm::SafetensorsReader& r) {
  lm::SafetensorsWriter w;
  for (const auto& kv : r.metadata()) w.SetMetadata(kv.first, kv.second);
  for (const lm::StTensor& t : r.tensors())
    FUZZ_CHECK(w.Add(t.name, t.dtype, t.shape, r.Data(t)).ok());
  const std::string again = w.Serialize();
  lm::SafetensorsReader b;
  FUZZ_CHECK(b.OpenMemory((const uint8_t*)again.data(), again.size(), "again.safetensors").ok());
  FUZZ_CHECK(b.metadata() == r.metadata());
  FUZZ_CHECK(b.tensors().size() == r.tensors().size());
  for (size_t i = 0; i < r.tensors().size(); i++) {
    const lm::StTensor &x = r.tensors()[i], &y = b.tensors()[i];
    FUZZ_CHECK(x.name == y.name && x.dtype == y.dtype && x.shape == y.shape &&
               x.end - x.begin == y.end - y.begin);
    FUZZ_CHECK(std::string((const char*)r.Data(x), x.end - x.begin) ==
               std::string((const char*)b.Data(y), y.end - y.begin));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lm::SafetensorsReader r;
  if (!r.OpenMemory(data, size, "fuzz.safetensors").ok()) return 0;
  lm_fuzz::Accepted()++;
  uint64_t pos = 0;
  for (const lm::StTensor& t : r.tensors()) {
    FUZZ_CHECK(SizeMatches(t));
    FUZZ_CHECK(t.begin == pos);
    pos = t.end;
    FUZZ_CHECK(r.Find(t.name) == &t);
    if (!IsFloat(t.dtype)) continue;
    std::vector<float> out(t.numel());
    FUZZ_CHECK(r.ReadF32(t.name, t.shape, out.data()).ok());
  }
  if (!r.tensors().empty()) {  // the last tensor ends the file
    const lm::StTensor& last = r.tensors().back();
    FUZZ_CHECK(r.Data(last) + (last.end - last.begin) == data + size);
  }
  RoundTrip(r);
  return 0;
}
