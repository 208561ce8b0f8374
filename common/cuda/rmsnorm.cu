// rmsnorm.cu: RMSNorm forward (fp32 residual in, bf16 normalized out for the
// next matrix product) and backward. CPU twin: rmsnorm_forward /
// rmsnorm_backward in common/cpu/ops.h.
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

// One warp per row, rows strided over the grid. Each block sums dw for its rows
// in shared memory (when dim fits) and adds it to global memory once.
__global__ void rmsnorm_backward_kernel(const float* __restrict__ x, const float* __restrict__ w,
                                        const float* __restrict__ rstd,
                                        const float* __restrict__ dout, float* __restrict__ dx,
                                        float* __restrict__ dw, int64_t n, int dim, bool smem_dw) {
  LM_DYNAMIC_SHARED(float, sdw);
  float* acc = smem_dw ? sdw : dw;
  if (smem_dw) {
    for (int i = threadIdx.x; i < dim; i += blockDim.x) sdw[i] = 0.f;
    __syncthreads();
  }
  int lane = threadIdx.x & 31;
  int warps = blockDim.x >> 5;
  for (int64_t row = (int64_t)blockIdx.x * warps + (threadIdx.x >> 5); row < n;
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
      atomicAdd(acc + i, dyi * xi * r);
    }
  }
  if (smem_dw) {
    __syncthreads();
    for (int i = threadIdx.x; i < dim; i += blockDim.x) atomicAdd(dw + i, sdw[i]);
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
  const int warps = 8;
  // A few hundred blocks, about four per SM of an H100/H200 at 16k rows (32
  // rows each): enough to fill the device, few enough that the per-block dw
  // flush (dim atomic adds) stays small next to the rows.
  unsigned blocks = blocks_for(n, warps * 4, 1024);
  bool smem_dw = (size_t)dim * sizeof(float) <= 48 * 1024;
  size_t smem = smem_dw ? (size_t)dim * sizeof(float) : 0;
  LM_LAUNCH(rmsnorm_backward_kernel, blocks, 32 * warps, smem, s, x, w, rstd, dout, dx, dw, n, dim,
            smem_dw);
  LM_CUDA_LAUNCHED("rmsnorm_backward_kernel");
  return Status::OK();
}

}  // namespace cuda
}  // namespace lm
