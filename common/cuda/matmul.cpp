// matmul.cpp: cuBLASLt products with plans cached per shape and alignment
// (matmul.h). CPU twin: matmul_forward / matmul_backward in common/cpu/ops.h.
#ifdef LM_HAVE_CUDA
#include "cuda/matmul.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "cuda/check.h"

namespace lm {
namespace cuda {

// Under tests/gpu/emu.h the cuBLAS half below is replaced by a host GEMM with
// the same column-major contract; the row-major helpers after it are shared.
#ifndef LM_CUDA_EMULATE
namespace {

Status BlasError(cublasStatus_t st, const char* what) {
  return Status::Invalid(std::string(what) + ": " + cublasGetStatusString(st));
}
#define LM_BLAS_RETURN(expr)                                        \
  do {                                                              \
    cublasStatus_t _st = (expr);                                    \
    if (_st != CUBLAS_STATUS_SUCCESS) return BlasError(_st, #expr); \
  } while (0)

// Largest power of two (<= 256) dividing the address: cuBLASLt's heuristic
// otherwise assumes 256-byte alignment and may pick a kernel that needs it.
int Alignment(const void* p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  int al = 256;
  while (al > 1 && (a % al) != 0) al >>= 1;
  return al;
}

}  // namespace

Matmul::~Matmul() {
  for (auto& kv : plans_) {
    Plan& p = kv.second;
    if (p.desc) cublasLtMatmulDescDestroy(p.desc);
    if (p.a) cublasLtMatrixLayoutDestroy(p.a);
    if (p.b) cublasLtMatrixLayoutDestroy(p.b);
    if (p.c) cublasLtMatrixLayoutDestroy(p.c);
  }
  if (workspace_) cudaFree(workspace_);
  if (blas_) cublasDestroy(blas_);
  if (lt_) cublasLtDestroy(lt_);
}

Status Matmul::Init(cudaStream_t stream, size_t workspace_bytes) {
  stream_ = stream;
  LM_BLAS_RETURN(cublasLtCreate(&lt_));
  LM_BLAS_RETURN(cublasCreate(&blas_));
  LM_BLAS_RETURN(cublasSetStream(blas_, stream_));
  // Tensor-core math with fp32 accumulation; no reduced-precision reductions.
  LM_BLAS_RETURN(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH));
  workspace_bytes_ = workspace_bytes;
  if (workspace_bytes_) LM_CUDA_RETURN(cudaMalloc(&workspace_, workspace_bytes_));
  const char* f = getenv("LM_CUDA_GEMMEX");
  force_fallback_ = f && f[0] == '1';
  const char* t = getenv("LM_CUDA_GEMM_TUNE");
  tune_ = !(t && t[0] == '0');
  return Status::OK();
}

Status Matmul::GetPlan(const Gemm& g, Plan** plan) {
  const void* C = g.C ? g.C : g.D;
  Key key{(g.ta ? 1 : 0) | (g.tb ? 2 : 0), g.m, g.n, g.k, g.lda, g.ldb, g.ldc,
          g.out == OutType::kF32 ? 1 : 0, Alignment(g.A), Alignment(g.B),
          // C and D apart: the heuristic is told each one's alignment, so a
          // plan made for (C 256, D 16) must not serve (C 16, D 256).
          Alignment(C), Alignment(g.D), g.beta != 0.f ? 1 : 0};
  auto it = plans_.find(key);
  if (it != plans_.end()) {
    *plan = &it->second;
    return Status::OK();
  }
  Plan& p = plans_[key];
  *plan = &p;
  cudaDataType_t ct = g.out == OutType::kF32 ? CUDA_R_32F : CUDA_R_16BF;
  LM_BLAS_RETURN(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t opa = g.ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = g.tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  LM_BLAS_RETURN(
      cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa)));
  LM_BLAS_RETURN(
      cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof(opb)));
  // Stored shapes (column-major): A is m x k, or k x m when transposed; likewise B.
  LM_BLAS_RETURN(
      cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, g.ta ? g.k : g.m, g.ta ? g.m : g.k, g.lda));
  LM_BLAS_RETURN(
      cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, g.tb ? g.n : g.k, g.tb ? g.k : g.n, g.ldb));
  LM_BLAS_RETURN(cublasLtMatrixLayoutCreate(&p.c, ct, g.m, g.n, g.ldc));

  cublasLtMatmulPreference_t pref = nullptr;
  LM_BLAS_RETURN(cublasLtMatmulPreferenceCreate(&pref));
  uint64_t ws = workspace_bytes_;
  uint32_t al_a = Alignment(g.A), al_b = Alignment(g.B), al_c = Alignment(C), al_d = Alignment(g.D);
  cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                              &al_a, sizeof(al_a));
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                              &al_b, sizeof(al_b));
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                              &al_c, sizeof(al_c));
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                              &al_d, sizeof(al_d));
  if (st != CUBLAS_STATUS_SUCCESS) {
    cublasLtMatmulPreferenceDestroy(pref);
    return BlasError(st, "cublasLtMatmulPreferenceSetAttribute");
  }
  cublasLtMatmulHeuristicResult_t res[kTuneCandidates];
  int count = 0;
  st = cublasLtMatmulAlgoGetHeuristic(lt_, p.desc, p.a, p.b, p.c, p.c, pref,
                                      tune_ ? kTuneCandidates : 1, res, &count);
  cublasLtMatmulPreferenceDestroy(pref);
  // No algorithm (NOT_SUPPORTED or zero results) is not an error: the fallback runs.
  if (st != CUBLAS_STATUS_SUCCESS || count == 0 || res[0].state != CUBLAS_STATUS_SUCCESS)
    return Status::OK();
  p.algo = res[0].algo;
  p.ok = true;
  if (count > 1) LM_RETURN_IF_ERROR(Tune(g, &p, res, count));
  return Status::OK();
}

