// ops_loss.cpp: softmax cross-entropy over a padded vocabulary, and the
// optimizer's pieces (sum of squares for the global norm, AdamW). Declared in ops.h.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/ops.h"
#include "cpu/vexp.h"

namespace lm {
namespace cpu {

namespace {

// See ops_basic.cpp: small loops stay on one thread; results do not depend on it.
constexpr int64_t kSerialBelow = 1 << 15;

template <typename T>
LM_CPU_CLONES void cross_entropy_(T* losses, T* dlogits, const T* logits, const int32_t* targets,
                                  int N, int V, int Vp, T dloss) {
#pragma omp parallel for schedule(static) if ((int64_t)N * V >= kSerialBelow)
  for (int n = 0; n < N; n++) {
    const T* l = logits + (size_t)n * Vp;
    const int tgt = targets[n];
    if (tgt < 0) {
      if (losses) losses[n] = 0;
      if (dlogits) std::fill(dlogits + (size_t)n * Vp, dlogits + (size_t)(n + 1) * Vp, T(0));
      continue;
    }
    const T mx = max_of(l, V);
    const T target_logit = l[tgt];  // read before dlogits may overwrite it
    T* d = dlogits ? dlogits + (size_t)n * Vp : nullptr;
    const double sum = exp_sum(d, l, V, mx);  // d keeps each exp for the gradient
    if (d) {
      const T k = (T)(1.0 / sum) * dloss;
#pragma omp simd
      for (int v = 0; v < V; v++) d[v] *= k;
      d[tgt] -= dloss;
      for (int v = V; v < Vp; v++) d[v] = 0;
    }
    if (losses) losses[n] = (T)((double)mx + std::log(sum) - (double)target_logit);
  }
}

}  // namespace

void cross_entropy_forward_backward(float* losses, float* dlogits, const float* logits,
                                    const int32_t* targets, int N, int V, int Vp, float dloss) {
  cross_entropy_(losses, dlogits, logits, targets, N, V, Vp, dloss);
}
void cross_entropy_forward_backward(double* losses, double* dlogits, const double* logits,
                                    const int32_t* targets, int N, int V, int Vp, double dloss) {
  cross_entropy_(losses, dlogits, logits, targets, N, V, Vp, dloss);
}

LM_CPU_CLONES double sum_squares(const float* x, int64_t n) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part((size_t)chunks);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; c++) {
    const int64_t i0 = c * kChunk, i1 = std::min(n, i0 + kChunk);
    double s = 0;
    for (int64_t i = i0; i < i1; i++) s += (double)x[i] * x[i];
    part[(size_t)c] = s;
  }
  double total = 0;
  for (double p : part) total += p;
  return total;
}

LM_CPU_CLONES void adamw_update(float* params, const float* grads, float* m, float* v, int64_t n,
                                float lr, float b1, float b2, float eps, float wd, int64_t t,
                                float grad_scale) {
  const double bc1 = 1.0 - std::pow((double)b1, (double)t);
  const double bc2 = 1.0 - std::pow((double)b2, (double)t);
  const float step_size = (float)(lr / bc1);
  const float bc2_sqrt = (float)std::sqrt(bc2);
  const float decay = 1.0f - lr * wd;
#pragma omp parallel for schedule(static) if (n >= kSerialBelow)
  for (int64_t i = 0; i < n; i++) {
    const float g = grads[i] * grad_scale;
    const float mi = b1 * m[i] + (1.0f - b1) * g;
    const float vi = b2 * v[i] + (1.0f - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) / bc2_sqrt + eps;
    params[i] = params[i] * decay - step_size * mi / denom;
  }
}

}  // namespace cpu
}  // namespace lm
