// adamw.cu: the global gradient norm (sum of squares, reduced in a fixed
// order), the sum of the losses kept on the device between optimizer steps,
// and the AdamW update of the fp32 master weights, which also refreshes their
// bf16 copy. CPU twins: sum_squares / adamw_update in common/cpu/ops.h; the
// loss sum's is a plain sum (the CPU backend's mean loss, common/cpu/model.cpp).
#include <cmath>

#include "cuda/device.cuh"

namespace lm {
namespace cuda {

namespace {
// Blocks of the first pass: fixed, so that the order of the sum is too.
constexpr int kSquaresBlocks = 1024;
constexpr int kThreads = 256;

__device__ __forceinline__ float4 load4(const float* p) {
  LM_CHECK_ALIGNED16(p);
  return *reinterpret_cast<const float4*>(p);
}
__device__ __forceinline__ void store4(float* p, float4 v) {
  LM_CHECK_ALIGNED16(p);
  *reinterpret_cast<float4*>(p) = v;
}
}  // namespace

// Per-thread fp32 partial sums of x^2 (SQUARE) or x (four values a load with
// VEC), a block sum, written to partial[block]. NaN or Inf anywhere makes the
// sum non-finite, which is what the caller tests.
__device__ __forceinline__ float term(float x, bool square) {
  return square ? x * x : x;
}
template <bool VEC, bool SQUARE>
__global__ void sum_kernel(const float* __restrict__ x, int64_t n, double* __restrict__ partial) {
  __shared__ float scratch[32];
  float acc = 0.f;
  const int64_t stride = (int64_t)gridDim.x * blockDim.x,
                first = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if constexpr (VEC) {
    for (int64_t i = first; i < n / 4; i += stride) {
      float4 v = load4(x + 4 * i);
      acc += term(v.x, SQUARE) + term(v.y, SQUARE) + term(v.z, SQUARE) + term(v.w, SQUARE);
    }
    for (int64_t i = n / 4 * 4 + first; i < n; i += stride) acc += term(x[i], SQUARE);
  } else {
    for (int64_t i = first; i < n; i += stride) acc += term(x[i], SQUARE);
  }
  float t = block_sum(acc, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = (double)t;
}

// One block: *out = (accumulate ? *out : 0) + scale * the partial sums, added
// in a fixed order in double.
__global__ void sum_partials_kernel(const double* __restrict__ partial, int count,
                                    double* __restrict__ out, double scale, bool accumulate) {
  __shared__ double s[kThreads];
  double t = 0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) t += partial[i];
  s[threadIdx.x] = t;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if ((int)threadIdx.x < half) s[threadIdx.x] += s[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = (accumulate ? *out : 0.0) + scale * s[0];
}

struct AdamStep {
  float lr, b1, b2, eps, wd, step_size, bc2_sqrt, grad_scale;
};

__device__ __forceinline__ float adam_one(float& p, float g, float& m, float& v,
                                          const AdamStep& a) {
  g *= a.grad_scale;
  m = a.b1 * m + (1.f - a.b1) * g;
  v = a.b2 * v + (1.f - a.b2) * g * g;
  p -= a.lr * a.wd * p;
  p -= a.step_size * m / (sqrtf(v) / a.bc2_sqrt + a.eps);
  return p;
}

// step_size = lr / (1 - b1^t), bc2_sqrt = sqrt(1 - b2^t), computed on the host in
// double like the CPU twin. VEC: four parameters a thread with 16-byte
// accesses (p16 with an 8-byte one), then the tail one at a time.
template <bool VEC>
__global__ void adamw_kernel(float* __restrict__ p, bf16* __restrict__ p16,
                             const float* __restrict__ g, float* __restrict__ m,
                             float* __restrict__ v, int64_t n, AdamStep a) {
  const int64_t stride = (int64_t)gridDim.x * blockDim.x,
                first = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  int64_t tail = 0;
  if constexpr (VEC) {
    for (int64_t i = first; i < n / 4; i += stride) {
      float4 pv = load4(p + 4 * i), gv = load4(g + 4 * i), mv = load4(m + 4 * i),
             vv = load4(v + 4 * i);
      adam_one(pv.x, gv.x, mv.x, vv.x, a);
      adam_one(pv.y, gv.y, mv.y, vv.y, a);
      adam_one(pv.z, gv.z, mv.z, vv.z, a);
      adam_one(pv.w, gv.w, mv.w, vv.w, a);
      store4(p + 4 * i, pv);
      store4(m + 4 * i, mv);
      store4(v + 4 * i, vv);
      if (p16) {
        __nv_bfloat162 lo = __floats2bfloat162_rn(pv.x, pv.y),
                       hi = __floats2bfloat162_rn(pv.z, pv.w);
        uint2 raw;
        memcpy(&raw.x, &lo, 4);
        memcpy(&raw.y, &hi, 4);
        *reinterpret_cast<uint2*>(p16 + 4 * i) = raw;
      }
    }
    tail = n / 4 * 4;
  }
  for (int64_t i = tail + first; i < n; i += stride) {
    float pi = p[i], mi = m[i], vi = v[i];
    adam_one(pi, g[i], mi, vi, a);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
    if (p16) p16[i] = to_bf(pi);
  }
}

int64_t sum_squares_scratch() {
  return kSquaresBlocks;
}

namespace {
Status Sum(const float* x, int64_t n, bool square, double* partial, double* out, double scale,
           bool accumulate, cudaStream_t s) {
  if (n < 0) return Status::Invalid("sum_squares: negative count");
  const bool vec = aligned16(x);
  // A block count that depends on n alone: the order of the sum is fixed.
  const unsigned blocks = blocks_for(n, kThreads * 16, kSquaresBlocks);
  auto kernel = square ? (vec ? sum_kernel<true, true> : sum_kernel<false, true>)
                       : (vec ? sum_kernel<true, false> : sum_kernel<false, false>);
  LM_LAUNCH(kernel, blocks, kThreads, 0, s, x, n, partial);
  LM_CUDA_LAUNCHED(square ? "sum_kernel<squares>" : "sum_kernel<values>");
  LM_LAUNCH(sum_partials_kernel, 1, kThreads, 0, s, partial, (int)blocks, out, scale, accumulate);
  LM_CUDA_LAUNCHED("sum_partials_kernel");
  return Status::OK();
}
}  // namespace

Status sum_partials(const double* partial, int count, double* sum, cudaStream_t s) {
  if (count < 0 || count > kSquaresBlocks) return Status::Invalid("sum_partials: bad count");
  LM_LAUNCH(sum_partials_kernel, 1, kThreads, 0, s, partial, count, sum, 1.0, false);
  LM_CUDA_LAUNCHED("sum_partials_kernel");
  return Status::OK();
}

Status sum_squares(const float* x, int64_t n, double* partial, double* sum, cudaStream_t s) {
  return Sum(x, n, true, partial, sum, 1.0, false, s);
}

Status sum_accumulate(const float* x, int64_t n, double scale, double* partial, double* acc,
                      cudaStream_t s) {
  return Sum(x, n, false, partial, acc, scale, true, s);
}

Status adamw_update(float* params, bf16* p16, const float* grads, float* m, float* v, int64_t n,
                    float lr, float b1, float b2, float eps, float wd, int64_t t, float grad_scale,
                    cudaStream_t s) {
  if (n < 0 || t < 1) return Status::Invalid("adamw_update: bad count or step");
  if (n == 0) return Status::OK();
  double bc1 = 1.0 - std::pow((double)b1, (double)t);
  double bc2 = 1.0 - std::pow((double)b2, (double)t);
  AdamStep a{lr, b1, b2, eps, wd, (float)(lr / bc1), (float)std::sqrt(bc2), grad_scale};
  const bool vec = aligned16(params) && aligned16(grads) && aligned16(m) && aligned16(v) &&
                   (!p16 || (reinterpret_cast<uintptr_t>(p16) & 7) == 0);
  auto kernel = vec ? adamw_kernel<true> : adamw_kernel<false>;
  LM_LAUNCH(kernel, blocks_for(vec ? n / 4 + 1 : n, kThreads * 4, 65536), kThreads, 0, s, params,
            p16, grads, m, v, n, a);
  LM_CUDA_LAUNCHED("adamw_kernel");
  return Status::OK();
}

}  // namespace cuda
}  // namespace lm
