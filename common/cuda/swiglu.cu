// swiglu.cu: the SwiGLU gate h = silu(gate) * up on the fused gate/up
// projection's output, and its gradient. CPU twin: swiglu_forward /
// swiglu_backward in common/cpu/ops.h.
#include "cuda/device.cuh"

namespace lm {
namespace cuda {

// Rows are strided over the grid and each row's columns over the block, so
// that no thread divides by ffn. VEC: ffn a multiple of 8 and 16-byte aligned
// buffers, eight columns a thread with 16-byte accesses.
__device__ __forceinline__ float silu_gate(float g, float u) {
  return g / (1.f + __expf(-g)) * u;
}

template <bool VEC>
__global__ void swiglu_forward_kernel(const bf16* __restrict__ gu, bf16* __restrict__ h, int64_t n,
                                      int ffn) {
  for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
    const bf16* g = gu + row * 2 * ffn;
    const bf16* u = g + ffn;
    bf16* o = h + row * ffn;
    if constexpr (VEC) {
      for (int c = threadIdx.x * 8; c < ffn; c += blockDim.x * 8) {
        Floats8 gv = load_bf16x8(g + c), uv = load_bf16x8(u + c), r;
#pragma unroll
        for (int k = 0; k < 8; k++) r.x[k] = silu_gate(gv.x[k], uv.x[k]);
        store_bf16x8(o + c, r);
      }
    } else {
      for (int c = threadIdx.x; c < ffn; c += blockDim.x)
        o[c] = to_bf(silu_gate(to_f(g[c]), to_f(u[c])));
    }
  }
}

// d gate = dh * up * sig * (1 + g * (1 - sig)), d up = dh * g * sig.
__device__ __forceinline__ void silu_gate_grad(float g, float u, float d, float* dg, float* du) {
  float sig = 1.f / (1.f + __expf(-g));
  *dg = d * u * sig * (1.f + g * (1.f - sig));
  *du = d * g * sig;
}

template <bool VEC>
__global__ void swiglu_backward_kernel(const bf16* __restrict__ gu, const bf16* __restrict__ dh,
                                       bf16* __restrict__ dgu, int64_t n, int ffn) {
  for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
    const bf16* g = gu + row * 2 * ffn;
    const bf16* u = g + ffn;
    const bf16* d = dh + row * ffn;
    bf16* og = dgu + row * 2 * ffn;
    bf16* ou = og + ffn;
    if constexpr (VEC) {
      for (int c = threadIdx.x * 8; c < ffn; c += blockDim.x * 8) {
        Floats8 gv = load_bf16x8(g + c), uv = load_bf16x8(u + c), dv = load_bf16x8(d + c), rg, ru;
#pragma unroll
        for (int k = 0; k < 8; k++) silu_gate_grad(gv.x[k], uv.x[k], dv.x[k], &rg.x[k], &ru.x[k]);
        store_bf16x8(og + c, rg);
        store_bf16x8(ou + c, ru);
      }
    } else {
      for (int c = threadIdx.x; c < ffn; c += blockDim.x) {
        float dg, du;
        silu_gate_grad(to_f(g[c]), to_f(u[c]), to_f(d[c]), &dg, &du);
        og[c] = to_bf(dg);
        ou[c] = to_bf(du);
      }
    }
  }
}

Status swiglu_forward(bf16* h, const bf16* gu, int64_t n, int ffn, cudaStream_t s) {
  if (n < 0 || ffn <= 0) return Status::Invalid("swiglu_forward: bad shape");
  if (n == 0) return Status::OK();
  const bool vec = ffn % 8 == 0 && aligned16(gu) && aligned16(h);
  auto kernel = vec ? swiglu_forward_kernel<true> : swiglu_forward_kernel<false>;
  LM_LAUNCH(kernel, blocks_for(n, 1, 65536), 256, 0, s, gu, h, n, ffn);
  LM_CUDA_LAUNCHED("swiglu_forward_kernel");
  return Status::OK();
}

Status swiglu_backward(bf16* dgu, const bf16* dh, const bf16* gu, int64_t n, int ffn,
                       cudaStream_t s) {
  if (n < 0 || ffn <= 0) return Status::Invalid("swiglu_backward: bad shape");
  if (n == 0) return Status::OK();
  const bool vec = ffn % 8 == 0 && aligned16(gu) && aligned16(dh) && aligned16(dgu);
  auto kernel = vec ? swiglu_backward_kernel<true> : swiglu_backward_kernel<false>;
  LM_LAUNCH(kernel, blocks_for(n, 1, 65536), 256, 0, s, gu, dh, dgu, n, ffn);
  LM_CUDA_LAUNCHED("swiglu_backward_kernel");
  return Status::OK();
}

}  // namespace cuda
}  // namespace lm
