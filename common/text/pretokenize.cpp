// pretokenize.cpp: the hand-written gpt2/cl100k/o200k pre-tokenizers and the
// PCRE2 one. Each hand-written branch below is one alternative of the official
// regex (format/vocab.cpp PatternRegex), tried in the regex's order, with the
// backtracking it would do worked out in closed form.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/pretokenize.h"

#include <pcre2.h>

#include <cstring>

#include "text/unicode.h"

namespace lm {

using namespace unicode;

namespace {

constexpr uint8_t kO = 64;  // none of L, N, White_Space: [^\s\p{L}\p{N}]

// One run of valid UTF-8 [s, e) of the text; text_end says whether e is the
// end of the text (where `$` matches) or an invalid byte (where only the
// lookahead (?!\S) succeeds, as in PCRE2 with PCRE2_MATCH_INVALID_UTF).
struct Seg {
  const uint8_t* t;
  size_t e;
  bool text_end;

  // Class bits of the character at p (0 at the end), and its length.
  inline uint8_t Cls(size_t p, int* len) const {
    if (p >= e) {
      *len = 0;
      return 0;
    }
    uint8_t c = t[p];
    uint8_t k;
    if (c < 0x80) {
      *len = 1;
      k = Class(c);
    } else {
      uint32_t cp = 0;
      *len = Decode(t + p, t + e, &cp);
      k = Class(cp);
    }
    if (!(k & (kL | kN | kWs))) k |= kO;
    return k;
  }
  inline size_t Run(size_t p, uint8_t mask) const {
    while (p < e) {
      uint8_t c = t[p];
      if (c < 0x80) {
        uint8_t k = Class(c);
        if (!(k & (kL | kN | kWs))) k |= kO;
        if (!(k & mask)) break;
        p++;
      } else {
        int l;
        if (!(Cls(p, &l) & mask)) break;
        p += l;
      }
    }
    return p;
  }
  // Up to 3 characters of \p{N}.
  inline size_t Digits3(size_t p) const {
    for (int i = 0; i < 3; i++) {
      int l;
      if (!(Cls(p, &l) & kN)) break;
      p += l;
    }
    return p;
  }
  inline size_t CrLf(size_t p, bool slash) const {
    while (p < e && (t[p] == '\r' || t[p] == '\n' || (slash && t[p] == '/'))) p++;
    return p;
  }
  // A White_Space run from p (which is White_Space): the regex alternatives
  // \s++$ (when dollar), \s*[\r\n] (when crlf) and \s+(?!\S), \s.
  inline size_t Space(size_t p, bool dollar, bool crlf) const {
    size_t last = p, after_crlf = 0, q = p;
    while (q < e) {
      int l;
      if (!(Cls(q, &l) & kWs)) break;
      last = q;
      if (t[q] == '\r' || t[q] == '\n') after_crlf = q + 1;
      q += l;
    }
    if (q == e && text_end && dollar) return q;
    if (crlf && after_crlf) return after_crlf;
    if (q == e) return q;       // (?!\S) holds at the end or before invalid UTF-8
    if (last > p) return last;  // \s+ gives back its last character to (?!\S)
    int l;
    Cls(p, &l);
    return p + l;  // \s
  }
  inline bool Is(size_t p, char lo, char up) const { return p < e && (t[p] == lo || t[p] == up); }
  // (?i:'s|'t|'re|'ve|'m|'ll|'d) at p: its end, or p. Case-insensitive as in
  // Unicode simple case folding, so that 's' also matches U+017F (long s).
  inline size_t Contraction(size_t p, bool fold) const {
    if (p >= e || t[p] != '\'') return p;
    size_t q = p + 1;
    if (q >= e) return p;
    if (!fold) {
      char c = (char)t[q];
      if (c == 's' || c == 'd' || c == 'm' || c == 't') return q + 1;
      if (q + 1 < e) {
        char d = (char)t[q + 1];
        if ((c == 'l' && d == 'l') || (c == 'v' && d == 'e') || (c == 'r' && d == 'e'))
          return q + 2;
      }
      return p;
    }
    if (Is(q, 's', 'S') || Is(q, 'd', 'D') || Is(q, 'm', 'M') || Is(q, 't', 'T')) return q + 1;
    if (q + 1 < e && t[q] == 0xC5 && t[q + 1] == 0xBF) return q + 2;  // U+017F
    if (Is(q, 'l', 'L') && Is(q + 1, 'l', 'L')) return q + 2;
    if (Is(q, 'v', 'V') && Is(q + 1, 'e', 'E')) return q + 2;
    if (Is(q, 'r', 'R') && Is(q + 1, 'e', 'E')) return q + 2;
    return p;
  }