// Times each candidate (one run to warm up, then the median of three) on the
// product's own operands and keeps the fastest, unless it beats the heuristic's
// first by less than 3%: a near tie keeps the same choice from run to run.
// A product that adds into its output (C == D, beta != 0) is timed on a copy of
// D, restored after; when no memory is left for the copy, the first stays.
Status Matmul::Tune(const Gemm& g, Plan* p, const cublasLtMatmulHeuristicResult_t* res, int count) {
  const bool in_place = g.beta != 0.f && (g.C == nullptr || g.C == g.D);
  const size_t bytes = (size_t)g.ldc * g.n * (g.out == OutType::kF32 ? 4 : 2);
  void* saved = nullptr;
  if (in_place) {
    if (cudaMalloc(&saved, bytes) != cudaSuccess) {
      cudaGetLastError();
      return Status::OK();
    }
    LM_CUDA_RETURN(cudaMemcpyAsync(saved, g.D, bytes, cudaMemcpyDeviceToDevice, stream_));
  }
  float best_ms = 0, first_ms = 0;
  int best = 0;
  Status s;
  for (int i = 0; i < count && s.ok(); i++) {
    if (res[i].state != CUBLAS_STATUS_SUCCESS) continue;
    float ms = 0;
    s = TimeAlgo(g, p, res[i].algo, &ms);
    if (!s.ok() || ms <= 0) continue;
    if (i == 0) first_ms = best_ms = ms;
    if (i > 0 && ms < best_ms && ms < 0.97f * first_ms) {
      best_ms = ms;
      best = i;
    }
  }
  if (in_place) {
    cudaMemcpyAsync(g.D, saved, bytes, cudaMemcpyDeviceToDevice, stream_);
    cudaStreamSynchronize(stream_);
    cudaFree(saved);
  }
  cudaGetLastError();  // a candidate that failed to run is not the product's error
  p->algo = res[best].algo;
  return Status::OK();
}

