// autosize.h: choosing a model shape for a time budget (lm-train --auto-size):
// lm-train's own policy, so it lives with the tool.
//
// Probes the throughput of a ladder of candidate shapes on the actual backend
// for a few seconds each, then picks the largest shape whose compute-optimal
// token count (tokens_per_param x parameters, 20 by the Chinchilla rule) can be
// trained within the budget at the measured speed. When that shape would pass
// useful_epochs over the unique training tokens, data is the limit, not
// compute: the choice is then the candidate with the lowest loss predicted by
// the data-constrained scaling law of Muennighoff et al. 2023 ("Scaling
// Data-Constrained Language Models": Chinchilla's fit with repeated tokens and
// excess parameters discounted), larger shapes being probed for it.
#pragma once

#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/config.h"
#include "util/status.h"

namespace lm {

struct AutoSizeOptions {
  std::string device = "auto";
  int vocab_size = 0;
  int context = 1024;
  int micro_batch = 0;        // 0: a default per device (8 on a GPU, 4 on the CPU)
  double budget_seconds = 0;  // the whole training budget
  double probe_seconds = 8;   // timed work per candidate, after one warm-up step
  double tokens_per_param = 20;
  double usable_fraction = 0.92;  // of the budget left for training steps (eval, checkpoints)
  double unique_tokens = 0;       // the train split's tokens; 0: unknown (no data limit)
  double useful_epochs = 4;       // repetitions beyond which data, not compute, limits
  int ranks = 1;                  // data-parallel ranks, each as fast as the one probed
};

struct AutoSizeCandidate {
  std::string name;  // "d768-l12"
  ModelConfig config;
  double tokens_per_second = 0;  // 0 when not probed or it did not fit
  double tokens_in_budget = 0;   // tokens_per_second * budget * usable_fraction
  double optimal_tokens = 0;     // tokens_per_param * params
  double epochs = 0;             // tokens_in_budget / unique tokens (0: unknown)
  double predicted_loss = 0;     // the data-constrained law's, when data limited the choice
  std::string note;              // "out of memory", "not probed: a smaller one already falls short"
};

struct AutoSizeResult {
  std::vector<AutoSizeCandidate> candidates;
  int chosen = -1;
  bool data_limited = false;  // chosen by the data-constrained law
  std::string reason;
  std::string device;
  std::string ToJson() const;
  // A few lines for people: one per candidate, then the choice and why.
  std::string Table() const;
};

// The ladder of shapes probed, smallest first, for a vocabulary and context.
std::vector<AutoSizeCandidate> AutoSizeLadder(int vocab_size, int context);

Status AutoSize(const AutoSizeOptions& opt, AutoSizeResult* out);

// Muennighoff et al.'s data-constrained loss (their eq. 5 with Chinchilla's
// constants) of `params` parameters trained on `tokens` tokens drawn from
// `unique` unique ones (unique <= 0: no repetition).
double DataConstrainedLoss(double params, double tokens, double unique, double tokens_per_param);

}  // namespace lm
