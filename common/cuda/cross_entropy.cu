// cross_entropy.cu: softmax cross-entropy over the real vocabulary of one chunk
// of logit rows, with the logits' gradient written in bf16 for the head's
// backward products. The backend calls it chunk by chunk, so the logits of all
// B*T rows never exist at once. Training passes bf16 logits and takes their
// gradient in place (as autocast and llm.c keep them): a third of the fp32
// version's memory traffic, which is what this kernel is bound by. Evaluation
// passes fp32 logits. CPU twin: cross_entropy_forward_backward in common/cpu/ops.h.
#include "cuda/device.cuh"

namespace lm {
namespace cuda {

// Folds x into a running (max m, sum of exp(. - m)).
__device__ __forceinline__ void online_add(float x, float& m, float& sum) {
  if (x > m) {
    sum = sum * __expf(m - x) + 1.f;  // m = -inf on the first element: 0 * 0 + 1
    m = x;
  } else {
    sum += __expf(x - m);
  }
}

// One block per row: an online max/sum per thread, merged across the block,
// then (for training) a second pass writing the gradient. `z` and `dlogits` may
// be the same memory: each element is read and then written by one thread.
// VEC: 16-byte aligned rows, read eight values at a time with 16-byte loads.
template <typename T, bool VEC>
__global__ void cross_entropy_kernel(const T* logits, const int32_t* __restrict__ targets,
                                     int vocab, int padded_vocab, float dscale,
                                     float* __restrict__ losses, bf16* dlogits) {
  __shared__ float scratch[32];
  int64_t row = blockIdx.x;
  const T* z = logits + row * padded_vocab;
  int target = targets[row];
  float m = -INFINITY, sum = 0.f;
  if constexpr (VEC) {
    for (int v = threadIdx.x * 8; v < vocab; v += blockDim.x * 8) {
      Floats8 x = load_x8(z + v);
#pragma unroll
      for (int i = 0; i < 8; i++)
        if (v + i < vocab) online_add(x.x[i], m, sum);
    }
  } else {
    for (int v = threadIdx.x; v < vocab; v += blockDim.x) online_add(to_f(z[v]), m, sum);
  }
  float M = block_max(m, scratch);
  float part = (m == -INFINITY) ? 0.f : sum * __expf(m - M);
  float S = block_sum(part, scratch);
  float lse = M + logf(S);
  // Read before any thread of the block overwrites the row with its gradient.
  float zt = target >= 0 ? to_f(z[target]) : 0.f;
  __syncthreads();
  if (threadIdx.x == 0) losses[row] = target >= 0 ? lse - zt : 0.f;
  if (dlogits == nullptr) return;
  bf16* d = dlogits + row * padded_vocab;
  if constexpr (VEC) {
    for (int v = threadIdx.x * 8; v < padded_vocab; v += blockDim.x * 8) {
      Floats8 g;
      if (target < 0) {
#pragma unroll
        for (int i = 0; i < 8; i++) g.x[i] = 0.f;
      } else {
        Floats8 x = load_x8(z + v);
#pragma unroll
        for (int i = 0; i < 8; i++)
          g.x[i] =
              v + i < vocab ? (__expf(x.x[i] - lse) - (v + i == target ? 1.f : 0.f)) * dscale : 0.f;
      }
      store_bf16x8(d + v, g);
    }
  } else {
    for (int v = threadIdx.x; v < padded_vocab; v += blockDim.x) {
      float g = 0.f;
      if (target >= 0 && v < vocab)
        g = (__expf(to_f(z[v]) - lse) - (v == target ? 1.f : 0.f)) * dscale;
      d[v] = to_bf(g);
    }
  }
}

namespace {
Status CheckShape(int64_t rows, int vocab, int padded_vocab) {
  if (rows < 0 || vocab <= 0 || padded_vocab < vocab)
    return Status::Invalid("cross_entropy_forward_backward: bad shape");
  if (rows > INT32_MAX) return Status::Invalid("cross_entropy_forward_backward: too many rows");
  return Status::OK();
}
}  // namespace

Status cross_entropy_forward_backward(float* losses, bf16* dlogits, const float* logits,
                                      const int32_t* targets, int64_t rows, int vocab,
                                      int padded_vocab, float dscale, cudaStream_t s) {
  LM_RETURN_IF_ERROR(CheckShape(rows, vocab, padded_vocab));
  if (rows == 0) return Status::OK();
  bool aligned = padded_vocab % 8 == 0 && aligned16(logits) && (!dlogits || aligned16(dlogits));
  auto kernel = aligned ? cross_entropy_kernel<float, true> : cross_entropy_kernel<float, false>;
  LM_LAUNCH(kernel, (unsigned)rows, 512, 0, s, logits, targets, vocab, padded_vocab, dscale, losses,
            dlogits);
  LM_CUDA_LAUNCHED("cross_entropy_kernel<float>");
  return Status::OK();
}

Status cross_entropy_forward_backward(float* losses, bf16* dlogits, const bf16* logits,
                                      const int32_t* targets, int64_t rows, int vocab,
                                      int padded_vocab, float dscale, cudaStream_t s) {
  LM_RETURN_IF_ERROR(CheckShape(rows, vocab, padded_vocab));
  if (rows == 0) return Status::OK();
  bool aligned = padded_vocab % 8 == 0 && aligned16(logits) && (!dlogits || aligned16(dlogits));
  auto kernel = aligned ? cross_entropy_kernel<bf16, true> : cross_entropy_kernel<bf16, false>;
  LM_LAUNCH(kernel, (unsigned)rows, 512, 0, s, logits, targets, vocab, padded_vocab, dscale, losses,
            dlogits);
  LM_CUDA_LAUNCHED("cross_entropy_kernel<bf16>");
  return Status::OK();
}

}  // namespace cuda
}  // namespace lm
