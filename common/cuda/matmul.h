// matmul.h: the matrix products of the CUDA backend, through cuBLASLt (bf16
// operands, fp32 compute), with the residual add fused in as the beta*C term.
// cublasGemmEx is the fallback when cuBLASLt offers no algorithm for a shape or
// alignment (or when LM_CUDA_GEMMEX=1, for debugging); LM_CUDA_PROFILE=1 names
// every product that fell back. The first product of each shape times up to
// kTuneCandidates of cuBLASLt's algorithms and keeps the fastest
// (LM_CUDA_GEMM_TUNE=0: the heuristic's first, untimed). CPU twins:
// matmul_forward / matmul_backward, and residual_forward for the fused add, in
// common/cpu/ops.h.
//
// Row-major helpers for a linear layer y = x W^T, W [out, in] as torch stores it:
//   Linear          Y[rows, out]  = X[rows, in] W^T        (+ beta * C)
//   LinearBackData  dX[rows, in]  = dY[rows, out] W        (+ beta * dX)
//   LinearBackWeight dW[out, in] = dY^T X + beta * dW      (fp32, beta 1: accumulated)
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "util/status.h"

namespace lm {
namespace cuda {

enum class OutType { kBF16, kF32 };

// One product D = alpha * op(A) op(B) + beta * C in cuBLAS's column-major terms
// (m x n result, k inner). A and B are bf16; C and D are `out` typed and share
// ldc; C may be null (then beta must be 0) or equal to D.
struct Gemm {
  bool ta = false, tb = false;
  int64_t m = 0, n = 0, k = 0;
  const void* A = nullptr;
  int64_t lda = 0;
  const void* B = nullptr;
  int64_t ldb = 0;
  const void* C = nullptr;
  void* D = nullptr;
  int64_t ldc = 0;
  OutType out = OutType::kBF16;
  float alpha = 1.f, beta = 0.f;
};

class Matmul {
 public:
  Matmul() = default;
  ~Matmul();
  Matmul(const Matmul&) = delete;
  Matmul& operator=(const Matmul&) = delete;

  Status Init(cudaStream_t stream, size_t workspace_bytes = 32u << 20);
  Status Run(const Gemm& g);

  // Y[rows, out] = X W^T + beta * C (C: [rows, out] of Y's type, may be Y or null).
  Status Linear(const __nv_bfloat16* X, const __nv_bfloat16* W, int64_t rows, int64_t in,
                int64_t out, void* Y, OutType ytype, float beta = 0.f, const void* C = nullptr);
  // dX[rows, in] = dY W + beta * dX.
  Status LinearBackData(const __nv_bfloat16* dY, const __nv_bfloat16* W, int64_t rows, int64_t in,
                        int64_t out, void* dX, OutType xtype, float beta = 0.f);
  // dW[out, in] = dY^T X + beta * dW, fp32 (beta 0: the first micro-batch writes).
  Status LinearBackWeight(const __nv_bfloat16* dY, const __nv_bfloat16* X, int64_t rows, int64_t in,
                          int64_t out, float* dW, float beta = 1.f);

  // How many products fell back to cublasGemmEx (for the check program).
  int64_t fallbacks() const { return fallbacks_; }

  // Algorithms timed per new shape (the heuristic's best first).
  static constexpr int kTuneCandidates = 6;

 private:
  Status RunNamed(const Gemm& g, const char* role, int64_t rows, int64_t in, int64_t out);

  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo;
    bool ok = false;  // false: no algorithm, use the fallback
  };
  // Transposes, shape, leading dimensions, output type, the alignment of A, B,
  // C and D (the algorithm is chosen for them), beta != 0.
  using Key = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int, int, int,
                         int, int, int>;
  Status GetPlan(const Gemm& g, Plan** plan);
  Status Tune(const Gemm& g, Plan* p, const cublasLtMatmulHeuristicResult_t* res, int count);
  Status TimeAlgo(const Gemm& g, Plan* p, const cublasLtMatmulAlgo_t& algo, float* ms);
  Status RunFallback(const Gemm& g);

  cudaStream_t stream_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  bool force_fallback_ = false, tune_ = true;
  int64_t fallbacks_ = 0;
  std::map<Key, Plan> plans_;
};

}  // namespace cuda
}  // namespace lm
