// unicode.cpp: character classes read out of PCRE2 (one scan over every code
// point per class), so that the hand-written pre-tokenizer and the PCRE2 one
// share one Unicode version.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/unicode.h"

#include <pcre2.h>

#include <mutex>
#include <string>
#include <vector>

namespace lm {
namespace unicode {

void Append(uint32_t cp, char* b, int* len) {
  if (cp < 0x80) {
    b[0] = (char)cp;
    *len = 1;
  } else if (cp < 0x800) {
    b[0] = (char)(0xC0 | (cp >> 6));
    b[1] = (char)(0x80 | (cp & 0x3F));
    *len = 2;
  } else if (cp < 0x10000) {
    b[0] = (char)(0xE0 | (cp >> 12));
    b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[2] = (char)(0x80 | (cp & 0x3F));
    *len = 3;
  } else {
    b[0] = (char)(0xF0 | (cp >> 18));
    b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (char)(0x80 | (cp & 0x3F));
    *len = 4;
  }
}

namespace {

std::vector<uint8_t>* g_table;
std::once_flag g_once;

// White_Space (Rust regex's \s, which tiktoken uses). PCRE2's \s differs (it
// adds U+180E), so the class is spelled out rather than read from PCRE2.
bool IsWhiteSpace(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

struct NewerRange {
  uint32_t first, last;
  uint8_t bit;
};
const NewerRange kNewer[] = {
#include "text/unicode_newer.inc"
};

void Build() {
  auto* t = new std::vector<uint8_t>(0x110000, 0);
  // Every scalar value once, in order, with its offset.
  std::string all;
  all.reserve(0x110000 * 4);
  for (uint32_t cp = 0; cp < 0x110000; cp++) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    char b[4];
    int n;
    Append(cp, b, &n);
    all.append(b, n);
  }
  struct {
    const char* re;
    uint8_t bit;
  } classes[] = {{"\\p{L}+", kL},
                 {"\\p{N}+", kN},
                 {"\\p{M}+", kM},
                 {"[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+", kUpper},
                 {"[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+", kLower}};
  for (auto& c : classes) {
    int err;
    PCRE2_SIZE eoff;
    pcre2_code* re = pcre2_compile((PCRE2_SPTR)c.re, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                                   &err, &eoff, nullptr);
    if (!re) continue;  // cannot happen with these fixed patterns
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(re, nullptr);
    PCRE2_SIZE pos = 0;
    while (pos < all.size()) {
      int rc =
          pcre2_match(re, (PCRE2_SPTR)all.data(), all.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc < 0) break;
      PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      const uint8_t* p = (const uint8_t*)all.data() + ov[0];
      const uint8_t* e = (const uint8_t*)all.data() + ov[1];
      while (p < e) {
        uint32_t cp;
        int n = Decode(p, e, &cp);
        if (n == 0) break;
        (*t)[cp] |= c.bit;
        p += n;
      }
      pos = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
  }
  for (const NewerRange& r : kNewer)
    for (uint32_t cp = r.first; cp <= r.last; cp++) (*t)[cp] |= r.bit;
  for (uint32_t cp = 0; cp < 0x110000; cp++)
    if (IsWhiteSpace(cp)) (*t)[cp] |= kWs;
  g_table = t;
}

}  // namespace

// ASCII classes, so that plain English never touches the big table.
#define LM_A(c)                                                       \
  (uint8_t)(((c) >= 'a' && (c) <= 'z')                ? (kL | kLower) \
            : ((c) >= 'A' && (c) <= 'Z')              ? (kL | kUpper) \
            : ((c) >= '0' && (c) <= '9')              ? kN            \
            : (((c) >= 9 && (c) <= 13) || (c) == ' ') ? kWs           \
                                                      : 0)
#define LM_A8(c) \
  LM_A(c), LM_A(c + 1), LM_A(c + 2), LM_A(c + 3), LM_A(c + 4), LM_A(c + 5), LM_A(c + 6), LM_A(c + 7)
const uint8_t kAsciiClass[128] = {
    LM_A8(0),  LM_A8(8),  LM_A8(16), LM_A8(24), LM_A8(32), LM_A8(40),  LM_A8(48),  LM_A8(56),
    LM_A8(64), LM_A8(72), LM_A8(80), LM_A8(88), LM_A8(96), LM_A8(104), LM_A8(112), LM_A8(120)};
#undef LM_A8
#undef LM_A

bool InNewerTable(uint32_t cp) {
  for (const NewerRange& r : kNewer)
    if (cp >= r.first && cp <= r.last) return true;
  return false;
}

uint8_t ClassSlow(uint32_t cp) {
  std::call_once(g_once, Build);
  return cp < 0x110000 ? (*g_table)[cp] : 0;
}

}  // namespace unicode
}  // namespace lm
