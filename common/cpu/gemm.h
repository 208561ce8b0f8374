// gemm.h: row-major matrix products through OpenBLAS for both precisions the
// CPU ops are built in (float for the backend, double for the gradient tests).
#pragma once

#include <cblas.h>

namespace lm {
namespace cpu {

// C (M,N) = alpha * op(A) op(B) + beta * C, row-major; op transposes when ta/tb.
inline void gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda,
                 const float* B, int ldb, float beta, float* C, int ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
              K, alpha, A, lda, B, ldb, beta, C, ldc);
}
inline void gemm(bool ta, bool tb, int M, int N, int K, double alpha, const double* A, int lda,
                 const double* B, int ldb, double beta, double* C, int ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
              K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// Makes OpenBLAS single-threaded when it is the pthreads build (the ops split
// products across OpenMP threads themselves). Cheap; every product op calls it.
void blas_single_threaded();

}  // namespace cpu
}  // namespace lm
