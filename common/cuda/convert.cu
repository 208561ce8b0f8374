// convert.cu: fp32 -> bf16 copies (the bf16 weight copy after SetParams). CPU twin: none
// needed beyond rounding (the check program compares with a host rounding).
#include "cuda/device.cuh"

namespace lm {
namespace cuda {

// VEC: eight values a thread with 16-byte accesses, then the tail one at a time.
template <bool VEC>
__global__ void f32_to_bf16_kernel(const float* __restrict__ in, bf16* __restrict__ out,
                                   int64_t count) {
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  const int64_t first = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  int64_t tail = 0;
  if constexpr (VEC) {
    for (int64_t i = first; i < count / 8; i += stride) {
      store_bf16x8(out + 8 * i, load_f32x8(in + 8 * i));
    }
    tail = count / 8 * 8;
  }
  for (int64_t i = tail + first; i < count; i += stride) out[i] = to_bf(in[i]);
}

Status f32_to_bf16(const float* in, bf16* out, int64_t count, cudaStream_t s) {
  if (count < 0) return Status::Invalid("f32_to_bf16: negative count");
  if (count == 0) return Status::OK();
  const bool vec = aligned16(in) && aligned16(out);
  auto kernel = vec ? f32_to_bf16_kernel<true> : f32_to_bf16_kernel<false>;
  LM_LAUNCH(kernel, blocks_for(vec ? count / 8 + 1 : count, 256, 65536), 256, 0, s, in, out, count);
  LM_CUDA_LAUNCHED("f32_to_bf16_kernel");
  return Status::OK();
}

}  // namespace cuda
}  // namespace lm