Status Matmul::TimeAlgo(const Gemm& g, Plan* p, const cublasLtMatmulAlgo_t& algo, float* ms) {
  cudaEvent_t ev[4] = {};
  for (auto& e : ev) LM_CUDA_RETURN(cudaEventCreate(&e));
  const void* C = g.C ? g.C : g.D;
  float t[3] = {0, 0, 0};
  bool ok = true;
  for (int r = 0; r < 4 && ok; r++) {  // r = 0 warms up
    if (r > 0) cudaEventRecord(ev[r - 1], stream_);
    ok = cublasLtMatmul(lt_, p->desc, &g.alpha, g.A, p->a, g.B, p->b, &g.beta, C, p->c, g.D, p->c,
                        &algo, workspace_, workspace_bytes_, stream_) == CUBLAS_STATUS_SUCCESS;
    if (r > 0 && ok) {
      cudaEventRecord(ev[3], stream_);
      ok = cudaEventSynchronize(ev[3]) == cudaSuccess &&
           cudaEventElapsedTime(&t[r - 1], ev[r - 1], ev[3]) == cudaSuccess;
    }
  }
  for (auto& e : ev) cudaEventDestroy(e);
  std::sort(t, t + 3);
  *ms = ok ? t[1] : 0;
  return Status::OK();
}

// With LM_CUDA_SYNC=1 (lm-kernel-check), a fault inside a cuBLAS kernel is
// reported at the product that caused it, not at the next kernel launched.
static Status SyncIfChecking(cudaStream_t stream, const Gemm& g, const char* what) {
  if (!SyncEachLaunch()) return Status::OK();
  cudaError_t e = cudaStreamSynchronize(stream);
  if (e == cudaSuccess) return Status::OK();
  std::string shape = std::string(what) + " (" + std::to_string(g.m) + " x " + std::to_string(g.n) +
                      " x " + std::to_string(g.k) + ")";
  return CudaError(e, ("running " + shape).c_str(), __FILE__, __LINE__);
}

