// muon.cu: the Muon optimizer's fused kernels (momentum with the sum of
// squares, normalisation into bf16, the update of the fp32 master weights and
// their bf16 copy). The Newton-Schulz products between them run through
// cuBLASLt (muon_step.cpp). CPU twins: muon_momentum (+ sum_squares),
// ns_normalize and muon_apply in common/cpu/muon.h.
#include <cmath>

#include "cuda/device.cuh"

namespace lm {
namespace cuda {

namespace {
constexpr int kMuonThreads = 256;
}  // namespace

// out = the update before orthogonalisation, mom updated (the lerp form, see
// cpu/muon.h), and partial[block] = this block's sum of out^2 (fp32 per thread,
// then a block sum), which sum_partials adds up in a fixed order.
__global__ void muon_momentum_kernel(float* __restrict__ out, float* __restrict__ mom,
                                     const float* __restrict__ grad, int64_t n, float mu,
                                     bool nesterov, float grad_scale,
                                     double* __restrict__ partial) {
  __shared__ float scratch[32];
  const float keep = 1.0f - mu;
  float acc = 0.f;
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float g = grad[i] * grad_scale;
    const float b = mom[i] + keep * (g - mom[i]);
    mom[i] = b;
    const float u = nesterov ? g + mu * (b - g) : b;
    out[i] = u;
    acc += u * u;
  }
  const float t = block_sum(acc, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = (double)t;
}

// out (bf16) = in / (sqrt(*sumsq) + eps): the norm is read on the device, so
// no step waits for the host.
__global__ void ns_normalize_kernel(bf16* __restrict__ out, const float* __restrict__ in, int64_t n,
                                    const double* __restrict__ sumsq, float eps) {
  const float inv = (float)(1.0 / (sqrt(*sumsq) + (double)eps));
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = to_bf(in[i] * inv);
}

// p = p * keep - step * x, and p16 = bf16(p) when p16 is not null.
__global__ void muon_apply_kernel(float* __restrict__ p, bf16* __restrict__ p16,
                                  const bf16* __restrict__ x, int64_t n, float keep, float step) {
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float v = p[i] * keep - step * to_f(x[i]);
    p[i] = v;
    if (p16) p16[i] = to_bf(v);
  }
}

Status muon_momentum(float* out, float* mom, const float* grad, int64_t n, float mu, bool nesterov,
                     float grad_scale, double* partial, double* sumsq, cudaStream_t s) {
  if (n < 0) return Status::Invalid("muon_momentum: negative count");
  if (!(mu >= 0.f && mu < 1.f)) return Status::Invalid("muon_momentum: momentum outside [0, 1)");
  // A block count that depends on n alone: the order of the sum is fixed.
  const unsigned blocks = blocks_for(n, kMuonThreads * 16, sum_squares_scratch());
  if (n > 0) {
    LM_LAUNCH(muon_momentum_kernel, blocks, kMuonThreads, 0, s, out, mom, grad, n, mu, nesterov,
              grad_scale, partial);
    LM_CUDA_LAUNCHED("muon_momentum_kernel");
  }
  return sum_partials(partial, n > 0 ? (int)blocks : 0, sumsq, s);
}

Status ns_normalize(bf16* out, const float* in, int64_t n, const double* sumsq, float eps,
                    cudaStream_t s) {
  if (n < 0) return Status::Invalid("ns_normalize: negative count");
  if (n == 0) return Status::OK();
  LM_LAUNCH(ns_normalize_kernel, blocks_for(n, kMuonThreads * 4, 65536), kMuonThreads, 0, s, out,
            in, n, sumsq, eps);
  LM_CUDA_LAUNCHED("ns_normalize_kernel");
  return Status::OK();
}

Status muon_apply(float* p, bf16* p16, const bf16* x, int64_t n, float lr, float wd, float scale,
                  cudaStream_t s) {
  if (n < 0) return Status::Invalid("muon_apply: negative count");
  if (n == 0) return Status::OK();
  // The same float arithmetic as the CPU twin: keep and step in float.
  const float keep = 1.0f - lr * wd, step = lr * scale;
  LM_LAUNCH(muon_apply_kernel, blocks_for(n, kMuonThreads * 4, 65536), kMuonThreads, 0, s, p, p16,
            x, n, keep, step);
  LM_CUDA_LAUNCHED("muon_apply_kernel");
  return Status::OK();
}

}  // namespace cuda
}  // namespace lm