  // One chunk from p for each pattern.
  size_t Gpt2(size_t p) const {
    size_t c = Contraction(p, false);
    if (c != p) return c;
    int l;
    uint8_t k = Cls(p, &l);
    if (t[p] == ' ') {
      int l1;
      uint8_t k1 = Cls(p + 1, &l1);
      if (k1 & kL) return Run(p + 1, kL);
      if (k1 & kN) return Run(p + 1, kN);
      if (k1 & kO) return Run(p + 1, kO);
    }
    if (k & kL) return Run(p, kL);
    if (k & kN) return Run(p, kN);
    if (k & kO) return Run(p, kO);
    return Space(p, true, false);
  }

  size_t Cl100k(size_t p) const {
    size_t c = Contraction(p, true);
    if (c != p) return c;
    int l;
    uint8_t k = Cls(p, &l);
    if (!(k & (kL | kN)) && t[p] != '\r' && t[p] != '\n') {
      int l1;
      if (Cls(p + l, &l1) & kL) return Run(p + l, kL);
    }
    if (k & kL) return Run(p, kL);
    if (k & kN) return Digits3(p);
    if (t[p] == ' ') {
      int l1;
      if (Cls(p + 1, &l1) & kO) return CrLf(Run(p + 1, kO), false);
    }
    if (k & kO) return CrLf(Run(p, kO), false);
    return Space(p, true, true);
  }

  // [^\r\n\p{L}\p{N}]?U*W+C? where U, W are the kUpper, kLower sets: from a,
  // U* takes the longest run, then gives back characters until W+ can start;
  // W+ then runs as far as it can. Returns the end, or 0 when it cannot match.
  inline size_t O200kAlt1(size_t a) const {
    size_t q = a, last_lower = (size_t)-1;
    int l;
    for (;;) {
      uint8_t k = Cls(q, &l);
      if (!(k & kUpper)) break;
      if (k & kLower) last_lower = q;
      q += l;
    }
    if (Cls(q, &l) & kLower) return Contraction(Run(q, kLower), true);
    if (last_lower != (size_t)-1) {
      Cls(last_lower, &l);
      return Contraction(last_lower + l, true);
    }
    return 0;
  }
  size_t O200k(size_t p) const {
    int l;
    uint8_t k = Cls(p, &l);
    bool prefix = !(k & (kL | kN)) && t[p] != '\r' && t[p] != '\n';
    size_t r;
    if (prefix && (r = O200kAlt1(p + l))) return r;
    if ((r = O200kAlt1(p))) return r;
    if (prefix) {
      size_t b = Run(p + l, kUpper);
      if (b > p + l) return Contraction(Run(b, kLower), true);
    }
    {
      size_t b = Run(p, kUpper);
      if (b > p) return Contraction(Run(b, kLower), true);
    }
    if (k & kN) return Digits3(p);
    if (t[p] == ' ') {
      int l1;
      if (Cls(p + 1, &l1) & kO) return CrLf(Run(p + 1, kO), true);
    }
    if (k & kO) return CrLf(Run(p, kO), true);
    return Space(p, false, true);
  }
};

// Whether a valid UTF-8 character that is not White_Space starts at p.
inline bool NonSpaceAt(const uint8_t* t, size_t p, size_t n) {
  uint32_t cp;
  int l = Decode(t + p, t + n, &cp);
  return l > 0 && !(Class(cp) & kWs);
}
// Whether a valid UTF-8 character that is not White_Space ends just before `end`.
inline bool NonSpaceBefore(const uint8_t* t, size_t end) {
  size_t s = end;
  for (int k = 0; k < 4 && s > 0; k++) {
    s--;
    if ((t[s] & 0xC0) != 0x80) break;
  }
  uint32_t cp;
  int l = Decode(t + s, t + end, &cp);
  return l > 0 && s + (size_t)l == end && !(Class(cp) & kWs);
}

class HandSplitter : public Pretokenizer {
 public:
  explicit HandSplitter(PatternKind kind) : kind_(kind) {}

