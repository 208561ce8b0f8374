// convert.cu: fp32 -> bf16 copies (the bf16 weight copy after SetParams, the
// residual-stream gradient before it enters a matrix product). CPU twin: none
// needed beyond rounding (the check program compares with a host rounding).
#include "cuda/device.cuh"

namespace lm {
namespace cuda {

__global__ void f32_to_bf16_kernel(const float* __restrict__ in, bf16* __restrict__ out,
                                   int64_t count) {
  int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride)
    out[i] = to_bf(in[i]);
}

Status f32_to_bf16(const float* in, bf16* out, int64_t count, cudaStream_t s) {
  if (count < 0) return Status::Invalid("f32_to_bf16: negative count");
  if (count == 0) return Status::OK();
  LM_LAUNCH(f32_to_bf16_kernel, blocks_for(count, 256, 65536), 256, 0, s, in, out, count);
  LM_CUDA_LAUNCHED("f32_to_bf16_kernel");
  return Status::OK();
}

}  // namespace cuda
}  // namespace lm
