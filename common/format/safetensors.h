// safetensors.h: reader and writer of Hugging Face safetensors files, the
// format of model.safetensors and optimizer.safetensors in a checkpoint.
//
// Layout (docs/formats/checkpoint.md restates it): u64 LE header length N | N
// bytes of JSON | data. The JSON object maps each tensor name to {"dtype",
// "shape", "data_offsets": [begin, end]} (offsets relative to the start of the
// data), plus an optional "__metadata__" object of string values. The header
// may be padded with trailing spaces; tensors cover the data exactly, with no
// gap and no overlap. Data is little-endian, row-major (C order).
//
// The reader trusts nothing: it bounds-checks the header length, every offset
// and shape, refuses duplicate names and unknown dtypes, and only then hands out
// bytes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "util/file.h"
#include "util/status.h"

namespace lm {

// Largest header the reader accepts (the reference implementation's limit).
constexpr uint64_t kSafetensorsMaxHeader = 100000000;

enum class StDtype {
  kBool,
  kU8,
  kI8,
  kF8E5M2,
  kF8E4M3,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kF64,
  kI64,
  kU64
};
const char* StDtypeName(StDtype t);
int StDtypeSize(StDtype t);  // bytes per element
bool ParseStDtype(const std::string& s, StDtype* out);

struct StTensor {
  std::string name;
  StDtype dtype = StDtype::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // data_offsets, relative to the data section
  uint64_t numel() const;
};

// Parses and validates a whole file image already in memory. `name` labels errors.
// On success *data_start is the file offset of the data section.
Status ParseSafetensors(const uint8_t* file, size_t size, const std::string& name,
                        std::vector<StTensor>* tensors,
                        std::map<std::string, std::string>* metadata, uint64_t* data_start);

class SafetensorsReader {
 public:
  // Maps and validates `path`.
  Status Open(const std::string& path);
  // Validates `size` bytes of memory named `name` (fuzz targets, tests); the
  // memory must outlive the reader.
  Status OpenMemory(const uint8_t* data, size_t size, const std::string& name);
  const std::string& path() const { return file_.path(); }
  // Tensors in the order of their data.
  const std::vector<StTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // nullptr when absent.
  const StTensor* Find(const std::string& name) const;
  // The tensor's raw little-endian bytes (end - begin of them).
  const uint8_t* Data(const StTensor& t) const { return file_.data() + data_start_ + t.begin; }
  // Copies a tensor into `out` as fp32, converting F16, BF16 and F64. NotFound
  // when absent; Invalid when its shape differs from `shape` or its dtype is not
  // a float type.
  Status ReadF32(const std::string& name, const std::vector<int64_t>& shape, float* out) const;

 private:
  Status Parse();  // Open's checks, on file_
  MappedFile file_;
  std::vector<StTensor> tensors_;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, size_t> index_;
  uint64_t data_start_ = 0;
};

// Collects tensors (pointers to caller memory that must outlive Write*) and
// writes them in the order added. The header is padded with spaces to a
// multiple of 8 bytes so that every tensor of the data section is 8-aligned
// when the tensors are.
class SafetensorsWriter {
 public:
  void SetMetadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
  // `data` holds numel(shape) * StDtypeSize(dtype) bytes, little-endian.
  Status Add(const std::string& name, StDtype dtype, const std::vector<int64_t>& shape,
             const void* data);
  // The 8-byte length and the JSON header.
  std::string Header() const;
  // Writes the whole file to an open descriptor; *hash gets the XXH3-64 of the
  // bytes written, *bytes their count (either may be null).
  Status WriteTo(int fd, const std::string& name, uint64_t* hash, uint64_t* bytes) const;
  // Writes `path` atomically (temp, fsync, rename).
  Status WriteFile(const std::string& path, uint64_t* hash) const;
  // The whole file in memory (tests, small files).
  std::string Serialize() const;

 private:
  struct Item {
    std::string name;
    StDtype dtype;
    std::vector<int64_t> shape;
    const void* data;
    uint64_t bytes;
  };
  std::vector<Item> items_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace lm
