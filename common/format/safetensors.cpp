// safetensors.cpp: the safetensors reader and writer (see safetensors.h).
#include "format/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "util/codec.h"
#include "util/hash.h"
#include "util/json.h"

namespace lm {

namespace {

using json = nlohmann::json;

struct DtypeEntry {
  StDtype t;
  const char* name;
  int size;
};
const DtypeEntry kDtypes[] = {
    {StDtype::kBool, "BOOL", 1},      {StDtype::kU8, "U8", 1},          {StDtype::kI8, "I8", 1},
    {StDtype::kF8E5M2, "F8_E5M2", 1}, {StDtype::kF8E4M3, "F8_E4M3", 1}, {StDtype::kI16, "I16", 2},
    {StDtype::kU16, "U16", 2},        {StDtype::kF16, "F16", 2},        {StDtype::kBF16, "BF16", 2},
    {StDtype::kI32, "I32", 4},        {StDtype::kU32, "U32", 4},        {StDtype::kF32, "F32", 4},
    {StDtype::kF64, "F64", 8},        {StDtype::kI64, "I64", 8},        {StDtype::kU64, "U64", 8},
};

bool HostIsLittleEndian() {
  uint16_t x = 1;
  uint8_t b;
  std::memcpy(&b, &x, 1);
  return b == 1;
}

// numel with overflow detection; false when the product exceeds 2^62.
bool CheckedNumel(const std::vector<int64_t>& shape, uint64_t* n) {
  uint64_t p = 1;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (d != 0 && p > (uint64_t(1) << 62) / (uint64_t)d) return false;
    p *= (uint64_t)d;
  }
  *n = p;
  return true;
}

std::string ShapeString(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); i++) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

