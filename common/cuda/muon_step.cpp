// muon_step.cpp: one Muon step of a matrix on the device (muon_step.h).
#ifdef LM_HAVE_CUDA
#include "cuda/muon_step.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "cuda/check.h"
#include "cuda/kernels.h"

namespace lm {
namespace cuda {

namespace {

// The quintic's coefficients and the norm's epsilon: cpu/muon.h's kNsA, kNsB,
// kNsC and kNsEps (the cuda library does not link the CPU one).
constexpr float kA = 3.4445f, kB = -4.7750f, kC = 2.0315f, kEps = 1e-7f;

// One iteration on the row-major iterate X (rows,cols) into Xn. Row-major X
// read column-major with ld = cols is X^T (cols,rows), which the products
// below are written in. Wide (rows <= cols), k = rows:
//   A = X X^T;  B = c A A + b A;  Xn^T = X^T B + a X^T  (Xn = B X + a X)
// tall, k = cols:
//   A = X^T X;  B = c A A + b A;  Xn^T = B X^T + a X^T  (Xn = X B + a X)
Status Iterate(Matmul* mm, const MuonScratch& s, const bf16* X, bf16* Xn, int64_t rows,
               int64_t cols) {
  const bool wide = rows <= cols;
  const int64_t k = wide ? rows : cols;
  Gemm g;  // A (k,k), bf16
  g.ta = wide;
  g.tb = !wide;
  g.m = g.n = k;
  g.k = wide ? cols : rows;
  g.A = X;
  g.lda = cols;
  g.B = X;
  g.ldb = cols;
  g.D = s.a;
  g.ldc = k;
  LM_RETURN_IF_ERROR(mm->Run(g));
  Gemm p;  // B = c A A + b A (A symmetric: no transposes)
  p.m = p.n = p.k = k;
  p.A = s.a;
  p.lda = k;
  p.B = s.a;
  p.ldb = k;
  p.C = s.a;
  p.D = s.b;
  p.ldc = k;
  p.alpha = kC;
  p.beta = kB;
  LM_RETURN_IF_ERROR(mm->Run(p));
  Gemm x;  // Xn^T (cols,rows) = a X^T + (X^T B or B X^T)
  x.m = cols;
  x.n = rows;
  x.k = k;
  x.A = wide ? (const void*)X : (const void*)s.b;
  x.lda = wide ? cols : k;
  x.B = wide ? (const void*)s.b : (const void*)X;
  x.ldb = wide ? k : cols;
  x.C = X;
  x.D = Xn;
  x.ldc = cols;
  x.alpha = 1.f;
  x.beta = kA;
  return mm->Run(x);
}

template <class T>
Status Alloc(T** p, int64_t n) {
  LM_CUDA_RETURN(cudaMalloc((void**)p, (size_t)std::max<int64_t>(n, 1) * sizeof(T)));
  return Status::OK();
}

}  // namespace

Status AllocMuonScratch(const ParamLayout& layout, MuonScratch* s) {
  FreeMuonScratch(s);
  for (const TensorInfo& t : layout.tensors) {
    if (t.group != ParamGroup::kMatrix) continue;
    s->max_numel = std::max<int64_t>(s->max_numel, (int64_t)t.numel);
    s->max_k = std::max<int64_t>(s->max_k, std::min(t.rows(), t.cols()));
  }
  const int64_t n = s->max_numel, kk = s->max_k * s->max_k;
  Status st = Alloc(&s->u, n);
  if (st.ok()) st = Alloc(&s->x, n);
  if (st.ok()) st = Alloc(&s->xn, n);
  if (st.ok()) st = Alloc(&s->a, kk);
  if (st.ok()) st = Alloc(&s->b, kk);
  if (st.ok()) st = Alloc(&s->sumsq, 1);
  if (!st.ok()) FreeMuonScratch(s);
  return st;
}

void FreeMuonScratch(MuonScratch* s) {
  for (void* p :
       {(void*)s->u, (void*)s->x, (void*)s->xn, (void*)s->a, (void*)s->b, (void*)s->sumsq})
    if (p) cudaFree(p);
  *s = MuonScratch();
}

Status MuonStepDevice(Matmul* mm, const MuonScratch& s, float* w, bf16* w16, const float* grad,
                      float* mom, int64_t rows, int64_t cols, const MuonConfig& mc,
                      float grad_scale, cudaStream_t stream) {
  const int64_t n = rows * cols;
  if (rows < 1 || cols < 1 || n > s.max_numel || std::min(rows, cols) > s.max_k)
    return Status::Invalid("muon step: a " + std::to_string(rows) + " x " + std::to_string(cols) +
                           " matrix does not fit the scratch");
  LM_CUDA_RETURN(cudaMemsetAsync(s.sumsq, 0, sizeof(double), stream));
  LM_RETURN_IF_ERROR(
      muon_momentum(s.u, mom, grad, n, mc.momentum, mc.nesterov, grad_scale, s.sumsq, stream));
  LM_RETURN_IF_ERROR(ns_normalize(s.x, s.u, n, s.sumsq, kEps, stream));
  bf16 *x = s.x, *xn = s.xn;
  for (int i = 0; i < mc.ns_steps; i++) {
    LM_RETURN_IF_ERROR(Iterate(mm, s, x, xn, rows, cols));
    std::swap(x, xn);
  }
  const float scale = (float)std::sqrt(std::max(1.0, (double)rows / (double)cols));
  return muon_apply(w, w16, x, n, mc.lr, mc.weight_decay, scale, stream);
}

}  // namespace cuda
}  // namespace lm
#endif  // LM_HAVE_CUDA
