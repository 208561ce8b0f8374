// rmsnorm.cu: RMSNorm forward (fp32 residual in, bf16 normalized out for the
// next matrix product) and backward (fp32 residual gradient, plus its bf16
// copy for the next product, and the weight gradient summed without atomics,
// so that two runs give the same bits). CPU twin: rmsnorm_forward /
// rmsnorm_backward in common/cpu/ops.h.
#include <algorithm>

#include "cuda/device.cuh"

namespace lm {
namespace cuda {

namespace {

// Blocks of the backward pass: a fixed number for a given row count (never the
// device's), so that the weight gradient's summation order is reproducible.
constexpr int kBackwardWarps = 8;
constexpr int kBackwardMaxBlocks = 256;

}  // namespace

// One warp per row; rstd in fp32 from an fp32 sum of squares. VEC: dim a
// multiple of 8 and 16-byte aligned rows, eight columns a lane per access.
template <bool VEC>
__global__ void rmsnorm_forward_kernel(const float* __restrict__ x, const float* __restrict__ w,
                                       bf16* __restrict__ out, float* __restrict__ rstd, int64_t n,
                                       int dim, float eps) {
  int lane = threadIdx.x & 31;
  int64_t row = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= n) return;
  const float* xr = x + row * dim;
  bf16* o = out + row * dim;
  float ss = 0.f;
  if constexpr (VEC) {
    for (int i = lane * 8; i < dim; i += 256) {
      Floats8 v = load_f32x8(xr + i);
#pragma unroll
      for (int k = 0; k < 8; k++) ss += v.x[k] * v.x[k];
    }
  } else {
    for (int i = lane; i < dim; i += 32) ss += xr[i] * xr[i];
  }
  ss = warp_sum(ss);
  float r = rsqrtf(ss / dim + eps);
  if constexpr (VEC) {
    for (int i = lane * 8; i < dim; i += 256) {
      Floats8 v = load_f32x8(xr + i), wv = load_f32x8(w + i);
#pragma unroll
      for (int k = 0; k < 8; k++) v.x[k] = v.x[k] * r * wv.x[k];
      store_bf16x8(o + i, v);
    }
  } else {
    for (int i = lane; i < dim; i += 32) o[i] = to_bf(xr[i] * r * w[i]);
  }
  if (lane == 0) rstd[row] = r;
}

// One row of the backward pass by one warp: dx = (accumulate ? dx : 0) + r w dy
// - c x, dx16 = bf16(dx) when not null, and the row's dw terms added to `mine`
// (the warp's own accumulator row, shared or global memory).
template <bool VEC>
__device__ __forceinline__ void rmsnorm_backward_row(const float* xr, const float* w,
                                                     const float* dy, float r, float* dxr,
                                                     bf16* dx16r, float* mine, int dim,
                                                     bool accumulate) {
  const int lane = threadIdx.x & 31;
  float sgx = 0.f;
  if constexpr (VEC) {
    for (int i = lane * 8; i < dim; i += 256) {
      Floats8 xv = load_f32x8(xr + i), wv = load_f32x8(w + i), gv = load_f32x8(dy + i);
#pragma unroll
      for (int k = 0; k < 8; k++) sgx += wv.x[k] * gv.x[k] * xv.x[k];
    }
  } else {
    for (int i = lane; i < dim; i += 32) sgx += w[i] * dy[i] * xr[i];
  }
  sgx = warp_sum(sgx);
  const float c = r * r * r * sgx / dim;
  if constexpr (VEC) {
    for (int i = lane * 8; i < dim; i += 256) {
      Floats8 xv = load_f32x8(xr + i), wv = load_f32x8(w + i), gv = load_f32x8(dy + i);
      Floats8 d = accumulate ? load_f32x8(dxr + i) : Floats8{}, acc = load_f32x8(mine + i);
#pragma unroll
      for (int k = 0; k < 8; k++) {
        d.x[k] += r * wv.x[k] * gv.x[k] - c * xv.x[k];
        acc.x[k] += gv.x[k] * xv.x[k] * r;
      }
      store_f32x8(dxr + i, d);
      store_f32x8(mine + i, acc);
      if (dx16r) store_bf16x8(dx16r + i, d);
    }
  } else {
    for (int i = lane; i < dim; i += 32) {
      float xi = xr[i], dyi = dy[i];
      float d = (accumulate ? dxr[i] : 0.f) + r * w[i] * dyi - c * xi;
      dxr[i] = d;
      if (dx16r) dx16r[i] = to_bf(d);
      mine[i] += dyi * xi * r;
    }
  }
}

// Rows strided over the grid, one warp each. Each warp sums its rows' dw terms
// into its own row (shared memory when `shared`, else the block's row of
// `partial` with one warp a block), and the block writes the sum of its warps'
// rows to partial[block]: plain adds in a fixed order, no atomics.
template <bool VEC>
__global__ void rmsnorm_backward_kernel(const float* __restrict__ x, const float* __restrict__ w,
                                        const float* __restrict__ rstd,
                                        const float* __restrict__ dout, float* __restrict__ dx,
                                        bf16* __restrict__ dx16, float* __restrict__ partial,
                                        int64_t n, int dim, bool accumulate, bool shared) {
  LM_DYNAMIC_SHARED(float, sdw);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  float* mine = shared ? sdw + (int64_t)warp * dim : partial + (int64_t)blockIdx.x * dim;
  for (int i = lane; i < dim; i += 32) mine[i] = 0.f;
  __syncwarp();
  for (int64_t row = (int64_t)blockIdx.x * warps + warp; row < n;
       row += (int64_t)gridDim.x * warps) {
    rmsnorm_backward_row<VEC>(x + row * dim, w, dout + row * dim, rstd[row], dx + row * dim,
                              dx16 ? dx16 + row * dim : nullptr, mine, dim, accumulate);
    __syncwarp();
  }
  if (!shared) return;
  __syncthreads();
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    float t = 0.f;
    for (int k = 0; k < warps; k++) t += sdw[(int64_t)k * dim + i];
    partial[(int64_t)blockIdx.x * dim + i] = t;
  }
}

