// generate.h: text generation from a model on a backend (lm-sample, and
// lm-train's periodic samples): a window of at most `context` tokens, kept
// with the backend's KV cache (or recomputed whole), slid by half a context
// when full, and a Sampler that picks each next token.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "backend/backend.h"
#include "model/sampler.h"
#include "util/status.h"

namespace lm {

struct GenerateOptions {
  int max_tokens = 256;  // tokens to generate, at most (the end-of-text one included)
  int32_t eot_id = -1;   // generation ends after this id (-1: never)
  bool kv_cache = true;  // false: a full forward pass for every token (benchmarks)
  // Ids never drawn (ids an imported vocabulary leaves unused).
  std::vector<int32_t> banned;
};

struct GenerateStats {
  int prefilled = 0;  // tokens of the prompt the model saw (its last `context`)
  int generated = 0;  // tokens drawn, the end-of-text one included
  bool ended_by_eot = false;
  bool stopped = false;  // on_token asked to stop
  int slides = 0;        // times the window slid
  double prefill_seconds = 0, generate_seconds = 0;
};

// Called with each drawn id but the end-of-text one; setting *stop ends the
// generation after it.
using OnToken = std::function<Status(int32_t id, bool* stop)>;

// Generates from `prompt` (ids < vocab_size; at least one) on `backend`, Init'ed
// for inference with max_seq >= context. The repeat penalty sees the prompt
// and the ids drawn.
Status Generate(Backend* backend, int context, int vocab_size, const std::vector<int32_t>& prompt,
                Sampler* sampler, const GenerateOptions& opt, const OnToken& on_token,
                GenerateStats* stats);

}  // namespace lm
