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

// Whether [p, p+n) is well-formed UTF-8: shortest forms only, no surrogates,
// nothing over U+10FFFF (the rules of text/unicode.h's Decode).
inline bool ValidUtf8(const void* data, size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  const uint8_t* end = p + n;
  while (p < end) {
    uint8_t c = *p;
    size_t len = c < 0x80                 ? 1
                 : c >= 0xC2 && c <= 0xDF ? 2
                 : c >= 0xE0 && c <= 0xEF ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4
                                          : 0;
    if (len == 0 || (size_t)(end - p) < len) return false;
    for (size_t i = 1; i < len; i++)
      if ((p[i] & 0xC0) != 0x80) return false;
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F) || (c == 0xF0 && p[1] < 0x90) ||
        (c == 0xF4 && p[1] > 0x8F))
      return false;  // overlong, surrogate, over U+10FFFF
    p += len;
  }
  return true;
}

// IEEE half (binary16) and bfloat16 <-> float. The writers round to nearest,
// ties to even, as numpy's astype(float16), ggml's GGML_FP32_TO_FP16 and
// GGML_FP32_TO_BF16 do; a NaN stays a (quiet) NaN, and a float past the
// largest half (65504) becomes an infinity.
inline float BitsToFloat(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
inline uint32_t FloatToBits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
inline float HalfToFloat(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  if (exp == 0) {
    if (man == 0) return BitsToFloat(sign);
    int e = -1;  // subnormal: renormalise
    do {
      e++;
      man <<= 1;
    } while (!(man & 0x400));
    return BitsToFloat(sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13));
  }
  if (exp == 31) return BitsToFloat(sign | 0x7f800000u | (man << 13));
  return BitsToFloat(sign | ((exp + 127 - 15) << 23) | (man << 13));
}
inline uint16_t FloatToHalf(float f) {
  const uint32_t x = FloatToBits(f), sign = (x >> 16) & 0x8000, ax = x & 0x7fffffff;
  if (ax > 0x7f800000) return (uint16_t)(sign | 0x7e00);   // NaN
  if (ax >= 0x47800000) return (uint16_t)(sign | 0x7c00);  // 65536 and up, infinity
  const uint32_t e = ax >> 23;
  uint32_t h, rem, half;
  if (e < 113) {                         // below 2^-14: a subnormal half, q = value / 2^-24
    if (e < 102) return (uint16_t)sign;  // below 2^-25: rounds to zero
    const uint32_t m = (ax & 0x7fffff) | 0x800000, shift = 126 - e;
    h = m >> shift;
    rem = m & ((1u << shift) - 1);
    half = 1u << (shift - 1);
  } else {
    h = ((e - 112) << 10) | ((ax & 0x7fffff) >> 13);
    rem = ax & 0x1fff;
    half = 0x1000;
  }
  if (rem > half || (rem == half && (h & 1))) h++;  // a carry may reach the exponent: right
  return (uint16_t)(sign | h);
}
inline float Bf16ToFloat(uint16_t b) {
  return BitsToFloat((uint32_t)b << 16);
}
inline uint16_t FloatToBf16(float f) {
  const uint32_t x = FloatToBits(f);
  if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);  // quiet NaN
  return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
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
