// pretokenize.h: cutting text into the chunks that BPE encodes one by one.
//
// The gpt2, cl100k and o200k patterns are hand-written state machines that give
// exactly the chunks PCRE2 (and tiktoken's regex engine) gives for the official
// regular expressions; a custom pattern runs on PCRE2. Text that PCRE2 cannot
// match (invalid UTF-8, and for custom patterns any gap between matches) forms
// chunks of its own, so the chunks always tile the text byte for byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "format/vocab.h"
#include "util/status.h"

namespace lm {

class Pretokenizer {
 public:
  // kind kRegex uses `regex`; the named kinds ignore it. `use_pcre` forces the
  // PCRE2 engine for a named kind too (its canonical regex), for cross-checks.
  static Status Create(PatternKind kind, const std::string& regex, bool use_pcre,
                       std::unique_ptr<Pretokenizer>* out);
  virtual ~Pretokenizer() = default;

  // Appends the end offset of every chunk of text[0, n) to *ends (the chunks
  // are [0, ends[0]), [ends[0], ends[1]), ...). Thread-safe. Fails only when
  // PCRE2 gives up on a custom pattern (its match or stack limit).
  virtual Status Split(const char* text, size_t n, std::vector<size_t>* ends) const = 0;

  // A position p in [from, n) such that splitting text at p and cutting both
  // sides separately gives the same chunks as cutting the whole; n when there
  // is none (custom patterns never split). Lets one document be encoded by
  // several threads.
  virtual size_t SafeSplit(const char* text, size_t n, size_t from) const { return n; }
};

// PCRE2 needs \s spelled as White_Space to agree with tiktoken (PCRE2's \s
// also matches U+180E). Rewrites \s and \S in `re` accordingly.
std::string RewriteWhiteSpace(const std::string& re);

}  // namespace lm