  Status Split(const char* text, size_t n, std::vector<size_t>* ends) const override {
    const uint8_t* t = (const uint8_t*)text;
    size_t i = 0;
    while (i < n) {
      size_t j = i;
      while (j < n) {
        if (t[j] < 0x80) {
          j++;
          continue;
        }
        uint32_t cp;
        int l = Decode(t + j, t + n, &cp);
        if (!l) break;
        j += l;
      }
      if (j > i) SplitValid(t, i, j, j == n, ends);
      size_t k = j;
      while (k < n) {
        uint32_t cp;
        if (t[k] < 0x80 || Decode(t + k, t + n, &cp)) break;
        k++;
      }
      if (k > j) ends->push_back(k);
      i = k;
    }
    return Status::OK();
  }

  // After a "\n" that has a non-space character on each side (not '/' after
  // it): no alternative
  // of these patterns reaches across it, the "\n" is a chunk (or the tail of
  // a punctuation chunk) whatever follows, and nothing looks behind.
  size_t SafeSplit(const char* text, size_t n, size_t from) const override {
    if (kind_ == PatternKind::kNone) return n;
    const uint8_t* t = (const uint8_t*)text;
    size_t p = from < 2 ? 2 : from;
    while (p < n) {
      const void* nl = memchr(text + p - 1, '\n', n - (p - 1));
      if (!nl) return n;
      p = (size_t)((const char*)nl - text) + 1;
      if (p >= n) return n;
      // Not before '/': o200k's punctuation chunks take "[\r\n/]*" after them.
      if (p >= 2 && t[p] != '/' && NonSpaceBefore(t, p - 1) && NonSpaceAt(t, p, n)) return p;
      p++;
    }
    return n;
  }

 private:
  void SplitValid(const uint8_t* t, size_t s, size_t e, bool text_end,
                  std::vector<size_t>* ends) const {
    Seg g{t, e, text_end};
    size_t p = s;
    switch (kind_) {
      case PatternKind::kNone:
        ends->push_back(e);
        return;
      case PatternKind::kGpt2:
        while (p < e) ends->push_back(p = g.Gpt2(p));
        return;
      case PatternKind::kCl100k:
        while (p < e) ends->push_back(p = g.Cl100k(p));
        return;
      default:
        while (p < e) ends->push_back(p = g.O200k(p));
        return;
    }
  }
  PatternKind kind_;
};

class PcreSplitter : public Pretokenizer {
 public:
  ~PcreSplitter() override {
    if (code_) pcre2_code_free(code_);
  }
  Status Init(const std::string& regex) {
    std::string re = RewriteWhiteSpace(regex);
    int err;
    PCRE2_SIZE off;
    code_ = pcre2_compile((PCRE2_SPTR)re.data(), re.size(),
                          PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY,
                          &err, &off, nullptr);
    if (!code_) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      // A pattern may be 64 KiB long: the message quotes its start only.
      std::string shown = regex;
      if (shown.size() > 120) {
        size_t cut = 100;
        while (cut > 0 && ((unsigned char)shown[cut] & 0xC0) == 0x80) cut--;  // whole UTF-8 chars
        shown = shown.substr(0, cut) + "... (" + std::to_string(regex.size()) + " bytes)";
      }
      return Status::Usage("bad pattern '" + shown + "': " + (const char*)msg + " at offset " +
                           std::to_string(off));
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);
    return Status::OK();
  }

