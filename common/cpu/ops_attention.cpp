// ops_attention.cpp: exact causal self-attention with grouped-query heads,
// forward (training and KV-cache decoding) and backward. Declared in ops.h.
//
// Each head is processed in blocks of query rows: scores for a block are one
// gemm against the keys it may see (so the masked upper triangle is mostly
// skipped), then a row softmax, then one gemm with the values. The backward
// pass recomputes the probabilities from the saved log-sum-exp, as
// FlashAttention does, instead of keeping (B,H,T,T) probabilities.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/gemm.h"
#include "cpu/ops.h"
#include "cpu/vexp.h"

namespace lm {
namespace cpu {

namespace {

constexpr int kRows = 64;  // query rows per block
// Fewer score elements than this run on one thread (the result is the same).
constexpr int64_t kSerialBelow = 1 << 15;

// The calling thread's scratch of at least n elements, kept for its next call.
// It grows by doubling, so decoding one token at a time (n = keys so far)
// allocates a few times in a whole sequence, not once per token and layer as a
// vector per call did; it stays at most 2 x kRows x context per thread.
template <typename T>
T* Scratch(size_t n) {
  thread_local std::vector<T> buf;
  if (buf.size() < n) buf.resize(std::max(n, 2 * buf.size()));
  return buf.data();
}

// One head. q (Tq rows, stride ldq), k and v (Tk rows, stride ldkv), out (Tq
// rows, stride ldo), lse (Tq) or null. Query i sits at position Tk-Tq+i.
// S is scratch of kRows*Tk.
template <typename T>
LM_CPU_CLONES void head_forward(T* out, int ldo, T* lse, const T* q, int ldq, const T* k,
                                const T* v, int ldkv, int Tq, int Tk, int hd, T scale, T* S) {
  const int off = Tk - Tq;
  for (int i0 = 0; i0 < Tq; i0 += kRows) {
    const int m = std::min(kRows, Tq - i0);
    const int nk = off + i0 + m;  // keys visible to the block's last row
    gemm(false, true, m, nk, hd, scale, q + (size_t)i0 * ldq, ldq, k, ldkv, T(0), S, nk);
    for (int i = 0; i < m; i++) {
      T* s = S + (size_t)i * nk;
      const int last = off + i0 + i;  // inclusive
      const T mx = max_of(s, last + 1);
      const double sum = exp_sum(s, s, last + 1, mx);
      const T inv = (T)(1.0 / sum);
#pragma omp simd
      for (int j = 0; j <= last; j++) s[j] *= inv;
      for (int j = last + 1; j < nk; j++) s[j] = 0;
      if (lse) lse[i0 + i] = mx + (T)std::log(sum);
    }
    gemm(false, false, m, hd, nk, T(1), S, nk, v, ldkv, T(0), out + (size_t)i0 * ldo, ldo);
  }
}

template <typename T>
void attention_forward_(T* out, T* lse, const T* q, const T* k, const T* v, int B, int T_, int H,
                        int KVH, int hd) {
  const T scale = T(1) / std::sqrt(T(hd));
  const int group = H / KVH;
  const int ldq = H * hd, ldkv = KVH * hd;
  blas_single_threaded();
#pragma omp parallel if ((int64_t)B * H * T_ * T_ * hd >= kSerialBelow)
  {
    std::vector<T> S((size_t)kRows * T_);
#pragma omp for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
      const int b = bh / H, h = bh % H, g = h / group;
      const size_t qo = (size_t)b * T_ * ldq + (size_t)h * hd;
      const size_t ko = (size_t)b * T_ * ldkv + (size_t)g * hd;
      head_forward(out + qo, ldq, lse ? lse + (size_t)bh * T_ : nullptr, q + qo, ldq, k + ko,
                   v + ko, ldkv, T_, T_, hd, scale, S.data());
    }
  }
}

template <typename T>
void attention_forward_cached_(T* out, const T* q, const T* kc, const T* vc, int Tq, int Tk, int H,
                               int KVH, int hd) {
  const T scale = T(1) / std::sqrt(T(hd));
  const int group = H / KVH;
  const int ldq = H * hd, ldkv = KVH * hd;
  blas_single_threaded();
#pragma omp parallel if ((int64_t)H * Tq * Tk * hd >= kSerialBelow)
  {
    T* S = Scratch<T>((size_t)std::min(kRows, Tq) * Tk);
#pragma omp for schedule(static)
    for (int h = 0; h < H; h++) {
      const int g = h / group;
      head_forward(out + (size_t)h * hd, ldq, (T*)nullptr, q + (size_t)h * hd, ldq,
                   kc + (size_t)g * hd, vc + (size_t)g * hd, ldkv, Tq, Tk, hd, scale, S);
    }
  }
}

template <typename T>
LM_CPU_CLONES void attention_backward_(T* dq, T* dk, T* dv, const T* dout, const T* out,
                                       const T* lse, const T* q, const T* k, const T* v, int B,
                                       int T_, int H, int KVH, int hd) {
  const T scale = T(1) / std::sqrt(T(hd));
  const int group = H / KVH;
  const int ldq = H * hd, ldkv = KVH * hd;
  blas_single_threaded();
  // Parallel over (b, kv head): the query heads of a group all add into the
  // same dk and dv, so one thread handles the whole group, in order.
#pragma omp parallel if ((int64_t)B * H * T_ * T_ * hd >= kSerialBelow)
  {
    std::vector<T> P((size_t)kRows * T_), dP((size_t)kRows * T_);
#pragma omp for schedule(static)
    for (int bg = 0; bg < B * KVH; bg++) {
      const int b = bg / KVH, g = bg % KVH;
      const size_t ko = (size_t)b * T_ * ldkv + (size_t)g * hd;
      const T* kg = k + ko;
      const T* vg = v + ko;
      for (int h = g * group; h < (g + 1) * group; h++) {
        const size_t qo = (size_t)b * T_ * ldq + (size_t)h * hd;
        const T* lh = lse + ((size_t)b * H + h) * T_;
        for (int i0 = 0; i0 < T_; i0 += kRows) {
          const int m = std::min(kRows, T_ - i0);
          const int nk = i0 + m;
          const T* qb = q + qo + (size_t)i0 * ldq;
          const T* ob = out + qo + (size_t)i0 * ldq;
          const T* gb = dout + qo + (size_t)i0 * ldq;
          // Recompute P exactly as the forward did its scores.
          gemm(false, true, m, nk, hd, scale, qb, ldq, kg, ldkv, T(0), P.data(), nk);
          gemm(false, true, m, nk, hd, T(1), gb, ldq, vg, ldkv, T(0), dP.data(), nk);
          for (int i = 0; i < m; i++) {
            T* p = P.data() + (size_t)i * nk;
            T* dp = dP.data() + (size_t)i * nk;
            const int last = i0 + i;
            const T l = lh[i0 + i];
            // D = sum_j P dP = dout . out for the row.
            T D = 0;
            for (int c = 0; c < hd; c++) D += gb[(size_t)i * ldq + c] * ob[(size_t)i * ldq + c];
#pragma omp simd
            for (int j = 0; j <= last; j++) {
              p[j] = vexp(p[j] - l);
              dp[j] = p[j] * (dp[j] - D);
            }
            for (int j = last + 1; j < nk; j++) p[j] = dp[j] = 0;
          }
          // dv (nk,hd) += P^T (nk,m) . dout (m,hd)
          if (dv) gemm(true, false, nk, hd, m, T(1), P.data(), nk, gb, ldq, T(1), dv + ko, ldkv);
          // dq (m,hd) += scale dS (m,nk) . k (nk,hd)
          if (dq)
            gemm(false, false, m, hd, nk, scale, dP.data(), nk, kg, ldkv, T(1),
                 dq + qo + (size_t)i0 * ldq, ldq);
          // dk (nk,hd) += scale dS^T (nk,m) . q (m,hd)
          if (dk) gemm(true, false, nk, hd, m, scale, dP.data(), nk, qb, ldq, T(1), dk + ko, ldkv);
        }
      }
    }
  }
}

}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       int B, int T, int H, int KVH, int hd) {
  attention_forward_(out, lse, q, k, v, B, T, H, KVH, hd);
}
void attention_forward(double* out, double* lse, const double* q, const double* k, const double* v,
                       int B, int T, int H, int KVH, int hd) {
  attention_forward_(out, lse, q, k, v, B, T, H, KVH, hd);
}
void attention_forward_cached(float* out, const float* q, const float* kc, const float* vc, int Tq,
                              int Tk, int H, int KVH, int hd) {
  attention_forward_cached_(out, q, kc, vc, Tq, Tk, H, KVH, hd);
}
void attention_forward_cached(double* out, const double* q, const double* kc, const double* vc,
                              int Tq, int Tk, int H, int KVH, int hd) {
  attention_forward_cached_(out, q, kc, vc, Tq, Tk, H, KVH, hd);
}
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out,
                        const float* lse, const float* q, const float* k, const float* v, int B,
                        int T, int H, int KVH, int hd) {
  attention_backward_(dq, dk, dv, dout, out, lse, q, k, v, B, T, H, KVH, hd);
}
void attention_backward(double* dq, double* dk, double* dv, const double* dout, const double* out,
                        const double* lse, const double* q, const double* k, const double* v, int B,
                        int T, int H, int KVH, int hd) {
  attention_backward_(dq, dk, dv, dout, out, lse, q, k, v, B, T, H, KVH, hd);
}

}  // namespace cpu
}  // namespace lm
