// rope.cu: rotary position embedding, rotate-half convention (transformers'
// apply_rotary_pos_emb), applied in place to the query and key heads of the
// fused qkv rows; the backward pass is the inverse rotation. CPU twin:
// rope_forward / rope_backward in common/cpu/ops.h.
#include <cmath>

#include "cuda/device.cuh"

namespace lm {
namespace cuda {

// Rows strided over the grid, the (head, pair) items of a row over the block:
// one 32-bit division an item instead of 64-bit ones.
__global__ void rope_kernel(bf16* __restrict__ x, int64_t rows, int T, int64_t row_stride,
                            int heads, int head_dim, int pos0, const float* __restrict__ table,
                            int max_pos, float sign) {
  const int half = head_dim / 2, items = heads * half;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int pos = pos0 + (int)(row % T);
    const float* cs = table + (int64_t)pos * half;
    const float* sn = table + ((int64_t)max_pos + pos) * half;
    bf16* xr = x + row * row_stride;
    for (int it = threadIdx.x; it < items; it += blockDim.x) {
      const int h = it / half, i = it - h * half;
      bf16* p = xr + (int64_t)h * head_dim;
      const float c = cs[i], s = sign * sn[i];
      const float x1 = to_f(p[i]), x2 = to_f(p[i + half]);
      p[i] = to_bf(x1 * c - x2 * s);
      p[i + half] = to_bf(x2 * c + x1 * s);
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
  LM_LAUNCH(rope_kernel, blocks_for(rows, 1, 65536), 128, 0, s, x, rows, T, row_stride, heads,
            head_dim, pos0, table, max_pos, inverse ? -1.f : 1.f);
  LM_CUDA_LAUNCHED("rope_kernel");
  return Status::OK();
}

}  // namespace cuda
}  // namespace lm
