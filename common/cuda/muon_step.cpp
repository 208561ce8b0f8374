// muon_step.cpp: one Muon step of a matrix on the device (muon_step.h).
#ifdef LM_HAVE_CUDA
#include "cuda/muon_step.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "cuda/check.h"
#include "cuda/kernels.h"

namespace lm {
namespace cuda {

namespace {

// The quintic's coefficients and the norm's epsilon: cpu/muon.h's kNsA, kNsB,
// kNsC and kNsEps (the cuda library does not link the CPU one).
constexpr float kA = 3.4445f, kB = -4.7750f, kC = 2.0315f, kEps = 1e-7f;

// A = X X^T (wide, rows <= cols) or X^T X (tall), k x k. Row-major X read
// column-major with ld = cols is X^T (cols,rows), which the products are
// written in.
Status Gram(Matmul* mm, const bf16* X, bf16* A, int64_t rows, int64_t cols) {
  const bool wide = rows <= cols;
  const int64_t k = wide ? rows : cols;
  Gemm g;
  g.ta = wide;
  g.tb = !wide;
  g.m = g.n = k;
  g.k = wide ? cols : rows;
  g.A = X;
  g.lda = cols;
  g.B = X;
  g.ldb = cols;
  g.D = A;
  g.ldc = k;
  return mm->Run(g);
}

// B = c A A + b A (A symmetric, so no transposes).
Status Polynomial(Matmul* mm, const bf16* A, bf16* B, int64_t k) {
  Gemm p;
  p.m = p.n = p.k = k;
  p.A = A;
  p.lda = k;
  p.B = A;
  p.ldb = k;
  p.C = A;
  p.D = B;
  p.ldc = k;
  p.alpha = kC;
  p.beta = kB;
  return mm->Run(p);
}

// Xn = B X + a X (wide) or X B + a X (tall); column-major, Xn^T (cols,rows) =
// X^T B + a X^T or B X^T + a X^T (B symmetric).
Status Combine(Matmul* mm, const bf16* X, const bf16* B, bf16* Xn, int64_t rows, int64_t cols) {
  const bool wide = rows <= cols;
  const int64_t k = wide ? rows : cols;
  Gemm x;
  x.m = cols;
  x.n = rows;
  x.k = k;
  x.A = wide ? (const void*)X : (const void*)B;
  x.lda = wide ? cols : k;
  x.B = wide ? (const void*)B : (const void*)X;
  x.ldb = wide ? k : cols;
  x.C = X;
  x.D = Xn;
  x.ldc = cols;
  x.beta = kA;
  return mm->Run(x);
}

template <class T>
Status AllocOne(const DeviceAlloc& alloc, T** p, int64_t n) {
  void* q = nullptr;
  LM_RETURN_IF_ERROR(alloc(&q, (size_t)std::max<int64_t>(n, 1) * sizeof(T)));
  *p = static_cast<T*>(q);
  return Status::OK();
}

}  // namespace

Status AllocMuonScratch(const ParamLayout& layout, const DeviceAlloc& alloc, MuonScratch* s) {
  *s = MuonScratch();
  for (const TensorInfo& t : layout.tensors) {
    if (t.group != ParamGroup::kMatrix) continue;
    s->max_numel = std::max<int64_t>(s->max_numel, (int64_t)t.numel);
    s->max_k = std::max<int64_t>(s->max_k, std::min(t.rows(), t.cols()));
  }
  if (s->max_numel == 0) return Status::OK();
  const int64_t n = s->max_numel, kk = s->max_k * s->max_k;
  LM_RETURN_IF_ERROR(AllocOne(alloc, &s->u, n));
  LM_RETURN_IF_ERROR(AllocOne(alloc, &s->x, n));
  LM_RETURN_IF_ERROR(AllocOne(alloc, &s->xn, n));
  LM_RETURN_IF_ERROR(AllocOne(alloc, &s->a, kk));
  LM_RETURN_IF_ERROR(AllocOne(alloc, &s->b, kk));
  LM_RETURN_IF_ERROR(AllocOne(alloc, &s->partial, sum_squares_scratch()));
  return AllocOne(alloc, &s->sumsq, 1);
}

void FreeMuonScratch(MuonScratch* s) {
  for (void* p : {(void*)s->u, (void*)s->x, (void*)s->xn, (void*)s->a, (void*)s->b,
                  (void*)s->partial, (void*)s->sumsq})
    if (p) cudaFree(p);
  *s = MuonScratch();
}

Status NewtonSchulzDevice(Matmul* mm, const MuonScratch& s, int64_t rows, int64_t cols, int steps,
                          bf16** out) {
  const int64_t k = std::min(rows, cols);
  bf16 *x = s.x, *xn = s.xn;
  for (int i = 0; i < steps; i++) {
    LM_RETURN_IF_ERROR(Gram(mm, x, s.a, rows, cols));
    LM_RETURN_IF_ERROR(Polynomial(mm, s.a, s.b, k));
    LM_RETURN_IF_ERROR(Combine(mm, x, s.b, xn, rows, cols));
    std::swap(x, xn);
  }
  *out = x;
  return Status::OK();
}

Status MuonStepDevice(Matmul* mm, const MuonScratch& s, float* w, bf16* w16, const float* grad,
                      float* mom, int64_t rows, int64_t cols, const MuonConfig& mc,
                      float grad_scale, cudaStream_t stream) {
  const int64_t n = rows * cols;
  if (rows < 1 || cols < 1 || n > s.max_numel || std::min(rows, cols) > s.max_k || !s.u)
    return Status::Invalid("muon step: a " + std::to_string(rows) + " x " + std::to_string(cols) +
                           " matrix does not fit the scratch");
  if (mc.ns_steps < 0) return Status::Invalid("muon step: negative Newton-Schulz step count");
  LM_RETURN_IF_ERROR(muon_momentum(s.u, mom, grad, n, mc.momentum, mc.nesterov, grad_scale,
                                   s.partial, s.sumsq, stream));
  LM_RETURN_IF_ERROR(ns_normalize(s.x, s.u, n, s.sumsq, kEps, stream));
  bf16* x = nullptr;
  LM_RETURN_IF_ERROR(NewtonSchulzDevice(mm, s, rows, cols, mc.ns_steps, &x));
  const float scale = (float)std::sqrt(std::max(1.0, (double)rows / (double)cols));
  return muon_apply(w, w16, x, n, mc.lr, mc.weight_decay, scale, stream);
}

}  // namespace cuda
}  // namespace lm
#endif  // LM_HAVE_CUDA