// dw[i] = (accumulate ? dw[i] : 0) + the blocks' partial sums, in block order.
__global__ void rmsnorm_dw_kernel(const float* __restrict__ partial, float* __restrict__ dw,
                                  int blocks, int dim, bool accumulate) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < dim; i += gridDim.x * blockDim.x) {
    float t = accumulate ? dw[i] : 0.f;
    for (int b = 0; b < blocks; b++) t += partial[(int64_t)b * dim + i];
    dw[i] = t;
  }
}

int64_t rmsnorm_backward_scratch(int dim) {
  return (int64_t)kBackwardMaxBlocks * dim;
}

Status rmsnorm_forward(bf16* out, float* rstd, const float* x, const float* w, int64_t n, int dim,
                       float eps, cudaStream_t s) {
  if (n < 0 || dim <= 0) return Status::Invalid("rmsnorm_forward: bad shape");
  if (n == 0) return Status::OK();
  const int rows_per_block = 8;
  const bool vec = dim % 8 == 0 && aligned16(x) && aligned16(w) && aligned16(out);
  auto kernel = vec ? rmsnorm_forward_kernel<true> : rmsnorm_forward_kernel<false>;
  LM_LAUNCH(kernel, blocks_for(n, rows_per_block, INT32_MAX), 32 * rows_per_block, 0, s, x, w, out,
            rstd, n, dim, eps);
  LM_CUDA_LAUNCHED("rmsnorm_forward_kernel");
  return Status::OK();
}

Status rmsnorm_backward(const RmsnormBackward& a, cudaStream_t s) {
  const int64_t n = a.n;
  const int dim = a.dim;
  if (n < 0 || dim <= 0 || !a.scratch) return Status::Invalid("rmsnorm_backward: bad shape");
  if (n == 0) return Status::OK();
  // 8 warps with a dw row each in shared memory while that fits in 48 KB (dim
  // up to 1536); fewer beyond, down to one (dim 12288); past that one warp a
  // block, accumulating in its row of the scratch.
  const size_t row_bytes = (size_t)dim * sizeof(float);
  const int fit = (int)std::min<size_t>(kBackwardWarps, (48 * 1024) / row_bytes);
  const bool shared = fit >= 1;
  const int warps = shared ? fit : 1;
  // About two blocks per SM of a large GPU at 16k rows (8 rows a warp): enough
  // to fill it, and a small partial-sum pass after.
  const int blocks = (int)blocks_for(n, warps * 8, kBackwardMaxBlocks);
  const size_t smem = shared ? warps * row_bytes : 0;
  const bool vec = dim % 8 == 0 && aligned16(a.x) && aligned16(a.w) && aligned16(a.dout) &&
                   aligned16(a.dx) && aligned16(a.scratch) && (!a.dx16 || aligned16(a.dx16));
  auto kernel = vec ? rmsnorm_backward_kernel<true> : rmsnorm_backward_kernel<false>;
  LM_LAUNCH(kernel, blocks, 32 * warps, smem, s, a.x, a.w, a.rstd, a.dout, a.dx, a.dx16, a.scratch,
            n, dim, a.accumulate_dx, shared);
  LM_CUDA_LAUNCHED("rmsnorm_backward_kernel");
  LM_LAUNCH(rmsnorm_dw_kernel, blocks_for(dim, 256, 1024), 256, 0, s, a.scratch, a.dw, blocks, dim,
            a.accumulate_dw);
  LM_CUDA_LAUNCHED("rmsnorm_dw_kernel");
  return Status::OK();
}

}  // namespace cuda
}  // namespace lm
