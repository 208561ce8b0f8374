// rope.cu: rotary position embedding, rotate-half convention (transformers'
// apply_rotary_pos_emb), applied in place to the query and key heads of the
// fused qkv rows; the backward pass is the inverse rotation. CPU twin:
// rope_forward / rope_backward in common/cpu/ops.h.
#include <cmath>

#include "cuda/device.cuh"

namespace lm {
namespace cuda {

// Rows strided over the grid, the (head, pair) items of a row over the block:
// one 32-bit division an item instead of 64-bit ones. VEC: head_dim/2 a
// multiple of 8 and 16-byte aligned rows and table, eight pairs an item with
// 16-byte accesses.
__device__ __forceinline__ void rotate(float x1, float x2, float c, float s, float* y1, float* y2) {
  *y1 = x1 * c - x2 * s;
  *y2 = x2 * c + x1 * s;
}

template <bool VEC>
__global__ void rope_kernel(bf16* __restrict__ x, int64_t rows, int T, int64_t row_stride,
                            int heads, int head_dim, int pos0, const float* __restrict__ table,
                            int max_pos, float sign) {
  constexpr int W = VEC ? 8 : 1;
  const int half = head_dim / 2, per_head = half / W, items = heads * per_head;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int pos = pos0 + (int)(row % T);
    const float* cs = table + (int64_t)pos * half;
    const float* sn = table + ((int64_t)max_pos + pos) * half;
    bf16* xr = x + row * row_stride;
    for (int it = threadIdx.x; it < items; it += blockDim.x) {
      const int h = it / per_head, i = (it - h * per_head) * W;
      bf16* p = xr + (int64_t)h * head_dim;
      if constexpr (VEC) {
        Floats8 a = load_bf16x8(p + i), b = load_bf16x8(p + i + half), ya, yb;
        LM_CHECK_ALIGNED16(cs + i);
        LM_CHECK_ALIGNED16(sn + i);
        float4 c0 = *reinterpret_cast<const float4*>(cs + i),
               c1 = *reinterpret_cast<const float4*>(cs + i + 4);
        float4 s0 = *reinterpret_cast<const float4*>(sn + i),
               s1 = *reinterpret_cast<const float4*>(sn + i + 4);
        const float c[8] = {c0.x, c0.y, c0.z, c0.w, c1.x, c1.y, c1.z, c1.w};
        const float s[8] = {s0.x, s0.y, s0.z, s0.w, s1.x, s1.y, s1.z, s1.w};
#pragma unroll
        for (int k = 0; k < 8; k++) rotate(a.x[k], b.x[k], c[k], sign * s[k], &ya.x[k], &yb.x[k]);
        store_bf16x8(p + i, ya);
        store_bf16x8(p + i + half, yb);
      } else {
        float y1, y2;
        rotate(to_f(p[i]), to_f(p[i + half]), cs[i], sign * sn[i], &y1, &y2);
        p[i] = to_bf(y1);
        p[i + half] = to_bf(y2);
      }
    }
  }
}

void rope_table_host(int head_dim, int max_pos, float theta, float* table) {
  int half = head_dim / 2;
  for (int i = 0; i < half; i++) {
    // inv_freq = 1 / theta^(2i/d), in float like torch.arange(0, d, 2).float() / d.
    float inv_freq = 1.0f / std::pow(theta, (float)(2 * i) / (float)head_dim);
    for (int p = 0; p < max_pos; p++) {
      float a = (float)p * inv_freq;
      table[(size_t)p * half + i] = (float)std::cos((double)a);
      table[((size_t)max_pos + p) * half + i] = (float)std::sin((double)a);
    }
  }
}

Status rope_apply(bf16* x, int B, int T, int64_t row_stride, int heads, int head_dim, int pos0,
                  const float* table, int max_pos, bool inverse, cudaStream_t s) {
  if (B < 0 || T < 0 || heads <= 0 || head_dim <= 0 || (head_dim & 1) || pos0 < 0 ||
      row_stride < (int64_t)heads * head_dim)
    return Status::Invalid("rope_apply: bad shape");
  if ((int64_t)pos0 + T > max_pos)
    return Status::Invalid("rope_apply: position " + std::to_string(pos0 + T - 1) +
                           " past the table's " + std::to_string(max_pos));
  int64_t rows = (int64_t)B * T;
  if (rows == 0) return Status::OK();
  // 128 threads: a row of 12 heads of 64 has 384 items, three each.
  const bool vec = head_dim % 16 == 0 && row_stride % 8 == 0 && aligned16(x) && aligned16(table) &&
                   ((int64_t)max_pos * head_dim / 2) % 4 == 0;
  auto kernel = vec ? rope_kernel<true> : rope_kernel<false>;
  LM_LAUNCH(kernel, blocks_for(rows, 1, 65536), 128, 0, s, x, rows, T, row_stride, heads, head_dim,
            pos0, table, max_pos, inverse ? -1.f : 1.f);
  LM_CUDA_LAUNCHED("rope_kernel");
  return Status::OK();
}

}  // namespace cuda
}  // namespace lm
