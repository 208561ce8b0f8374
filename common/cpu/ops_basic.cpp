// ops_basic.cpp: the element- and row-wise CPU ops (embedding, RMSNorm, RoPE,
// SwiGLU, residual). Declared in ops.h; each is a template instantiated for
// float (the backend) and double (the finite-difference tests).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "cpu/ops.h"
#include "cpu/vexp.h"

namespace lm {
namespace cpu {

namespace {

// Column blocks for reductions over rows (dw of RMSNorm, the embedding's
// scatter): each block is owned by one thread and summed over rows in order, so
// the result is the same for every thread count.
constexpr int kColBlock = 16;
// Loops over fewer elements than this run on one thread: waking the team costs
// more than the work. Every output element is computed the same way whatever the
// partition, so this never changes a result.
constexpr int64_t kSerialBelow = 1 << 15;

// ---- embedding --------------------------------------------------------------

template <typename T>
void embedding_forward_(T* out, const int32_t* ids, const T* table, int N, int C) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= kSerialBelow)
  for (int n = 0; n < N; n++) {
    const T* row = table + (size_t)ids[n] * C;
    T* o = out + (size_t)n * C;
    for (int c = 0; c < C; c++) o[c] = row[c];
  }
}

template <typename T>
void embedding_backward_(T* dtable, const T* dout, const int32_t* ids, int N, int C) {
  const int nblocks = (C + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= kSerialBelow)
  for (int blk = 0; blk < nblocks; blk++) {
    const int c0 = blk * kColBlock, c1 = std::min(C, c0 + kColBlock);
    for (int n = 0; n < N; n++) {
      T* d = dtable + (size_t)ids[n] * C;
      const T* g = dout + (size_t)n * C;
      for (int c = c0; c < c1; c++) d[c] += g[c];
    }
  }
}

// ---- RMSNorm ------------------------------------------------------------------

template <typename T>
LM_CPU_CLONES void rmsnorm_forward_(T* out, T* rstd, const T* x, const T* w, int N, int C,
                                    float eps) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= kSerialBelow)
  for (int n = 0; n < N; n++) {
    const T* xr = x + (size_t)n * C;
    T* o = out + (size_t)n * C;
    double ss = 0;  // in double: the sum of C squares must not lose the small ones
    for (int c = 0; c < C; c++) ss += (double)xr[c] * xr[c];
    const T r = (T)(1.0 / std::sqrt(ss / C + (double)eps));
    rstd[n] = r;
    for (int c = 0; c < C; c++) o[c] = (xr[c] * r) * w[c];
  }
}

template <typename T>
LM_CPU_CLONES void rmsnorm_backward_(T* dx, T* dw, const T* dout, const T* x, const T* w,
                                     const T* rstd, int N, int C) {
  if (dx) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= kSerialBelow)
    for (int n = 0; n < N; n++) {
      const T* xr = x + (size_t)n * C;
      const T* g = dout + (size_t)n * C;
      T* d = dx + (size_t)n * C;
      const T r = rstd[n];
      // y = x r w with r = (mean(x^2) + eps)^-1/2, so
      // dx = r w dy - x r^3 / C * sum(dy w x).
      double dot = 0;
      for (int c = 0; c < C; c++) dot += (double)(g[c] * w[c]) * xr[c];
      const T k = (T)(dot * r * r * r / C);
      for (int c = 0; c < C; c++) d[c] += r * w[c] * g[c] - k * xr[c];
    }
  }
  if (dw) {
    const int nblocks = (C + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= kSerialBelow)
    for (int blk = 0; blk < nblocks; blk++) {
      const int c0 = blk * kColBlock, c1 = std::min(C, c0 + kColBlock);
      T acc[kColBlock] = {};
      for (int n = 0; n < N; n++) {
        const T* xr = x + (size_t)n * C;
        const T* g = dout + (size_t)n * C;
        const T r = rstd[n];
        for (int c = c0; c < c1; c++) acc[c - c0] += g[c] * (xr[c] * r);
      }
      for (int c = c0; c < c1; c++) dw[c] += acc[c - c0];
    }
  }
}

// ---- RoPE ---------------------------------------------------------------------

// cos and sin (T, hd/2) of positions pos0..pos0+T-1. The angle is formed in
// fp32 exactly as transformers' LlamaRotaryEmbedding does (fp32 inv_freq times
// fp32 position), so that our logits match its to the last bits. The vectors
// only grow: decoding one token allocates nothing once they have their size.
template <typename T>
void rope_table(std::vector<T>* cs, std::vector<T>* sn, std::vector<float>* inv_freq, int T_,
                int hd, int pos0, float theta) {
  const int half = hd / 2;
  cs->resize((size_t)T_ * half);
  sn->resize((size_t)T_ * half);
  std::vector<float>& inv = *inv_freq;
  inv.resize(half);
  for (int i = 0; i < half; i++) inv[i] = 1.0f / std::pow(theta, (float)(2 * i) / (float)hd);
  for (int t = 0; t < T_; t++) {
    const float pos = (float)(pos0 + t);
    for (int i = 0; i < half; i++) {
      const float a = pos * inv[i];
      (*cs)[(size_t)t * half + i] = (T)std::cos((double)a);
      (*sn)[(size_t)t * half + i] = (T)std::sin((double)a);
    }
  }
}