  Status Split(const char* text, size_t n, std::vector<size_t>* ends) const override {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_, nullptr);
    pcre2_match_context* mc = pcre2_match_context_create(nullptr);
    pcre2_jit_stack* js = pcre2_jit_stack_create(32 << 10, 256 << 20, nullptr);
    pcre2_jit_stack_assign(mc, nullptr, js);
    Status st;
    const uint8_t* t = (const uint8_t*)text;
    size_t pos = 0;
    while (pos < n) {
      size_t from = pos, m0 = n, m1 = n;
      for (;;) {
        int rc = pcre2_match(code_, t, n, from, 0, md, mc);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
          PCRE2_UCHAR msg[256];
          pcre2_get_error_message(rc, msg, sizeof msg);
          st = Status::Resource(std::string("the split pattern failed on this text: ") +
                                (const char*)msg + " (a custom pattern that backtracks too much?)");
          break;
        }
        PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        if (ov[1] > ov[0]) {
          m0 = ov[0];
          m1 = ov[1];
          break;
        }
        // An empty match: the character there belongs to the gap.
        from = ov[0] + 1;
        while (from < n && (t[from] & 0xC0) == 0x80) from++;
        if (from >= n) break;
      }
      if (!st.ok()) break;
      if (m0 > pos) ends->push_back(m0);
      if (m1 > m0) ends->push_back(m1);
      pos = m1;
    }
    pcre2_jit_stack_free(js);
    pcre2_match_context_free(mc);
    pcre2_match_data_free(md);
    return st;
  }

 private:
  pcre2_code* code_ = nullptr;
};

}  // namespace

std::string RewriteWhiteSpace(const std::string& re) {
  static const char kWsItems[] =
      "\\x{9}-\\x{D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
      "\\x{205F}\\x{3000}";
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < re.size(); i++) {
    char c = re[i];
    if (c == '\\' && i + 1 < re.size()) {
      char d = re[i + 1];
      i++;
      if (d == 's')
        out += in_class ? std::string(kWsItems) : "[" + std::string(kWsItems) + "]";
      else if (d == 'S' && !in_class)
        out += "[^" + std::string(kWsItems) + "]";
      else {
        out.push_back(c);
        out.push_back(d);
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out.push_back(c);
      // A ']' right after '[' or '[^' is literal.
      if (i + 1 < re.size() && re[i + 1] == '^') out.push_back(re[++i]);
      if (i + 1 < re.size() && re[i + 1] == ']') out.push_back(re[++i]);
      continue;
    }
    if (in_class && c == '[' && i + 1 < re.size() && re[i + 1] == ':') {
      size_t close = re.find(":]", i + 2);
      if (close != std::string::npos) {
        out.append(re, i, close + 2 - i);
        i = close + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out.push_back(c);
  }
  return out;
}

Status Pretokenizer::Create(PatternKind kind, const std::string& regex, bool use_pcre,
                            std::unique_ptr<Pretokenizer>* out) {
  if (kind == PatternKind::kRegex || (use_pcre && kind != PatternKind::kNone)) {
    auto p = std::make_unique<PcreSplitter>();
    LM_RETURN_IF_ERROR(p->Init(kind == PatternKind::kRegex ? regex : PatternRegex(kind)));
    *out = std::move(p);
    return Status::OK();
  }
  *out = std::make_unique<HandSplitter>(kind);
  return Status::OK();
}

}  // namespace lm
