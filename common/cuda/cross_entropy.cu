// cross_entropy.cu: softmax cross-entropy over the real vocabulary of one chunk
// of logit rows, with the logits' gradient written in bf16 for the head's
// backward products. The backend calls it chunk by chunk, so the fp32 logits of
// all B*T rows never exist at once. CPU twin: cross_entropy_forward_backward in
// common/cpu/ops.h.
#include "cuda/device.cuh"

namespace lm {
namespace cuda {

// One block per row: an online max/sum per thread, merged across the block,
// then (for training) a second pass writing the gradient.
__global__ void cross_entropy_kernel(const float* __restrict__ logits,
                                     const int32_t* __restrict__ targets, int vocab,
                                     int padded_vocab, float dscale, float* __restrict__ losses,
                                     bf16* __restrict__ dlogits) {
  __shared__ float scratch[32];
  int64_t row = blockIdx.x;
  const float* z = logits + row * padded_vocab;
  int target = targets[row];
  float m = -INFINITY, sum = 0.f;
  for (int v = threadIdx.x; v < vocab; v += blockDim.x) {
    float x = z[v];
    if (x > m) {
      sum = sum * __expf(m - x) + 1.f;  // m = -inf on the first element: 0 * 0 + 1
      m = x;
    } else {
      sum += __expf(x - m);
    }
  }
  float M = block_max(m, scratch);
  float part = (m == -INFINITY) ? 0.f : sum * __expf(m - M);
  float S = block_sum(part, scratch);
  float lse = M + logf(S);
  if (threadIdx.x == 0) losses[row] = target >= 0 ? lse - z[target] : 0.f;
  if (dlogits == nullptr) return;
  bf16* d = dlogits + row * padded_vocab;
  if (target < 0) {
    for (int v = threadIdx.x; v < padded_vocab; v += blockDim.x) d[v] = to_bf(0.f);
    return;
  }
  for (int v = threadIdx.x; v < padded_vocab; v += blockDim.x) {
    float g = 0.f;
    if (v < vocab) g = (__expf(z[v] - lse) - (v == target ? 1.f : 0.f)) * dscale;
    d[v] = to_bf(g);
  }
}

Status cross_entropy_forward_backward(float* losses, bf16* dlogits, const float* logits,
                                      const int32_t* targets, int64_t rows, int vocab,
                                      int padded_vocab, float dscale, cudaStream_t s) {
  if (rows < 0 || vocab <= 0 || padded_vocab < vocab)
    return Status::Invalid("cross_entropy_forward_backward: bad shape");
  if (rows == 0) return Status::OK();
  if (rows > INT32_MAX) return Status::Invalid("cross_entropy_forward_backward: too many rows");
  LM_LAUNCH(cross_entropy_kernel, (unsigned)rows, 512, 0, s, logits, targets, vocab, padded_vocab,
            dscale, losses, dlogits);
  LM_CUDA_LAUNCHED("cross_entropy_kernel");
  return Status::OK();
}

}  // namespace cuda
}  // namespace lm
