// embedding.cu: token embedding lookup and its gradient, the gradient summed
// per distinct token in a fixed order (deterministic, no atomics). CPU twin:
// embedding_forward / embedding_backward in common/cpu/ops.h.
#include <algorithm>
#include <vector>

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

// Block (u, chunk) owns the columns of its chunk in dtable's row tokens[u]:
// it sums the rows rows[starts[u]..starts[u+1]) of dout in that order and adds
// the sum once. Each element of dtable has one writer: no atomics, and the
// same bits on every run. VEC: four columns a thread with 16-byte accesses.
template <bool VEC>
__global__ void embedding_backward_kernel(const int32_t* __restrict__ tokens,
                                          const int32_t* __restrict__ starts,
                                          const int32_t* __restrict__ rows,
                                          const float* __restrict__ dout,
                                          float* __restrict__ dtable, int dim) {
  const int u = blockIdx.x;
  const int c = (blockIdx.y * blockDim.x + threadIdx.x) * (VEC ? 4 : 1);
  if (c >= dim) return;
  float* dst = dtable + (int64_t)tokens[u] * dim + c;
  const int r0 = starts[u], r1 = starts[u + 1];
  if constexpr (VEC) {
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int r = r0; r < r1; r++) {
      const float* src = dout + (int64_t)rows[r] * dim + c;
      LM_CHECK_ALIGNED16(src);
      float4 v = *reinterpret_cast<const float4*>(src);
      acc.x += v.x, acc.y += v.y, acc.z += v.z, acc.w += v.w;
    }
    LM_CHECK_ALIGNED16(dst);
    float4 d = *reinterpret_cast<float4*>(dst);
    d.x += acc.x, d.y += acc.y, d.z += acc.z, d.w += acc.w;
    *reinterpret_cast<float4*>(dst) = d;
  } else {
    float acc = 0.f;
    for (int r = r0; r < r1; r++) acc += dout[(int64_t)rows[r] * dim + c];
    *dst += acc;
  }
}

void embedding_backward_plan(const int32_t* ids, int64_t n, int32_t* plan, int* distinct) {
  std::vector<uint64_t> keyed((size_t)n);
  for (int64_t r = 0; r < n; r++) keyed[r] = (uint64_t)(uint32_t)ids[r] << 32 | (uint64_t)r;
  std::sort(keyed.begin(), keyed.end());
  int u = 0;
  std::vector<int32_t> tokens, starts;
  for (int64_t i = 0; i < n; i++) {
    int32_t id = (int32_t)(keyed[i] >> 32);
    if (i == 0 || id != (int32_t)(keyed[i - 1] >> 32)) {
      tokens.push_back(id);
      starts.push_back((int32_t)i);
      u++;
    }
    plan[2 * n + 1 + i] = (int32_t)(keyed[i] & 0xffffffffu);
  }
  starts.push_back((int32_t)n);
  // Packed as tokens (u), starts (u + 1), then rows (n) at a fixed offset.
  std::copy(tokens.begin(), tokens.end(), plan);
  std::copy(starts.begin(), starts.end(), plan + n);
  *distinct = u;
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

Status embedding_backward(float* dtable, const float* dout, const int32_t* plan, int64_t n,
                          int distinct, int dim, cudaStream_t s) {
  if (n < 0 || dim <= 0 || distinct < 0 || distinct > n)
    return Status::Invalid("embedding_backward: bad shape");
  if (n == 0) return Status::OK();
  if (n > INT32_MAX / 2) return Status::Invalid("embedding_backward: too many rows");
  const bool vec = dim % 4 == 0 && aligned16(dtable) && aligned16(dout);
  const int threads = 128, cols = vec ? dim / 4 : dim;
  dim3 grid((unsigned)distinct, blocks_for(cols, threads, 65535));
  auto kernel = vec ? embedding_backward_kernel<true> : embedding_backward_kernel<false>;
  LM_LAUNCH(kernel, grid, threads, 0, s, plan, plan + n, plan + 2 * n + 1, dout, dtable, dim);
  LM_CUDA_LAUNCHED("embedding_backward_kernel");
  return Status::OK();
}

}  // namespace cuda
}  // namespace lm