float HalfToFloat(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      do {
        e++;
        man <<= 1;
      } while (!(man & 0x400));
      bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace

const char* StDtypeName(StDtype t) {
  for (const auto& d : kDtypes)
    if (d.t == t) return d.name;
  return "?";
}
int StDtypeSize(StDtype t) {
  for (const auto& d : kDtypes)
    if (d.t == t) return d.size;
  return 0;
}
bool ParseStDtype(const std::string& s, StDtype* out) {
  for (const auto& d : kDtypes)
    if (s == d.name) {
      *out = d.t;
      return true;
    }
  return false;
}

uint64_t StTensor::numel() const {
  uint64_t n = 0;
  return CheckedNumel(shape, &n) ? n : 0;
}

// ---------------------------------------------------------------------------
// Reader

Status ParseSafetensors(const uint8_t* file, size_t size, const std::string& name,
                        std::vector<StTensor>* tensors,
                        std::map<std::string, std::string>* metadata, uint64_t* data_start) {
  tensors->clear();
  metadata->clear();
  auto bad = [&](const std::string& m) {
    return Status::Invalid(name + ": not a valid safetensors file: " + m);
  };
  if (size < 8)
    return bad("file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  uint64_t n = LoadU64(file);
  if (n > kSafetensorsMaxHeader)
    return bad("header length " + std::to_string(n) + " exceeds the limit of " +
               std::to_string(kSafetensorsMaxHeader));
  if (n > size - 8)
    return bad("header length " + std::to_string(n) + " runs past the end of the file (" +
               std::to_string(size) + " bytes)");
  if (n < 2 || file[8] != '{') return bad("header does not start with a JSON object");
  // nlohmann keeps the last of duplicate keys; a duplicate tensor name is
  // ambiguous, so the parse callback spots them at the top level.
  std::set<std::string> seen;
  std::string dup;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::key && depth == 1) {
      std::string k = parsed.get<std::string>();
      if (!seen.insert(k).second && dup.empty()) dup = k;
    }
    return true;
  };
  const char* h = reinterpret_cast<const char*>(file + 8);
  json j;
  Status parsed = ParseJsonText(std::string_view(h, n), &j, cb);
  if (!parsed.ok()) return bad("header is " + parsed.message());
  if (!j.is_object()) return bad("header is not a JSON object");
  if (!dup.empty()) return bad("tensor '" + dup + "' appears twice in the header");

  uint64_t data_size = size - 8 - n;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const json& v = it.value();
    if (key == "__metadata__") {
      if (!v.is_object()) return bad("__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          return bad("__metadata__ value '" + m.key() + "' is not a string");
        (*metadata)[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    std::string where = "tensor '" + key + "': ";
    if (!v.is_object()) return bad(where + "entry is not an object");
    StTensor t;
    t.name = key;
    auto dt = v.find("dtype");
    if (dt == v.end() || !dt->is_string()) return bad(where + "missing dtype");
    if (!ParseStDtype(dt->get<std::string>(), &t.dtype))
      return bad(where + "unknown dtype '" + dt->get<std::string>() + "'");
    auto sh = v.find("shape");
    if (sh == v.end() || !sh->is_array()) return bad(where + "missing shape");
    for (const json& d : *sh) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0))
        return bad(where + "shape entries must be non-negative integers");
      uint64_t u = d.get<uint64_t>();
      if (u > (uint64_t(1) << 62)) return bad(where + "shape entry too large");
      t.shape.push_back((int64_t)u);
    }
    auto off = v.find("data_offsets");
    if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
      return bad(where + "data_offsets must be two non-negative integers");
    t.begin = (*off)[0].get<uint64_t>();
    t.end = (*off)[1].get<uint64_t>();
    for (auto f = v.begin(); f != v.end(); ++f)
      if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets")
        return bad(where + "unknown field '" + f.key() + "'");
    if (t.end < t.begin) return bad(where + "data_offsets end before they begin");
    if (t.end > data_size)
      return bad(where + "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                 ") run past the data (" + std::to_string(data_size) + " bytes; truncated file?)");
    // Bytes, not just elements, must stay below 2^62: [2^62] F32 would be
    // 2^64 bytes, which wrapped to 0 and matched data_offsets [0, 0] (fuzz
    // finding).
    uint64_t numel;
    const uint64_t esize = (uint64_t)StDtypeSize(t.dtype);
    if (!CheckedNumel(t.shape, &numel) || numel > (uint64_t(1) << 62) / esize)
      return bad(where + "shape " + ShapeString(t.shape) + " too large");
    uint64_t want = numel * esize;
    if (t.end - t.begin != want)
      return bad(where + "shape " + ShapeString(t.shape) + " of " + StDtypeName(t.dtype) +
                 " needs " + std::to_string(want) + " bytes, data_offsets give " +
                 std::to_string(t.end - t.begin));
    tensors->push_back(std::move(t));
  }
  // The tensors must tile the data section: sorted by offset, each begins
  // where the previous ended, the last ends at the end of the file.
  std::sort(tensors->begin(), tensors->end(), [](const StTensor& a, const StTensor& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  for (const StTensor& t : *tensors) {
    if (t.begin != pos)
      return bad("tensor '" + t.name + "' begins at data offset " + std::to_string(t.begin) +
                 (t.begin < pos ? " inside the previous tensor" : " leaving a gap") +
                 " (expected " + std::to_string(pos) + ")");
    pos = t.end;
  }
  if (pos != data_size)
    return bad("tensors cover " + std::to_string(pos) + " bytes of data but the file holds " +
               std::to_string(data_size));
  *data_start = 8 + n;
  return Status::OK();
}

Status SafetensorsReader::Open(const std::string& path) {
  tensors_.clear();
  metadata_.clear();
  index_.clear();
  LM_RETURN_IF_ERROR(file_.Open(path));
  return Parse();
}

Status SafetensorsReader::OpenMemory(const uint8_t* data, size_t size, const std::string& name) {
  tensors_.clear();
  metadata_.clear();
  index_.clear();
  file_.Borrow(data, size, name);
  return Parse();
}

Status SafetensorsReader::Parse() {
  LM_RETURN_IF_ERROR(ParseSafetensors(file_.data(), file_.size(), file_.path(), &tensors_,
                                      &metadata_, &data_start_));
  for (size_t i = 0; i < tensors_.size(); i++) index_[tensors_[i].name] = i;
  return Status::OK();
}

const StTensor* SafetensorsReader::Find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Status SafetensorsReader::ReadF32(const std::string& name, const std::vector<int64_t>& shape,
                                  float* out) const {
  const StTensor* t = Find(name);
  if (!t) return Status::NotFound(path() + ": tensor '" + name + "' is missing");
  if (t->shape != shape)
    return Status::Invalid(path() + ": tensor '" + name + "' has shape " + ShapeString(t->shape) +
                           ", expected " + ShapeString(shape));
  const uint8_t* p = Data(*t);
  uint64_t n = t->numel();
  switch (t->dtype) {
    case StDtype::kF32:
      if (HostIsLittleEndian()) {
        // An empty tensor's `out` may be null (an empty vector's data()),
        // which memcpy must not get even for 0 bytes (UBSan, fuzz finding).
        if (n > 0) std::memcpy(out, p, n * 4);
      } else {
        for (uint64_t i = 0; i < n; i++) {
          uint32_t b = LoadU32(p + 4 * i);
          std::memcpy(&out[i], &b, 4);
        }
      }
      break;
    case StDtype::kBF16:
      for (uint64_t i = 0; i < n; i++) {
        uint32_t b = (uint32_t)LoadU16(p + 2 * i) << 16;
        std::memcpy(&out[i], &b, 4);
      }
      break;
    case StDtype::kF16:
      for (uint64_t i = 0; i < n; i++) out[i] = HalfToFloat(LoadU16(p + 2 * i));
      break;
    case StDtype::kF64:
      for (uint64_t i = 0; i < n; i++) {
        uint64_t b = LoadU64(p + 8 * i);
        double d;
        std::memcpy(&d, &b, 8);
        out[i] = (float)d;
      }
      break;
    default:
      return Status::Invalid(path() + ": tensor '" + name + "' has dtype " + StDtypeName(t->dtype) +
                             ", expected a floating-point type (F32, BF16, F16, F64)");
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------
// Writer

Status SafetensorsWriter::Add(const std::string& name, StDtype dtype,
                              const std::vector<int64_t>& shape, const void* data) {
  if (name.empty() || name == "__metadata__")
    return Status::Invalid("safetensors: bad tensor name '" + name + "'");
  for (const Item& it : items_)
    if (it.name == name) return Status::Invalid("safetensors: tensor '" + name + "' added twice");
  uint64_t n;
  if (!CheckedNumel(shape, &n) || n > (uint64_t(1) << 62) / (uint64_t)StDtypeSize(dtype))
    return Status::Invalid("safetensors: tensor '" + name + "': bad shape");
  items_.push_back({name, dtype, shape, data, n * (uint64_t)StDtypeSize(dtype)});
  return Status::OK();
}

std::string SafetensorsWriter::Header() const {
  // Written by hand (not through a json object) to keep the tensors in the
  // order added, which is also the order of their data.
  std::string h = "{";
  bool first = true;
  if (!metadata_.empty()) {
    h += "\"__metadata__\":" + json(metadata_).dump();
    first = false;
  }
  uint64_t off = 0;
  for (const Item& it : items_) {
    if (!first) h += ",";
    first = false;
    h += json(it.name).dump() + ":{\"dtype\":\"" + StDtypeName(it.dtype) + "\",\"shape\":[";
    for (size_t i = 0; i < it.shape.size(); i++) h += (i ? "," : "") + std::to_string(it.shape[i]);
    h += "],\"data_offsets\":[" + std::to_string(off) + "," + std::to_string(off + it.bytes) + "]}";
    off += it.bytes;
  }
  h += "}";
  while (h.size() % 8) h += ' ';
  std::string out;
  PutU64(&out, h.size());
  return out + h;
}

Status SafetensorsWriter::WriteTo(int fd, const std::string& name, uint64_t* hash,
                                  uint64_t* bytes) const {
  if (!HostIsLittleEndian())
    return Status::Invalid("safetensors writer: big-endian hosts are not supported");
  Hasher hasher;
  std::string h = Header();
  LM_RETURN_IF_ERROR(WriteAll(fd, h.data(), h.size(), name));
  hasher.Update(h);
  uint64_t total = h.size();
  const size_t kChunk = 8 << 20;
  for (const Item& it : items_) {
    const uint8_t* p = static_cast<const uint8_t*>(it.data);
    for (uint64_t done = 0; done < it.bytes;) {
      size_t n = (size_t)std::min<uint64_t>(kChunk, it.bytes - done);
      LM_RETURN_IF_ERROR(WriteAll(fd, p + done, n, name));
      hasher.Update(p + done, n);
      done += n;
    }
    total += it.bytes;
  }
  if (hash) *hash = hasher.Digest();
  if (bytes) *bytes = total;
  return Status::OK();
}

Status SafetensorsWriter::WriteFile(const std::string& path, uint64_t* hash) const {
  AtomicFile f;
  LM_RETURN_IF_ERROR(f.Open(path));
  LM_RETURN_IF_ERROR(WriteTo(f.fd(), path, hash, nullptr));
  return f.Commit();
}

std::string SafetensorsWriter::Serialize() const {
  std::string out = Header();
  for (const Item& it : items_) out.append(static_cast<const char*>(it.data), it.bytes);
  return out;
}

}  // namespace lm
