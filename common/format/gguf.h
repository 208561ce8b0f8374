// gguf.h: a writer of GGUF version 3, the model file of llama.cpp and ggml
// (ggml's docs/gguf.md). lm writes it (lm-export) and reads none; the tests
// read it with a reader written from that spec (tests/python/ggufspec.py).
//
// Layout, little-endian: "GGUF" | u32 version 3 | u64 tensor count | u64
// key/value count | the key/values (string key, u32 value type, value) | the
// tensor infos (string name, u32 n_dims, u64 dims innermost first, u32 ggml
// type, u64 offset into the data) | zero padding to the alignment (32) | the
// tensor data, each tensor starting at a multiple of the alignment. A string
// is a u64 length and that many UTF-8 bytes (no NUL); an array is a u32
// element type, a u64 count and the elements.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "util/file.h"
#include "util/status.h"

namespace lm {

constexpr uint32_t kGgufVersion = 3;
constexpr uint64_t kGgufAlignment = 32;  // general.alignment's default
constexpr size_t kGgufMaxName = 63;      // ggml's GGML_MAX_NAME (64) less its NUL

// The ggml tensor types lm writes, with ggml's numbers.
enum class GgmlType : uint32_t { kF32 = 0, kF16 = 1, kQ8_0 = 8, kBF16 = 30 };
const char* GgmlTypeName(GgmlType t);  // "F32", "F16", "Q8_0", "BF16"
int64_t GgmlBlockElems(GgmlType t);    // 32 for Q8_0, else 1
int64_t GgmlBlockBytes(GgmlType t);    // 34 for Q8_0 (an F16 scale and 32 int8)

// n floats as type t, appended to *out; n must be a multiple of the block.
// F16 and BF16 round to nearest, ties to even. Q8_0 is ggml's
// quantize_row_q8_0_ref: per block of 32, d = max|x| / 127 (stored as F16),
// q = roundf(x * (1/d)) (half away from zero; 0 when d is 0).
void GgmlEncode(GgmlType t, const float* x, int64_t n, std::string* out);

class GgufWriter {
 public:
  // Metadata, written in the order added. A key must be added once.
  void AddU32(const std::string& key, uint32_t v);
  void AddF32(const std::string& key, float v);
  void AddBool(const std::string& key, bool v);
  void AddString(const std::string& key, const std::string& v);
  void AddStringArray(const std::string& key, const std::vector<std::string>& v);
  void AddI32Array(const std::string& key, const std::vector<int32_t>& v);

  // Fills a tensor's bytes when Write reaches it, so that one tensor at a
  // time is in memory.
  using Producer = std::function<Status(std::string* bytes)>;
  // `shape` outermost first, as torch gives it (GGUF stores it reversed);
  // its innermost dimension must be a multiple of the type's block.
  Status AddTensor(const std::string& name, const std::vector<int64_t>& shape, GgmlType type,
                   Producer produce);

  // The whole file into f (not committed). Invalid for a key added twice or a
  // producer that gives the wrong number of bytes.
  Status Write(AtomicFile* f) const;

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> shape;
    GgmlType type;
    uint64_t bytes, offset;
    Producer produce;
  };
  void Key(const std::string& key, uint32_t type);
  std::string kv_;
  uint64_t n_kv_ = 0;
  std::set<std::string> keys_;
  std::string twice_;  // a key added twice, reported by Write
  std::vector<Tensor> tensors_;
  uint64_t data_bytes_ = 0;
};

}  // namespace lm
