// ops_matmul.cpp: the linear layer (y = x W^T) through OpenBLAS, forward and
// backward. Declared in ops.h.
#include <omp.h>

#include "cpu/gemm.h"
#include "cpu/ops.h"

namespace lm {
namespace cpu {

void blas_single_threaded() {
  if (openblas_get_parallel() == 1 && openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

namespace {

// Below this many multiply-adds a product runs on one thread.
constexpr int64_t kSerialBelow = 1 << 18;

// Start of part i of n split into `parts` near-equal ranges.
inline int Split(int n, int parts, int i) {
  return (int)((int64_t)n * i / parts);
}

// The products are split across the OpenMP threads by hand, each thread calling
// single-threaded BLAS on its block of rows: one pool of threads instead of
// OpenMP's and OpenBLAS's competing for the cores, and a fixed partition (so
// fixed results) for a given thread count.
template <typename T>
void matmul_forward_(T* out, const T* x, const T* w, int N, int IC, int OC) {
  blas_single_threaded();
  // out (N,OC) = x (N,IC) . w (OC,IC)^T, rows of out split across threads.
#pragma omp parallel if ((int64_t)N * IC * OC >= kSerialBelow)
  {
    const int nth = omp_get_num_threads(), tid = omp_get_thread_num();
    if (N >= 8 * nth) {
      const int n0 = Split(N, nth, tid), n1 = Split(N, nth, tid + 1);
      gemm(false, true, n1 - n0, OC, IC, T(1), x + (size_t)n0 * IC, IC, w, IC, T(0),
           out + (size_t)n0 * OC, OC);
    } else {  // few rows (decoding): split the output columns instead
      const int o0 = Split(OC, nth, tid), o1 = Split(OC, nth, tid + 1);
      if (o1 > o0)
        gemm(false, true, N, o1 - o0, IC, T(1), x, IC, w + (size_t)o0 * IC, IC, T(0), out + o0, OC);
    }
  }
}

template <typename T>
void matmul_backward_(T* dx, T* dw, const T* dout, const T* x, const T* w, int N, int IC, int OC) {
  blas_single_threaded();
#pragma omp parallel if ((int64_t)N * IC * OC >= kSerialBelow)
  {
    const int nth = omp_get_num_threads(), tid = omp_get_thread_num();
    // dx (N,IC) += dout (N,OC) . w (OC,IC): rows of dx split.
    const int n0 = Split(N, nth, tid), n1 = Split(N, nth, tid + 1);
    if (dx && n1 > n0)
      gemm(false, false, n1 - n0, IC, OC, T(1), dout + (size_t)n0 * OC, OC, w, IC, T(1),
           dx + (size_t)n0 * IC, IC);
    // dw (OC,IC) += dout^T (OC,N) . x (N,IC): rows of dw split.
    const int o0 = Split(OC, nth, tid), o1 = Split(OC, nth, tid + 1);
    if (dw && o1 > o0)
      gemm(true, false, o1 - o0, IC, N, T(1), dout + o0, OC, x, IC, T(1), dw + (size_t)o0 * IC, IC);
  }
}

}  // namespace

void matmul_forward(float* out, const float* x, const float* w, int N, int IC, int OC) {
  matmul_forward_(out, x, w, N, IC, OC);
}
void matmul_forward(double* out, const double* x, const double* w, int N, int IC, int OC) {
  matmul_forward_(out, x, w, N, IC, OC);
}
void matmul_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, int N,
                     int IC, int OC) {
  matmul_backward_(dx, dw, dout, x, w, N, IC, OC);
}
void matmul_backward(double* dx, double* dw, const double* dout, const double* x, const double* w,
                     int N, int IC, int OC) {
  matmul_backward_(dx, dw, dout, x, w, N, IC, OC);
}

}  // namespace cpu
}  // namespace lm
