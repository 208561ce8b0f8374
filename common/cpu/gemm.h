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

// While alive, OpenBLAS runs single-threaded: for products issued from inside
// an OpenMP parallel region (attention), where each thread already has its own
// work. The OpenMP build of OpenBLAS does this by itself; the pthread build
// (Debian's default alternative) would otherwise oversubscribe the cores.
class SerialBlas {
 public:
  SerialBlas();
  ~SerialBlas();
  SerialBlas(const SerialBlas&) = delete;
  SerialBlas& operator=(const SerialBlas&) = delete;

 private:
  int saved_;
};

}  // namespace cpu
}  // namespace lm