template <typename T>
LM_CPU_CLONES void rope_apply(T* x, int B, int T_, int nh, int hd, int pos0, float theta,
                              bool inverse) {
  // The calling thread's tables, reused by its next call. Only pointers enter
  // the parallel loop: there, the names would be each worker's own (empty) vectors.
  thread_local std::vector<T> cs, sn;
  thread_local std::vector<float> inv;
  rope_table(&cs, &sn, &inv, T_, hd, pos0, theta);
  const T* cos_t = cs.data();
  const T* sin_t = sn.data();
  const int half = hd / 2;
  const int rows = B * T_;
#pragma omp parallel for schedule(static) if ((int64_t)rows * nh * hd >= kSerialBelow)
  for (int r = 0; r < rows; r++) {
    const int t = r % T_;
    const T* c = cos_t + (size_t)t * half;
    const T* s = sin_t + (size_t)t * half;
    for (int h = 0; h < nh; h++) {
      T* v = x + ((size_t)r * nh + h) * hd;
      for (int i = 0; i < half; i++) {
        const T x1 = v[i], x2 = v[i + half];
        if (!inverse) {
          v[i] = x1 * c[i] - x2 * s[i];
          v[i + half] = x2 * c[i] + x1 * s[i];
        } else {  // the transpose of the rotation
          v[i] = x1 * c[i] + x2 * s[i];
          v[i + half] = x2 * c[i] - x1 * s[i];
        }
      }
    }
  }
}

// ---- SwiGLU -------------------------------------------------------------------

template <typename T>
LM_CPU_CLONES void swiglu_forward_(T* out, const T* gate, const T* up, int N, int F) {
  const int64_t n = (int64_t)N * F;
#pragma omp parallel for simd schedule(static) if (n >= kSerialBelow)
  for (int64_t i = 0; i < n; i++) {
    const T g = gate[i];
    out[i] = g / (T(1) + vexp(-g)) * up[i];
  }
}

template <typename T>
LM_CPU_CLONES void swiglu_backward_(T* dgate, T* dup, const T* dout, const T* gate, const T* up,
                                    int N, int F) {
  const int64_t n = (int64_t)N * F;
  if (dgate && dup) {  // the training path, branch-free so that it vectorises
#pragma omp parallel for simd schedule(static) if (n >= kSerialBelow)
    for (int64_t i = 0; i < n; i++) {
      const T g = gate[i];
      const T sig = T(1) / (T(1) + vexp(-g));
      const T silu = g * sig;
      dup[i] += dout[i] * silu;
      // d silu/dg = sig + g sig (1 - sig)
      dgate[i] += dout[i] * up[i] * (sig + silu * (T(1) - sig));
    }
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    const T g = gate[i];
    const T sig = T(1) / (T(1) + vexp(-g));
    const T silu = g * sig;
    if (dup) dup[i] += dout[i] * silu;
    if (dgate) dgate[i] += dout[i] * up[i] * (sig + silu * (T(1) - sig));
  }
}

// ---- residual -----------------------------------------------------------------

template <typename T>
void residual_forward_(T* out, const T* a, const T* b, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kSerialBelow)
  for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

template <typename T>
void residual_backward_(T* da, T* db, const T* dout, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kSerialBelow)
  for (int64_t i = 0; i < n; i++) {
    if (da) da[i] += dout[i];
    if (db) db[i] += dout[i];
  }
}

}  // namespace

#define LM_BASIC_OPS(T)                                                                            \
  void embedding_forward(T* out, const int32_t* ids, const T* table, int N, int C) {               \
    embedding_forward_(out, ids, table, N, C);                                                     \
  }                                                                                                \
  void embedding_backward(T* dtable, const T* dout, const int32_t* ids, int N, int C) {            \
    embedding_backward_(dtable, dout, ids, N, C);                                                  \
  }                                                                                                \
  void rmsnorm_forward(T* out, T* rstd, const T* x, const T* w, int N, int C, float eps) {         \
    rmsnorm_forward_(out, rstd, x, w, N, C, eps);                                                  \
  }                                                                                                \
  void rmsnorm_backward(T* dx, T* dw, const T* dout, const T* x, const T* w, const T* rstd, int N, \
                        int C) {                                                                   \
    rmsnorm_backward_(dx, dw, dout, x, w, rstd, N, C);                                             \
  }                                                                                                \
  void rope_forward(T* x, int B, int T_, int nh, int hd, int pos0, float theta) {                  \
    rope_apply(x, B, T_, nh, hd, pos0, theta, false);                                              \
  }                                                                                                \
  void rope_backward(T* dx, int B, int T_, int nh, int hd, int pos0, float theta) {                \
    rope_apply(dx, B, T_, nh, hd, pos0, theta, true);                                              \
  }                                                                                                \
  void swiglu_forward(T* out, const T* gate, const T* up, int N, int F) {                          \
    swiglu_forward_(out, gate, up, N, F);                                                          \
  }                                                                                                \
  void swiglu_backward(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int N,         \
                       int F) {                                                                    \
    swiglu_backward_(dgate, dup, dout, gate, up, N, F);                                            \
  }                                                                                                \
  void residual_forward(T* out, const T* a, const T* b, int64_t n) {                               \
    residual_forward_(out, a, b, n);                                                               \
  }                                                                                                \
  void residual_backward(T* da, T* db, const T* dout, int64_t n) {                                 \
    residual_backward_(da, db, dout, n);                                                           \
  }

LM_BASIC_OPS(float)
LM_BASIC_OPS(double)

}  // namespace cpu
}  // namespace lm
