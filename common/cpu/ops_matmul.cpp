// ops_matmul.cpp: the linear layer (y = x W^T) through OpenBLAS, forward and
// backward. Declared in ops.h.
#include "cpu/gemm.h"
#include "cpu/ops.h"

namespace lm {
namespace cpu {

SerialBlas::SerialBlas() : saved_(0) {
  // 1: pthreads build. The OpenMP build (2) is serial inside parallel regions
  // already, and there openblas_set_num_threads would also change OpenMP's count.
  if (openblas_get_parallel() == 1) {
    saved_ = openblas_get_num_threads();
    openblas_set_num_threads(1);
  }
}

SerialBlas::~SerialBlas() {
  if (saved_ > 0) openblas_set_num_threads(saved_);
}

namespace {

template <typename T>
void matmul_forward_(T* out, const T* x, const T* w, int N, int IC, int OC) {
  // out (N,OC) = x (N,IC) . w (OC,IC)^T
  gemm(false, true, N, OC, IC, T(1), x, IC, w, IC, T(0), out, OC);
}

template <typename T>
void matmul_backward_(T* dx, T* dw, const T* dout, const T* x, const T* w, int N, int IC, int OC) {
  // dx (N,IC) += dout (N,OC) . w (OC,IC)
  if (dx) gemm(false, false, N, IC, OC, T(1), dout, OC, w, IC, T(1), dx, IC);
  // dw (OC,IC) += dout^T (OC,N) . x (N,IC)
  if (dw) gemm(true, false, OC, IC, N, T(1), dout, OC, x, IC, T(1), dw, IC);
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
