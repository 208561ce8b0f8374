// muon.cpp: the Muon optimizer's CPU reference (muon.h). Everything runs on
// the calling thread with single-threaded OpenBLAS, so that the backend can
// hand whole matrices to threads and results never depend on the thread count.
#include "cpu/muon.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "cpu/gemm.h"

namespace lm {
namespace cpu {

double muon_shape_scale(int64_t rows, int64_t cols) {
  return std::sqrt(std::max(1.0, (double)rows / (double)cols));
}

namespace {

template <typename T>
void muon_momentum_(T* out, T* mom, const T* grad, int64_t n, float mu, bool nesterov,
                    float grad_scale) {
  const T m = (T)mu, keep = (T)(1.0f - mu), gs = (T)grad_scale;
  for (int64_t i = 0; i < n; i++) {
    const T g = grad[i] * gs;
    const T b = mom[i] + keep * (g - mom[i]);
    mom[i] = b;
    out[i] = nesterov ? g + m * (b - g) : b;
  }
}

template <typename T>
void ns_normalize_(T* out, const T* in, int64_t n) {
  double ss = 0;  // in a fixed order: the same sum on every run
  for (int64_t i = 0; i < n; i++) ss += (double)in[i] * (double)in[i];
  const T inv = (T)(1.0 / (std::sqrt(ss) + (double)kNsEps));
  for (int64_t i = 0; i < n; i++) out[i] = in[i] * inv;
}

template <typename T>
void muon_apply_(T* p, const T* x, int64_t n, float lr, float wd, float scale) {
  const T keep = (T)(1.0f - lr * wd), step = (T)(lr * scale);
  for (int64_t i = 0; i < n; i++) p[i] = p[i] * keep - step * x[i];
}

// Scratch: X and Xn (rows*cols each), then A and B (k*k each). Each
// iteration is three products, the coefficients folded into their alpha and
// beta as the CUDA twin runs them through cuBLASLt.
template <typename T>
void newton_schulz_(T* out, const T* g, int rows, int cols, int steps, T* scratch) {
  blas_single_threaded();
  const int64_t n = (int64_t)rows * cols;
  const size_t kk = (size_t)std::min(rows, cols) * std::min(rows, cols);
  const int k = std::min(rows, cols);
  const bool wide = rows <= cols;  // the Gram matrix is k x k either way
  T* X = scratch;
  T* Xn = X + n;
  T* A = Xn + n;
  T* B = A + kk;
  ns_normalize_(X, g, n);
  for (int s = 0; s < steps; s++) {
    if (wide)  // A = X X^T
      gemm(false, true, k, k, cols, T(1), X, cols, X, cols, T(0), A, k);
    else  // A = X^T X
      gemm(true, false, k, k, rows, T(1), X, cols, X, cols, T(0), A, k);
    std::memcpy(B, A, kk * sizeof(T));  // B = c A A + b A
    gemm(false, false, k, k, k, T(kNsC), A, k, A, k, T(kNsB), B, k);
    std::memcpy(Xn, X, (size_t)n * sizeof(T));  // Xn = B X + a X (X B + a X when tall)
    if (wide)
      gemm(false, false, rows, cols, rows, T(1), B, k, X, cols, T(kNsA), Xn, cols);
    else
      gemm(false, false, rows, cols, cols, T(1), X, cols, B, k, T(kNsA), Xn, cols);
    std::swap(X, Xn);
  }
  std::memmove(out, X, (size_t)n * sizeof(T));
}

template <typename T>
void muon_update_(T* w, const T* grad, T* mom, int rows, int cols, const MuonStep& s, T* scratch) {
  const int64_t n = (int64_t)rows * cols;
  T* u = scratch;
  muon_momentum_(u, mom, grad, n, s.momentum, s.nesterov, s.grad_scale);
  newton_schulz_(u, u, rows, cols, s.ns_steps, scratch + n);
  muon_apply_(w, u, n, s.lr, s.weight_decay, (float)muon_shape_scale(rows, cols));
}

}  // namespace

size_t newton_schulz_scratch(int rows, int cols) {
  const size_t n = (size_t)rows * cols, k = (size_t)std::min(rows, cols);
  return 3 * n + 2 * k * k;  // muon_update's update, then newton_schulz's own
}

void muon_momentum(float* out, float* mom, const float* grad, int64_t n, float mu, bool nesterov,
                   float grad_scale) {
  muon_momentum_(out, mom, grad, n, mu, nesterov, grad_scale);
}
void muon_momentum(double* out, double* mom, const double* grad, int64_t n, float mu, bool nesterov,
                   float grad_scale) {
  muon_momentum_(out, mom, grad, n, mu, nesterov, grad_scale);
}
void ns_normalize(float* out, const float* in, int64_t n) {
  ns_normalize_(out, in, n);
}
void ns_normalize(double* out, const double* in, int64_t n) {
  ns_normalize_(out, in, n);
}
void muon_apply(float* p, const float* x, int64_t n, float lr, float wd, float scale) {
  muon_apply_(p, x, n, lr, wd, scale);
}
void muon_apply(double* p, const double* x, int64_t n, float lr, float wd, float scale) {
  muon_apply_(p, x, n, lr, wd, scale);
}
void newton_schulz(float* out, const float* g, int rows, int cols, int steps, float* scratch) {
  newton_schulz_(out, g, rows, cols, steps, scratch);
}
void newton_schulz(double* out, const double* g, int rows, int cols, int steps, double* scratch) {
  newton_schulz_(out, g, rows, cols, steps, scratch);
}
void muon_update(float* w, const float* grad, float* mom, int rows, int cols, const MuonStep& s,
                 float* scratch) {
  muon_update_(w, grad, mom, rows, cols, s, scratch);
}
void muon_update(double* w, const double* grad, double* mom, int rows, int cols, const MuonStep& s,
                 double* scratch) {
  muon_update_(w, grad, mom, rows, cols, s, scratch);
}

}  // namespace cpu
}  // namespace lm
