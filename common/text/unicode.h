// unicode.h: UTF-8 decoding and the character classes the pre-tokenizer needs
// (\p{L}, \p{N}, \p{M}, the o200k letter sets, White_Space), taken from PCRE2's
// own Unicode tables so that the hand-written pre-tokenizer and PCRE2 agree,
// plus the characters newer Unicode versions added (unicode_newer.inc), so
// that both agree with tiktoken, whose regex engine knows Unicode 16.0.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lm {
namespace unicode {

// Class bits of a code point.
enum : uint8_t {
  kL = 1,       // \p{L}
  kN = 2,       // \p{N}
  kWs = 4,      // \s as Rust's regex (tiktoken) means it: the White_Space property
  kM = 8,       // \p{M}
  kUpper = 16,  // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]  (o200k)
  kLower = 32,  // [\p{Ll}\p{Lm}\p{Lo}\p{M}]        (o200k)
};

extern const uint8_t kAsciiClass[128];
uint8_t ClassSlow(uint32_t cp);

// The class bits of code point `cp` (< 0x110000). Thread-safe; the first call
// for a non-ASCII code point builds the table (tens of milliseconds).
inline uint8_t Class(uint32_t cp) {
  return cp < 128 ? kAsciiClass[cp] : ClassSlow(cp);
}

// True for the characters Unicode 15.0-16.0 added, whose classes come from
// unicode_newer.inc rather than from PCRE2 10.42 (which predates them).
bool InNewerTable(uint32_t cp);

// Decodes one UTF-8 character at p (p < end). Returns its length (1-4), or 0
// when the bytes at p do not start a valid, complete, shortest-form character
// (overlong forms, surrogates and values over U+10FFFF are invalid).
inline int Decode(const uint8_t* p, const uint8_t* end, uint32_t* cp) {
  uint8_t c = p[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t left = (size_t)(end - p);
  if (c >= 0xC2 && c <= 0xDF) {
    if (left < 2 || (p[1] & 0xC0) != 0x80) return 0;
    *cp = ((uint32_t)(c & 0x1F) << 6) | (p[1] & 0x3F);
    return 2;
  }
  if (c >= 0xE0 && c <= 0xEF) {
    if (left < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
    uint32_t v = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    if (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (left < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
      return 0;
    uint32_t v = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
                 ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
    if (v < 0x10000 || v > 0x10FFFF) return 0;
    *cp = v;
    return 4;
  }
  return 0;
}

// Appends the UTF-8 form of cp.
void Append(uint32_t cp, char* buf, int* len);

}  // namespace unicode
}  // namespace lm
