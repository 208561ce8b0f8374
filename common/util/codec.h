// codec.h: little-endian fixed-width integers and LEB128 varints.
// Every binary format in lm is little-endian (docs/formats/). Readers take an
// explicit end pointer so that no read can run past the buffer.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace lm {

inline void PutU16(std::string* d, uint16_t v) {
  char b[2] = {(char)(v & 0xff), (char)(v >> 8)};
  d->append(b, 2);
}
inline void PutU32(std::string* d, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; i++) b[i] = (char)((v >> (8 * i)) & 0xff);
  d->append(b, 4);
}
inline void PutU64(std::string* d, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; i++) b[i] = (char)((v >> (8 * i)) & 0xff);
  d->append(b, 8);
}
inline void StoreU16(uint8_t* p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
inline void StoreU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
inline void StoreU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
inline uint16_t LoadU16(const uint8_t* p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}
inline uint32_t LoadU32(const uint8_t* p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
inline uint64_t LoadU64(const uint8_t* p) {
  return (uint64_t)LoadU32(p) | ((uint64_t)LoadU32(p + 4) << 32);
}

// Appends v as an unsigned LEB128 varint (1 to 10 bytes).
inline void PutVarint(std::string* d, uint64_t v) {
  while (v >= 0x80) {
    d->push_back((char)((v & 0x7f) | 0x80));
    v >>= 7;
  }
  d->push_back((char)v);
}
// Decodes a varint from [*p, end); advances *p. False when truncated or over 64 bits.
inline bool GetVarint(const uint8_t** p, const uint8_t* end, uint64_t* v) {
  uint64_t r = 0;
  for (int shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    if (shift == 63 && (b & 0x7e)) return false;
    r |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = r;
      return true;
    }
  }
  return false;
}

// Bounds-checked cursor over a byte buffer: every Get fails instead of reading past `end`.
struct ByteReader {
  const uint8_t* p;
  const uint8_t* end;
  ByteReader(const void* data, size_t n)
      : p(static_cast<const uint8_t*>(data)), end(static_cast<const uint8_t*>(data) + n) {}
  size_t left() const { return (size_t)(end - p); }
  bool U16(uint16_t* v) { return Take(2) && (*v = LoadU16(p - 2), true); }
  bool U32(uint32_t* v) { return Take(4) && (*v = LoadU32(p - 4), true); }
  bool U64(uint64_t* v) { return Take(8) && (*v = LoadU64(p - 8), true); }
  bool Varint(uint64_t* v) { return GetVarint(&p, end, v); }
  bool Bytes(size_t n, const uint8_t** out) { return Take(n) && (*out = p - n, true); }
  bool Take(size_t n) {
    if (left() < n) return false;
    p += n;
    return true;
  }
};

}  // namespace lm
