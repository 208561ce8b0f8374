// attention_case.h: the attention problems that lm-kernel-check (on a GPU) and
// kernel_emu_test (on the CPU, through emu.h) both build, so that the two
// checks exercise the same layouts: keys that grow with position, q|k|v packed
// in one row as the fused QKV product writes it, and a KV-cache decode step.
// Include after the CUDA (or emulated) bf16 type and cuda/kernels.h are visible.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace lm_test {

inline float RoundToBf16(float x) {
  return __bfloat162float(__float2bfloat16(x));
}

// Keys that grow with position (k[b,t] *= 1 + 2t/T), so that the online
// softmax must rescale: with plain random keys a dropped rescale goes unseen.
inline void GrowKeys(std::vector<float>* k, int B, int T, int64_t kvd) {
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      for (int64_t d = 0; d < kvd; d++) {
        float& x = (*k)[((size_t)b * T + t) * kvd + d];
        x = RoundToBf16(x * (1.f + 2.f * t / T));
      }
}

// rows x (qd + 2 kvd): each row q | k | v, as the backend's fused QKV product lays them out.
inline std::vector<float> PackQkv(const std::vector<float>& q, const std::vector<float>& k,
                                  const std::vector<float>& v, int64_t rows, int64_t qd,
                                  int64_t kvd) {
  const int64_t row = qd + 2 * kvd;
  std::vector<float> f((size_t)(rows * row));
  for (int64_t r = 0; r < rows; r++) {
    std::memcpy(&f[r * row], &q[r * qd], sizeof(float) * qd);
    std::memcpy(&f[r * row + qd], &k[r * kvd], sizeof(float) * kvd);
    std::memcpy(&f[r * row + qd + kvd], &v[r * kvd], sizeof(float) * kvd);
  }
  return f;
}

// One decode step of one sequence: Tq new queries at positions Tk-Tq.. against
// Tk cached keys; q, k, v and out are contiguous rows.
inline lm::cuda::AttentionArgs CachedAttentionArgs(int Tq, int Tk, int H, int KVH, int hd,
                                                   const lm::cuda::bf16* q, const lm::cuda::bf16* k,
                                                   const lm::cuda::bf16* v, lm::cuda::bf16* out,
                                                   float* lse2) {
  lm::cuda::AttentionArgs a;
  a.B = 1;
  a.Tq = Tq;
  a.Tk = Tk;
  a.q_pos0 = Tk - Tq;
  a.heads = H;
  a.kv_heads = KVH;
  a.head_dim = hd;
  a.q = q;
  a.k = k;
  a.v = v;
  a.q_rstride = (int64_t)H * hd;
  a.kv_rstride = (int64_t)KVH * hd;
  a.out = out;
  a.o_rstride = (int64_t)H * hd;
  a.lse2 = lse2;
  return a;
}

}  // namespace lm_test
