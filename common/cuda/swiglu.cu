// swiglu.cu: the SwiGLU gate h = silu(gate) * up on the fused gate/up
// projection's output, and its gradient. CPU twin: swiglu_forward /
// swiglu_backward in common/cpu/ops.h.
#include "cuda/device.cuh"

namespace lm {
namespace cuda {

__global__ void swiglu_forward_kernel(const bf16* __restrict__ gu, bf16* __restrict__ h, int64_t n,
                                      int ffn) {
  int64_t total = n * ffn, stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    int64_t row = i / ffn;
    int c = (int)(i - row * ffn);
    const bf16* r = gu + row * 2 * ffn;
    float g = to_f(r[c]), u = to_f(r[ffn + c]);
    float sig = 1.f / (1.f + __expf(-g));
    h[i] = to_bf(g * sig * u);
  }
}

// d gate = dh * up * sig * (1 + g * (1 - sig)), d up = dh * g * sig.
__global__ void swiglu_backward_kernel(const bf16* __restrict__ gu, const bf16* __restrict__ dh,
                                       bf16* __restrict__ dgu, int64_t n, int ffn) {
  int64_t total = n * ffn, stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    int64_t row = i / ffn;
    int c = (int)(i - row * ffn);
    const bf16* r = gu + row * 2 * ffn;
    float g = to_f(r[c]), u = to_f(r[ffn + c]), d = to_f(dh[i]);
    float sig = 1.f / (1.f + __expf(-g));
    bf16* o = dgu + row * 2 * ffn;
    o[c] = to_bf(d * u * sig * (1.f + g * (1.f - sig)));
    o[ffn + c] = to_bf(d * g * sig);
  }
}

Status swiglu_forward(bf16* h, const bf16* gu, int64_t n, int ffn, cudaStream_t s) {
  if (n < 0 || ffn <= 0) return Status::Invalid("swiglu_forward: bad shape");
  if (n == 0) return Status::OK();
  LM_LAUNCH(swiglu_forward_kernel, blocks_for(n * ffn, 256, 65536), 256, 0, s, gu, h, n, ffn);
  LM_CUDA_LAUNCHED("swiglu_forward_kernel");
  return Status::OK();
}

Status swiglu_backward(bf16* dgu, const bf16* dh, const bf16* gu, int64_t n, int ffn,
                       cudaStream_t s) {
  if (n < 0 || ffn <= 0) return Status::Invalid("swiglu_backward: bad shape");
  if (n == 0) return Status::OK();
  LM_LAUNCH(swiglu_backward_kernel, blocks_for(n * ffn, 256, 65536), 256, 0, s, gu, dh, dgu, n,
            ffn);
  LM_CUDA_LAUNCHED("swiglu_backward_kernel");
  return Status::OK();
}

}  // namespace cuda
}  // namespace lm
