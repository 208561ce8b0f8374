// sampler.h: choosing the next token from a model's logits (lm-sample, and
// lm-train's periodic samples): repeat penalty, temperature (0 is greedy),
// top-k, top-p, min-p, and a seeded random generator that gives the same
// choices on every machine.
//
// The steps, in order (each off at its default):
//   1. repeat penalty R over the distinct ids among the last N tokens of the
//      history (CTRL's rule, as llama.cpp: a positive logit is divided by R,
//      a negative one multiplied by R);
//   2. temperature 0: the highest logit wins (the lowest id on a tie), done;
//   3. probabilities p = softmax(logits / temperature), in double;
//   4. top-k: keep the k most probable ids;
//   5. top-p: keep the smallest set of most probable ids whose probabilities
//      (renormalised after step 4) sum to at least P;
//   6. min-p: drop the ids whose probability is below P times the largest;
//   7. draw one id from what is left, in proportion to its probability.
// Ids are ranked by probability, ties by lower id, so that the choice depends
// only on the logits, the history and the generator's state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace lm {

// SplitMix64 seeding xoshiro256**: fixed arithmetic, so that a seed reproduces
// the same numbers everywhere (unlike std::uniform_*_distribution, whose
// algorithms the C++ standard leaves to each library).
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { Seed(seed); }
  void Seed(uint64_t seed);
  uint64_t Next();
  // Uniform in [0, 1), 53 random bits.
  double Uniform() { return (double)(Next() >> 11) * (1.0 / 9007199254740992.0); }

 private:
  uint64_t s_[4];
};

struct SamplerConfig {
  float temperature = 1.0f;     // 0: greedy
  int top_k = 0;                // 0: off
  float top_p = 1.0f;           // 1: off; in (0, 1]
  float min_p = 0.0f;           // 0: off; in [0, 1]
  float repeat_penalty = 1.0f;  // 1: off; > 0
  int repeat_last = 64;         // how many of the latest tokens the penalty looks at
  uint64_t seed = 0;

  // Invalid when a field is out of its range ("top_p 1.5: expected a value in
  // (0, 1] (1: off)"); tools check their options' ranges before.
  Status Validate() const;
  // "temperature 0.8, top-k 40, top-p 0.95" or "greedy" (only what is on; not the seed).
  std::string Describe() const;
};

class Sampler {
 public:
  // REQUIRES: cfg.Validate() is OK, vocab_size > 0.
  Sampler(const SamplerConfig& cfg, int vocab_size);

  // Picks the next id from logits[0..vocab_size) given the ids so far
  // (history[0..n), oldest first; only the last repeat_last matter). Invalid
  // when the logits hold a NaN or no id has a finite logit.
  Status Sample(const float* logits, const int32_t* history, size_t n, int32_t* id);

  // Restarts the generator (the next Sample behaves as after construction with `seed`).
  void Reseed(uint64_t seed) { rng_.Seed(seed); }
  const SamplerConfig& config() const { return cfg_; }

 private:
  SamplerConfig cfg_;
  int vocab_;
  Rng rng_;
  std::vector<float> work_;                   // penalised logits
  std::vector<std::pair<double, int>> cand_;  // (probability, id)
  std::vector<int32_t> seen_;                 // ids the penalty applies to
};

// Generated text on its way to the screen: bytes go in token by token, and what
// comes out never ends in the middle of a UTF-8 character, never contains a
// stop string, and holds back any tail that could still grow into one.
class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stops = {});
  // Adds a token's bytes; *out gets what may be printed now (possibly empty).
  // Returns true when a stop string has appeared: *out then ends right before
  // it, and nothing more comes out.
  bool Append(const std::string& bytes, std::string* out);
  // The end of the text: *out gets whatever was held back (bytes of an
  // unfinished character included: the model generated them).
  void Finish(std::string* out);
  bool stopped() const { return stopped_; }
  // Everything handed out so far.
  std::string emitted() const { return text_.substr(0, emitted_); }

 private:
  std::vector<std::string> stops_;
  std::string text_;
  size_t emitted_ = 0;
  bool stopped_ = false;
};

// Bytes of s[from, to) that can be printed without cutting a UTF-8 character:
// returns to, or the start of an unfinished multi-byte sequence at the end.
size_t Utf8CompletePrefix(const std::string& s, size_t from, size_t to);

}  // namespace lm
