// adamw.cu: the global gradient norm (sum of squares) and the AdamW update of
// the fp32 master weights, which also refreshes their bf16 copy. CPU twin:
// sum_squares / adamw_update in common/cpu/ops.h.
#include <cmath>

#include "cuda/device.cuh"

namespace lm {
namespace cuda {

// Per-thread fp32 partial sums, a block sum, then one double atomic per block.
// NaN or Inf anywhere makes the sum non-finite, which is what the caller tests.
__global__ void sum_squares_kernel(const float* __restrict__ x, int64_t n,
                                   double* __restrict__ out) {
  __shared__ float scratch[32];
  float acc = 0.f;
  int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
    acc += x[i] * x[i];
  float t = block_sum(acc, scratch);
  if (threadIdx.x == 0) atomicAdd(out, (double)t);
}

// step_size = lr / (1 - b1^t), bc2_sqrt = sqrt(1 - b2^t), computed on the host in
// double like the CPU twin.
__global__ void adamw_kernel(float* __restrict__ p, bf16* __restrict__ p16,
                             const float* __restrict__ g, float* __restrict__ m,
                             float* __restrict__ v, int64_t n, float lr, float b1, float b2,
                             float eps, float wd, float step_size, float bc2_sqrt,
                             float grad_scale) {
  int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    float gi = g[i] * grad_scale;
    float mi = b1 * m[i] + (1.f - b1) * gi;
    float vi = b2 * v[i] + (1.f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float pi = p[i];
    pi -= lr * wd * pi;
    pi -= step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
    p[i] = pi;
    if (p16) p16[i] = to_bf(pi);
  }
}

Status sum_squares(const float* x, int64_t n, double* sum, cudaStream_t s) {
  if (n < 0) return Status::Invalid("sum_squares: negative count");
  if (n == 0) return Status::OK();
  LM_LAUNCH(sum_squares_kernel, blocks_for(n, 256 * 8, 2048), 256, 0, s, x, n, sum);
  LM_CUDA_LAUNCHED("sum_squares_kernel");
  return Status::OK();
}

Status adamw_update(float* params, bf16* p16, const float* grads, float* m, float* v, int64_t n,
                    float lr, float b1, float b2, float eps, float wd, int64_t t, float grad_scale,
                    cudaStream_t s) {
  if (n < 0 || t < 1) return Status::Invalid("adamw_update: bad count or step");
  if (n == 0) return Status::OK();
  double bc1 = 1.0 - std::pow((double)b1, (double)t);
  double bc2 = 1.0 - std::pow((double)b2, (double)t);
  float step_size = (float)(lr / bc1);
  float bc2_sqrt = (float)std::sqrt(bc2);
  LM_LAUNCH(adamw_kernel, blocks_for(n, 256 * 4, 65536), 256, 0, s, params, p16, grads, m, v, n, lr,
            b1, b2, eps, wd, step_size, bc2_sqrt, grad_scale);
  LM_CUDA_LAUNCHED("adamw_kernel");
  return Status::OK();
}

}  // namespace cuda
}  // namespace lm
