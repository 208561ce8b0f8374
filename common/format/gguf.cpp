// gguf.cpp: the GGUF version 3 writer (format/gguf.h).
#include "format/gguf.h"

#include <cmath>

#include "util/codec.h"

namespace lm {

namespace {

// GGUF's value types.
enum : uint32_t {
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
};

void PutString(std::string* d, const std::string& s) {
  PutU64(d, s.size());
  d->append(s);
}

uint64_t Align(uint64_t n) {
  return (n + kGgufAlignment - 1) / kGgufAlignment * kGgufAlignment;
}

void EncodeQ8_0(const float* x, int64_t n, std::string* out) {
  for (int64_t b = 0; b < n; b += 32) {
    float amax = 0.f;
    for (int j = 0; j < 32; j++) amax = std::fmax(amax, std::fabs(x[b + j]));
    const float d = amax / 127.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    PutU16(out, FloatToHalf(d));
    for (int j = 0; j < 32; j++) out->push_back((char)(int8_t)std::roundf(x[b + j] * id));
  }
}

}  // namespace

const char* GgmlTypeName(GgmlType t) {
  switch (t) {
    case GgmlType::kF32:
      return "F32";
    case GgmlType::kF16:
      return "F16";
    case GgmlType::kQ8_0:
      return "Q8_0";
    case GgmlType::kBF16:
      return "BF16";
  }
  return "?";
}

int64_t GgmlBlockElems(GgmlType t) {
  return t == GgmlType::kQ8_0 ? 32 : 1;
}

int64_t GgmlBlockBytes(GgmlType t) {
  switch (t) {
    case GgmlType::kF32:
      return 4;
    case GgmlType::kQ8_0:
      return 34;
    default:
      return 2;
  }
}

void GgmlEncode(GgmlType t, const float* x, int64_t n, std::string* out) {
  out->reserve(out->size() + n / GgmlBlockElems(t) * GgmlBlockBytes(t));
  switch (t) {
    case GgmlType::kF32:
      for (int64_t i = 0; i < n; i++) PutU32(out, FloatToBits(x[i]));
      return;
    case GgmlType::kF16:
      for (int64_t i = 0; i < n; i++) PutU16(out, FloatToHalf(x[i]));
      return;
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; i++) PutU16(out, FloatToBf16(x[i]));
      return;
    case GgmlType::kQ8_0:
      EncodeQ8_0(x, n, out);
      return;
  }
}

void GgufWriter::Key(const std::string& key, uint32_t type) {
  if (!keys_.insert(key).second && twice_.empty()) twice_ = key;
  PutString(&kv_, key);
  PutU32(&kv_, type);
  n_kv_++;
}

void GgufWriter::AddU32(const std::string& key, uint32_t v) {
  Key(key, kU32);
  PutU32(&kv_, v);
}

void GgufWriter::AddF32(const std::string& key, float v) {
  Key(key, kF32);
  PutU32(&kv_, FloatToBits(v));
}

void GgufWriter::AddBool(const std::string& key, bool v) {
  Key(key, kBool);
  kv_.push_back(v ? 1 : 0);
}

void GgufWriter::AddString(const std::string& key, const std::string& v) {
  Key(key, kString);
  PutString(&kv_, v);
}

void GgufWriter::AddStringArray(const std::string& key, const std::vector<std::string>& v) {
  Key(key, kArray);
  PutU32(&kv_, kString);
  PutU64(&kv_, v.size());
  for (const std::string& s : v) PutString(&kv_, s);
}

void GgufWriter::AddI32Array(const std::string& key, const std::vector<int32_t>& v) {
  Key(key, kArray);
  PutU32(&kv_, kI32);
  PutU64(&kv_, v.size());
  for (int32_t x : v) PutU32(&kv_, (uint32_t)x);
}

Status GgufWriter::AddTensor(const std::string& name, const std::vector<int64_t>& shape,
                             GgmlType type, Producer produce) {
  if (name.empty() || name.size() > kGgufMaxName)
    return Status::Invalid("GGUF tensor name '" + name + "': 1 to 63 bytes");
  if (shape.empty() || shape.size() > 4)
    return Status::Invalid("GGUF tensor " + name + ": 1 to 4 dimensions");
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d <= 0) return Status::Invalid("GGUF tensor " + name + ": a dimension is not positive");
    n *= (uint64_t)d;
  }
  if (shape.back() % GgmlBlockElems(type) != 0)
    return Status::Invalid("GGUF tensor " + name + ": rows of " + std::to_string(shape.back()) +
                           " are not whole blocks of " + GgmlTypeName(type));
  uint64_t bytes = n / GgmlBlockElems(type) * GgmlBlockBytes(type);
  tensors_.push_back({name, shape, type, bytes, data_bytes_, std::move(produce)});
  data_bytes_ = Align(data_bytes_ + bytes);
  return Status::OK();
}

Status GgufWriter::Write(AtomicFile* f) const {
  if (!twice_.empty()) return Status::Invalid("GGUF key '" + twice_ + "' added twice");
  std::string head = "GGUF";
  PutU32(&head, kGgufVersion);
  PutU64(&head, tensors_.size());
  PutU64(&head, n_kv_);
  head += kv_;
  for (const Tensor& t : tensors_) {
    PutString(&head, t.name);
    PutU32(&head, (uint32_t)t.shape.size());
    for (size_t i = t.shape.size(); i-- > 0;) PutU64(&head, (uint64_t)t.shape[i]);
    PutU32(&head, (uint32_t)t.type);
    PutU64(&head, t.offset);
  }
  head.resize(Align(head.size()), '\0');
  LM_RETURN_IF_ERROR(f->Write(head));
  std::string bytes;
  for (const Tensor& t : tensors_) {
    bytes.clear();
    LM_RETURN_IF_ERROR(t.produce(&bytes));
    if (bytes.size() != t.bytes)
      return Status::Invalid("GGUF tensor " + t.name + ": " + std::to_string(bytes.size()) +
                             " bytes given, " + std::to_string(t.bytes) + " expected");
    bytes.resize(Align(bytes.size()), '\0');
    LM_RETURN_IF_ERROR(f->Write(bytes));
  }
  return Status::OK();
}

}  // namespace lm
