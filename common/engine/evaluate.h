// evaluate.h: how lm-eval and lm-train's validation turn a token sequence
// into a loss: the windows, their batching, and the sums. Both call Evaluate,
// so that the same windows give the same figures in both.
//
// Method (docs/eval.md). The data is tokens x[0..N). Window k covers the tokens
// [k*S, min(k*S + T + 1, N)): its inputs are all of them but the last, its
// targets all of them but the first, so each target is predicted from the
// tokens before it in its own window only. The last window is the one that
// reaches x[N-1]. A target is scored in the first window that holds it, which
// means: with S == T the windows are consecutive and every target is scored;
// with S < T the windows overlap and each window after the first scores only
// its last S targets (Hugging Face's strided perplexity, so that every target
// after the first window has at least T - S + 1 tokens of context). x[0] is
// never a target; every
// other token is scored exactly once. Windows are independent, so the
// batching (B windows per forward pass) cannot change which losses are summed.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "util/status.h"

namespace lm {

struct EvalWindow {
  int64_t begin = 0;  // first token (an input)
  int targets = 0;    // targets x[begin+1 .. begin+targets]; <= T
  int scored = 0;     // the last `scored` of them count; 1 <= scored <= targets
};

// The windows for N tokens, context T (targets per window) and stride S
// (1 <= S <= T), as the method above says. Invalid when N < 2 (no target) or
// T, S out of range.
Status PlanWindows(int64_t n_tokens, int T, int S, std::vector<EvalWindow>* out);

// lm-train's validation windows (docs/formats/checkpoint.md): T' = min(T, N-1)
// targets each, W = max(1, min((N-1)/T', ceil(max_targets/T'))) windows, one
// every floor((N-1)/W) tokens, every target of each scored, so that a sample
// of max_targets stands for the whole split. Empty when N < 2 or max_targets
// is 0.
void SpreadWindows(int64_t n_tokens, int T, uint64_t max_targets, std::vector<EvalWindow>* out);

// Running sums over scored targets: all of them for the loss, the non-special
// ones for bits per byte.
struct EvalSums {
  int64_t targets = 0;  // scored targets
  double loss = 0;      // sum of their losses, nats
  // Welford's running mean and sum of squared deviations of the losses (for
  // the standard error): sum(x^2) - n mean^2 cancels when the losses are close.
  double run_mean = 0, run_m2 = 0;
  int64_t text_targets = 0;  // scored targets that are not special tokens
  double text_loss = 0;      // sum of their losses, nats
  int64_t bytes = 0;         // UTF-8 bytes those targets decode to

  // Adds one scored target.
  void Add(double nats, bool special, int64_t nbytes);
  double mean_loss() const { return targets ? loss / targets : 0; }
  double perplexity() const;
  // Total text loss in bits over the bytes.
  double bits_per_byte() const;
  // Standard error of the mean loss: sample standard deviation / sqrt(n),
  // treating the per-token losses as independent (0 when n < 2).
  double std_error() const;
};

struct EvalOptions {
  int context = 0;  // T
  int stride = 0;   // S (0: T)
  int batch = 1;    // windows per ForwardLoss call (<= the backend's max_batch)
};

// Reads tokens [start, start+n) of the data into out (ids, < vocab size).
using TokenReader = std::function<Status(int64_t start, int64_t n, int32_t* out)>;
// Called after each batch with the number of targets scored so far.
using EvalProgress = std::function<void(int64_t scored)>;

// Scores `windows` of the tokens read through `read` on `backend` (Init'ed
// with max_batch >= batch and max_seq >= the widest window), `batch` windows
// per ForwardLoss call. token_bytes[id] is the UTF-8 length of token id, or -1
// for a special token; ids beyond it are an error, and so is a non-finite
// loss. per_target, when not null, is resized to n_tokens and receives at [p]
// the loss of target x[p] (NaN where none is scored): for tests.
Status EvaluateWindows(Backend* backend, const std::vector<EvalWindow>& windows, int batch,
                       int64_t n_tokens, const TokenReader& read,
                       const std::vector<int32_t>& token_bytes, const EvalProgress& progress,
                       EvalSums* sums, std::vector<float>* per_target);

// PlanWindows(n_tokens, opt.context, opt.stride), then EvaluateWindows.
Status Evaluate(Backend* backend, int64_t n_tokens, const TokenReader& read,
                const std::vector<int32_t>& token_bytes, const EvalOptions& opt,
                const EvalProgress& progress, EvalSums* sums, std::vector<float>* per_target);

}  // namespace lm
