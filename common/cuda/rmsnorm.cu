// rmsnorm.cu: RMSNorm forward (fp32 residual in, bf16 normalized out for the
// next matrix product) and backward. CPU twin: rmsnorm_forward /
// rmsnorm_backward in common/cpu/ops.h.
#include <algorithm>

#include "cuda/device.cuh"

namespace lm {
namespace cuda {

// One warp per row; rstd in fp32 from an fp32 sum of squares.
__global__ void rmsnorm_forward_kernel(const float* __restrict__ x, const float* __restrict__ w,
                                       bf16* __restrict__ out, float* __restrict__ rstd, int64_t n,
                                       int dim, float eps) {
  int lane = threadIdx.x & 31;
  int64_t row = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= n) return;
  const float* xr = x + row * dim;
  float ss = 0.f;
  for (int i = lane; i < dim; i += 32) ss += xr[i] * xr[i];
  ss = warp_sum(ss);
  float r = rsqrtf(ss / dim + eps);
  bf16* o = out + row * dim;
  for (int i = lane; i < dim; i += 32) o[i] = to_bf(xr[i] * r * w[i]);
  if (lane == 0) rstd[row] = r;
}

// One warp per row, rows strided over the grid. With warp_rows, each warp sums
// dw for its rows into its own row of shared memory (each lane owns the columns
// lane, lane + 32, ...: no atomics and no bank conflicts), then the block adds
// its warps' rows into dw with one atomic add per column. Without (dims too
// large for shared memory), every row adds into dw atomically.
__global__ void rmsnorm_backward_kernel(const float* __restrict__ x, const float* __restrict__ w,
                                        const float* __restrict__ rstd,
                                        const float* __restrict__ dout, float* __restrict__ dx,
                                        float* __restrict__ dw, int64_t n, int dim,
                                        bool warp_rows) {
  LM_DYNAMIC_SHARED(float, sdw);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  float* mine = warp_rows ? sdw + (int64_t)warp * dim : nullptr;
  if (warp_rows)
    for (int i = lane; i < dim; i += 32) mine[i] = 0.f;
  for (int64_t row = (int64_t)blockIdx.x * warps + warp; row < n;
       row += (int64_t)gridDim.x * warps) {
    const float* xr = x + row * dim;
    const float* dy = dout + row * dim;
    float r = rstd[row];
    float sgx = 0.f;
    for (int i = lane; i < dim; i += 32) sgx += w[i] * dy[i] * xr[i];
    sgx = warp_sum(sgx);
    float c = r * r * r * sgx / dim;
    float* dxr = dx + row * dim;
    for (int i = lane; i < dim; i += 32) {
      float xi = xr[i], dyi = dy[i];
      dxr[i] += r * w[i] * dyi - c * xi;
      if (warp_rows)
        mine[i] += dyi * xi * r;
      else
        atomicAdd(dw + i, dyi * xi * r);
    }
  }
  if (warp_rows) {
    __syncthreads();
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
      float t = 0.f;
      for (int k = 0; k < warps; k++) t += sdw[(int64_t)k * dim + i];
      atomicAdd(dw + i, t);
    }
  }
}

Status rmsnorm_forward(bf16* out, float* rstd, const float* x, const float* w, int64_t n, int dim,
                       float eps, cudaStream_t s) {
  if (n < 0 || dim <= 0) return Status::Invalid("rmsnorm_forward: bad shape");
  if (n == 0) return Status::OK();
  const int rows_per_block = 8;
  LM_LAUNCH(rmsnorm_forward_kernel, blocks_for(n, rows_per_block, INT32_MAX), 32 * rows_per_block,
            0, s, x, w, out, rstd, n, dim, eps);
  LM_CUDA_LAUNCHED("rmsnorm_forward_kernel");
  return Status::OK();
}

Status rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                        const float* rstd, int64_t n, int dim, cudaStream_t s) {
  if (n < 0 || dim <= 0) return Status::Invalid("rmsnorm_backward: bad shape");
  if (n == 0) return Status::OK();
  // Up to 8 warps, as many as have a dw row of shared memory within 48 KB
  // (dim 768: 8 warps, 24 KB); beyond dim 12288 not even one, and dw is
  // summed with global atomics.
  const size_t row_bytes = (size_t)dim * sizeof(float);
  const int fit = (int)std::min<size_t>(8, (48 * 1024) / row_bytes);
  const bool warp_rows = fit >= 1;
  const int warps = warp_rows ? fit : 8;
  // A few hundred blocks, about four per SM of an H100/H200 at 16k rows and 8
  // warps (32 rows each): enough to fill the device, few enough that the
  // per-block dw flush (dim atomic adds) stays small next to the rows.
  unsigned blocks = blocks_for(n, warps * 4, 1024);
  size_t smem = warp_rows ? warps * row_bytes : 0;
  LM_LAUNCH(rmsnorm_backward_kernel, blocks, 32 * warps, smem, s, x, w, rstd, dout, dx, dw, n, dim,
            warp_rows);
  LM_CUDA_LAUNCHED("rmsnorm_backward_kernel");
  return Status::OK();
}

}  // namespace cuda
}  // namespace lm
