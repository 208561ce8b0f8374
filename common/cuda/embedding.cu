// embedding.cu: token embedding lookup and its gradient. CPU twin:
// embedding_forward / embedding_backward in common/cpu/ops.h.
#include "cuda/device.cuh"

namespace lm {
namespace cuda {

// One block per row; with vec (dim a multiple of 4, table and out 16-byte
// aligned, so that every row is), the row is copied with 16-byte accesses.
__global__ void embedding_forward_kernel(const int32_t* __restrict__ tokens,
                                         const float* __restrict__ table, float* __restrict__ out,
                                         int dim, bool vec) {
  int64_t row = blockIdx.x;
  const float* src = table + (int64_t)tokens[row] * dim;
  float* dst = out + row * dim;
  if (vec) {
    const float4* s4 = reinterpret_cast<const float4*>(src);
    float4* d4 = reinterpret_cast<float4*>(dst);
    for (int i = threadIdx.x; i < dim / 4; i += blockDim.x) {
      LM_CHECK_ALIGNED16(s4 + i);
      LM_CHECK_ALIGNED16(d4 + i);
      d4[i] = s4[i];
    }
  } else {
    for (int i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = src[i];
  }
}

// One block per row; rows that share a token add atomically.
__global__ void embedding_backward_kernel(const int32_t* __restrict__ tokens,
                                          const float* __restrict__ dout,
                                          float* __restrict__ dtable, int dim) {
  int64_t row = blockIdx.x;
  float* dst = dtable + (int64_t)tokens[row] * dim;
  const float* src = dout + row * dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) atomicAdd(dst + i, src[i]);
}

Status embedding_forward(float* out, const int32_t* tokens, const float* table, int64_t n, int dim,
                         cudaStream_t s) {
  if (n < 0 || dim <= 0) return Status::Invalid("embedding_forward: bad shape");
  if (n == 0) return Status::OK();
  if (n > INT32_MAX) return Status::Invalid("embedding_forward: too many rows");
  // A float4 access at an address that is not a multiple of 16 faults: the
  // pointers must allow it, not only dim (a table inside a larger buffer may not).
  const bool vec = (dim & 3) == 0 && aligned16(table) && aligned16(out);
  LM_LAUNCH(embedding_forward_kernel, (unsigned)n, 128, 0, s, tokens, table, out, dim, vec);
  LM_CUDA_LAUNCHED("embedding_forward_kernel");
  return Status::OK();
}

Status embedding_backward(float* dtable, const float* dout, const int32_t* tokens, int64_t n,
                          int dim, cudaStream_t s) {
  if (n < 0 || dim <= 0) return Status::Invalid("embedding_backward: bad shape");
  if (n == 0) return Status::OK();
  if (n > INT32_MAX) return Status::Invalid("embedding_backward: too many rows");
  LM_LAUNCH(embedding_backward_kernel, (unsigned)n, 128, 0, s, tokens, dout, dtable, dim);
  LM_CUDA_LAUNCHED("embedding_backward_kernel");
  return Status::OK();
}

}  // namespace cuda
}  // namespace lm