Status Matmul::RunFallback(const Gemm& g) {
  fallbacks_++;
  size_t es = g.out == OutType::kF32 ? 4 : 2;
  if (g.beta != 0.f && g.C && g.C != g.D) {
    LM_CUDA_RETURN(cudaMemcpy2DAsync(g.D, g.ldc * es, g.C, g.ldc * es, g.m * es, g.n,
                                     cudaMemcpyDeviceToDevice, stream_));
  }
  if (g.m > INT32_MAX || g.n > INT32_MAX || g.k > INT32_MAX || g.lda > INT32_MAX ||
      g.ldb > INT32_MAX || g.ldc > INT32_MAX)
    return Status::Invalid("matmul fallback: dimension over 2^31");
  LM_BLAS_RETURN(cublasGemmEx(blas_, g.ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                              g.tb ? CUBLAS_OP_T : CUBLAS_OP_N, (int)g.m, (int)g.n, (int)g.k,
                              &g.alpha, g.A, CUDA_R_16BF, (int)g.lda, g.B, CUDA_R_16BF, (int)g.ldb,
                              &g.beta, g.D, g.out == OutType::kF32 ? CUDA_R_32F : CUDA_R_16BF,
                              (int)g.ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  return SyncIfChecking(stream_, g, "cublasGemmEx");
}

Status Matmul::Run(const Gemm& g) {
  if (g.m <= 0 || g.n <= 0 || g.k <= 0) {
    if (g.m < 0 || g.n < 0 || g.k < 0) return Status::Invalid("matmul: negative dimension");
    return Status::OK();  // empty product; k == 0 does not occur in the model
  }
  if (!g.A || !g.B || !g.D) return Status::Invalid("matmul: null pointer");
  if (g.beta != 0.f && !g.C) return Status::Invalid("matmul: beta without C");
  if (g.lda < (g.ta ? g.k : g.m) || g.ldb < (g.tb ? g.n : g.k) || g.ldc < g.m)
    return Status::Invalid("matmul: leading dimension too small");
  if (force_fallback_) return RunFallback(g);
  Plan* p = nullptr;
  LM_RETURN_IF_ERROR(GetPlan(g, &p));
  if (!p->ok) return RunFallback(g);
  const void* C = g.C ? g.C : g.D;
  cublasStatus_t st = cublasLtMatmul(lt_, p->desc, &g.alpha, g.A, p->a, g.B, p->b, &g.beta, C, p->c,
                                     g.D, p->c, &p->algo, workspace_, workspace_bytes_, stream_);
  if (st == CUBLAS_STATUS_NOT_SUPPORTED) {
    p->ok = false;
    return RunFallback(g);
  }
  if (st != CUBLAS_STATUS_SUCCESS) return BlasError(st, "cublasLtMatmul");
  return SyncIfChecking(stream_, g, "cublasLtMatmul");
}

#endif  // LM_CUDA_EMULATE

// Run, timed under LM_CUDA_PROFILE=1 by role and shape: "linear dW 16384x768->2304"
// is the weight gradient of a (rows x in) -> out product.
Status Matmul::RunNamed(const Gemm& g, const char* role, int64_t rows, int64_t in, int64_t out) {
  if (!ProfileOn()) return Run(g);
  ProfileBegin(stream_);
  const int64_t before = fallbacks_;
  Status s = Run(g);
  if (s.ok())
    ProfileEnd(std::string("linear ") + role + " " + std::to_string(rows) + "x" +
                   std::to_string(in) + "->" + std::to_string(out) +
                   (g.out == OutType::kF32 ? " f32" : " bf16") + (g.beta != 0.f ? " +=" : "") +
                   (fallbacks_ > before ? " (cublasGemmEx fallback)" : ""),
               2.0 * (double)rows * (double)in * (double)out);
  return s;
}

Status Matmul::Linear(const __nv_bfloat16* X, const __nv_bfloat16* W, int64_t rows, int64_t in,
                      int64_t out, void* Y, OutType ytype, float beta, const void* C) {
  Gemm g;
  g.ta = true;
  g.tb = false;
  g.m = out;
  g.n = rows;
  g.k = in;
  g.A = W;
  g.lda = in;
  g.B = X;
  g.ldb = in;
  g.C = C;
  g.D = Y;
  g.ldc = out;
  g.out = ytype;
  g.beta = beta;
  return RunNamed(g, "Y", rows, in, out);
}

Status Matmul::LinearBackData(const __nv_bfloat16* dY, const __nv_bfloat16* W, int64_t rows,
                              int64_t in, int64_t out, void* dX, OutType xtype, float beta) {
  Gemm g;
  g.m = in;
  g.n = rows;
  g.k = out;
  g.A = W;
  g.lda = in;
  g.B = dY;
  g.ldb = out;
  g.C = beta != 0.f ? dX : nullptr;
  g.D = dX;
  g.ldc = in;
  g.out = xtype;
  g.beta = beta;
  return RunNamed(g, "dX", rows, in, out);
}

Status Matmul::LinearBackWeight(const __nv_bfloat16* dY, const __nv_bfloat16* X, int64_t rows,
                                int64_t in, int64_t out, float* dW, float beta) {
  Gemm g;
  g.ta = false;
  g.tb = true;
  g.m = in;
  g.n = out;
  g.k = rows;
  g.A = X;
  g.lda = in;
  g.B = dY;
  g.ldb = out;
  g.C = beta != 0.f ? dW : nullptr;
  g.D = dW;
  g.ldc = in;
  g.out = OutType::kF32;
  g.beta = beta;
  return RunNamed(g, "dW", rows, in, out);
}

}  // namespace cuda
}  // namespace lm
#endif  // LM_HAVE_CUDA
