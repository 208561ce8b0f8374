// evaluate.cpp: windows, batches and sums of lm-eval (method in evaluate.h).
#include "engine/evaluate.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace lm {

Status PlanWindows(int64_t n_tokens, int T, int S, std::vector<EvalWindow>* out) {
  out->clear();
  if (T < 1) return Status::Usage("context " + std::to_string(T) + ": expected >= 1");
  if (S < 1 || S > T)
    return Status::Usage("stride " + std::to_string(S) + ": expected 1 <= stride <= context (" +
                         std::to_string(T) + ")");
  if (n_tokens < 2)
    return Status::Invalid("nothing to score: " + std::to_string(n_tokens) +
                           " token(s), and the first token is never a target");
  int64_t scored_to = 1;  // targets x[1 .. scored_to) are done
  for (int64_t begin = 0;; begin += S) {
    int64_t end = std::min<int64_t>(begin + (int64_t)T + 1, n_tokens);
    EvalWindow w;
    w.begin = begin;
    w.targets = (int)(end - begin - 1);
    w.scored = (int)(end - scored_to);
    out->push_back(w);
    scored_to = end;
    if (end == n_tokens) break;
  }
  return Status::OK();
}

void EvalSums::Add(double nats, bool special, int64_t nbytes) {
  targets++;
  loss += nats;
  const double d = nats - run_mean;
  run_mean += d / (double)targets;
  run_m2 += d * (nats - run_mean);
  if (!special) {
    text_targets++;
    text_loss += nats;
    bytes += nbytes;
  }
}

double EvalSums::perplexity() const {
  return std::exp(mean_loss());
}

double EvalSums::bits_per_byte() const {
  if (bytes == 0) return std::numeric_limits<double>::quiet_NaN();
  return text_loss / std::log(2.0) / (double)bytes;
}

double EvalSums::std_error() const {
  if (targets < 2) return 0;
  const double n = (double)targets, var = run_m2 / (n - 1);
  return var > 0 ? std::sqrt(var / n) : 0;
}

namespace {

// Reads window w and lays out its row: inputs all its tokens but the last,
// targets (-1 elsewhere) the scored ones.
Status FillRow(const EvalWindow& w, const TokenReader& read, int64_t V, int32_t* tokens,
               int32_t* in, int32_t* tg) {
  LM_RETURN_IF_ERROR(read(w.begin, (int64_t)w.targets + 1, tokens));
  for (int i = 0; i <= w.targets; i++) {
    if (tokens[i] < 0 || tokens[i] >= V)
      return Status::Invalid("token " + std::to_string(tokens[i]) + " at position " +
                             std::to_string(w.begin + i) +
                             " is outside the model's vocabulary (size " + std::to_string(V) + ")");
  }
  for (int i = 0; i < w.targets; i++) in[i] = tokens[i];
  for (int i = w.targets - w.scored; i < w.targets; i++) tg[i] = tokens[i + 1];
  return Status::OK();
}

}  // namespace

void SpreadWindows(int64_t n_tokens, int T, uint64_t max_targets, std::vector<EvalWindow>* out) {
  out->clear();
  if (n_tokens < 2 || max_targets == 0 || T < 1) return;
  const uint64_t n = (uint64_t)n_tokens;
  const int width = (int)std::min<uint64_t>((uint64_t)T, n - 1);
  uint64_t count = std::min<uint64_t>((n - 1) / width, (max_targets + width - 1) / width);
  count = std::max<uint64_t>(count, 1);
  const uint64_t every = (n - 1) / count;  // >= width
  for (uint64_t k = 0; k < count; k++) out->push_back({(int64_t)(k * every), width, width});
}

Status Evaluate(Backend* backend, int64_t n_tokens, const TokenReader& read,
                const std::vector<int32_t>& token_bytes, const EvalOptions& opt,
                const EvalProgress& progress, EvalSums* sums, std::vector<float>* per_target) {
  *sums = EvalSums();
  std::vector<EvalWindow> windows;
  LM_RETURN_IF_ERROR(
      PlanWindows(n_tokens, opt.context, opt.stride ? opt.stride : opt.context, &windows));
  return EvaluateWindows(backend, windows, opt.batch, n_tokens, read, token_bytes, progress, sums,
                         per_target);
}

Status EvaluateWindows(Backend* backend, const std::vector<EvalWindow>& windows, int batch,
                       int64_t n_tokens, const TokenReader& read,
                       const std::vector<int32_t>& token_bytes, const EvalProgress& progress,
                       EvalSums* sums, std::vector<float>* per_target) {
  *sums = EvalSums();
  if (batch < 1) return Status::Usage("batch " + std::to_string(batch) + ": expected >= 1");
  if (windows.empty()) return Status::Invalid("no windows to evaluate");
  if (per_target) per_target->assign((size_t)n_tokens, std::numeric_limits<float>::quiet_NaN());

  // Every call has the same width (the widest window), so that a position's
  // loss cannot depend on which windows share its batch.
  int width = 0;
  for (const EvalWindow& w : windows) width = std::max(width, w.targets);
  const int B = batch;
  const int64_t V = (int64_t)token_bytes.size();
  std::vector<int32_t> tokens((size_t)width + 1), inputs((size_t)B * width),
      targets((size_t)B * width);
  std::vector<float> losses((size_t)B * width);

  for (size_t w0 = 0; w0 < windows.size(); w0 += (size_t)B) {
    const int rows = (int)std::min<size_t>((size_t)B, windows.size() - w0);
    std::fill(inputs.begin(), inputs.end(), 0);
    std::fill(targets.begin(), targets.end(), -1);
    for (int r = 0; r < rows; r++)
      LM_RETURN_IF_ERROR(FillRow(windows[w0 + r], read, V, tokens.data(),
                                 &inputs[(size_t)r * width], &targets[(size_t)r * width]));
    LM_RETURN_IF_ERROR(
        backend->ForwardLoss(inputs.data(), targets.data(), rows, width, losses.data()));
    for (int r = 0; r < rows; r++) {
      const EvalWindow& w = windows[w0 + r];
      for (int i = w.targets - w.scored; i < w.targets; i++) {
        float l = losses[(size_t)r * width + i];
        if (!std::isfinite(l))
          return Status::Invalid("the model's loss at position " + std::to_string(w.begin + i + 1) +
                                 " is not finite (" + std::to_string(l) + ")");
        int32_t id = targets[(size_t)r * width + i];
        int32_t nb = token_bytes[id];
        sums->Add(l, nb < 0, nb < 0 ? 0 : nb);
        if (per_target) (*per_target)[(size_t)(w.begin + i + 1)] = l;
      }
    }
    if (progress) progress(sums->targets);
  }
  return Status::OK();
}

}  // namespace lm
