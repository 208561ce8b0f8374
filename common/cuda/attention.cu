// attention.cu: exact causal attention with grouped-query heads, fused in the
// manner of FlashAttention: the forward pass keeps a running max and sum per
// query (online softmax) and saves only the log-sum-exp, the backward pass
// recomputes the probabilities tile by tile, so no T x T matrix is ever in
// device memory. CPU twin: attention_forward / attention_backward in
// common/cpu/ops.h.
//
// This first version does its arithmetic in fp32 on the CUDA cores (bf16 loads
// and stores): P = head_dim/32 neighbouring threads share one query (or key), each
// holding every P-th element of the head in registers, and the dot products are
// finished with shuffles inside the P-lane group. Tiles of keys (or queries)
// are staged in shared memory as fp32; all lanes of a warp read the same tile
// row, so the reads are broadcasts without bank conflicts.
//
//   forward    one thread group per query, loops over key tiles   (out, lse2)
//   delta      one thread per (b, h, t): sum(dout * out)
//   dq         one thread group per query, loops over key tiles   (dq)
//   dk, dv     one thread group per key, loops over the query heads of its
//              kv head and over query tiles                       (dk, dv)
#include <climits>

#include "cuda/device.cuh"

namespace lm {
namespace cuda {

namespace {

template <int D>
struct Cfg {
  static constexpr int DPT = D < 32 ? D : 32;   // head elements per thread
  static constexpr int P = D / DPT;             // threads per query / key: 1, 2 or 4
  static constexpr int BQ = 64;                 // queries (keys for dk/dv) per block
  static constexpr int BT = D <= 64 ? 64 : 32;  // rows per shared-memory tile
  static constexpr int CH = 16;                 // keys per online-softmax step; divides BT
  static constexpr int THREADS = BQ * P;
};

constexpr float kLog2e = 1.4426950408889634f;

// Lanes of one P-lane group (P consecutive lanes, aligned).
template <int P>
__device__ __forceinline__ unsigned group_mask() {
  unsigned lane = threadIdx.x & 31;
  if (P == 1) return 1u << lane;
  return ((1u << P) - 1u) << (lane & ~(unsigned)(P - 1));
}
template <int P>
__device__ __forceinline__ float group_sum(float v, unsigned mask) {
#pragma unroll
  for (int o = P / 2; o > 0; o >>= 1) v += __shfl_xor_sync(mask, v, o);
  return v;
}

// Copies rows r0..r0+rows-1 of one head (D elements at `base + r*rstride`) into
// an fp32 tile; rows at or past `limit` become zeros.
template <int D, int ROWS>
__device__ __forceinline__ void load_tile(float (*tile)[D], const bf16* __restrict__ base,
                                          int64_t rstride, int r0, int limit) {
  for (int idx = threadIdx.x; idx < ROWS * D; idx += blockDim.x) {
    int r = idx / D, c = idx % D;
    int j = r0 + r;
    tile[r][c] = j < limit ? to_f(base[(int64_t)j * rstride + c]) : 0.f;
  }
}

template <int D>
__global__ void __launch_bounds__(Cfg<D>::THREADS)
    attention_forward_kernel(AttentionArgs a, float scale_log2) {
  using C = Cfg<D>;
  constexpr int DPT = C::DPT, P = C::P;
  __shared__ float Ks[C::BT][D];
  __shared__ float Vs[C::BT][D];
  // Heaviest query tiles (latest positions) first.
  const int tile = gridDim.x - 1 - blockIdx.x;
  const int h = blockIdx.y, b = blockIdx.z;
  const int g = h / (a.heads / a.kv_heads);
  const int qi = threadIdx.x / P, p = threadIdx.x % P;
  const int t = tile * C::BQ + qi;
  const bool valid = t < a.Tq;
  const int pos = valid ? a.q_pos0 + t : -1;
  const unsigned mask = group_mask<P>();

  float q[DPT], o[DPT];
  const bf16* qp = a.q + b * a.q_bstride + (int64_t)t * a.q_rstride + (int64_t)h * D;
#pragma unroll
  for (int e = 0; e < DPT; e++) {
    q[e] = valid ? to_f(qp[p + P * e]) * scale_log2 : 0.f;
    o[e] = 0.f;
  }
  float m = -INFINITY, l = 0.f;

  const int last_t = min(a.Tq, (tile + 1) * C::BQ) - 1;
  const int kend = min(a.Tk, a.q_pos0 + last_t + 1);
  const bf16* kb = a.k + b * a.kv_bstride + (int64_t)g * D;
  const bf16* vb = a.v + b * a.kv_bstride + (int64_t)g * D;
  for (int k0 = 0; k0 < kend; k0 += C::BT) {
    __syncthreads();
    load_tile<D, C::BT>(Ks, kb, a.kv_rstride, k0, kend);
    load_tile<D, C::BT>(Vs, vb, a.kv_rstride, k0, kend);
    __syncthreads();
    for (int c0 = 0; c0 < C::BT; c0 += C::CH) {
      if (k0 + c0 > pos) break;  // the rest is masked; uniform within the group
      float s[C::CH];
      float mc = -INFINITY;
#pragma unroll
      for (int u = 0; u < C::CH; u++) {
        float acc = 0.f;
#pragma unroll
        for (int e = 0; e < DPT; e++) acc += q[e] * Ks[c0 + u][p + P * e];
        acc = group_sum<P>(acc, mask);
        int j = k0 + c0 + u;
        s[u] = (j <= pos && j < kend) ? acc : -INFINITY;
        mc = fmaxf(mc, s[u]);
      }
      // Key k0 + c0 <= pos is visible, so mc is finite.
      float mn = fmaxf(m, mc);
      float alpha = exp2f(m - mn);  // 0 on the first step (m = -inf)
      l *= alpha;
#pragma unroll
      for (int e = 0; e < DPT; e++) o[e] *= alpha;
#pragma unroll
      for (int u = 0; u < C::CH; u++) {
        float pu = exp2f(s[u] - mn);
        l += pu;
#pragma unroll
        for (int e = 0; e < DPT; e++) o[e] += pu * Vs[c0 + u][p + P * e];
      }
      m = mn;
    }
  }
  if (!valid) return;
  float inv = 1.f / l;
  bf16* op = a.out + b * a.o_bstride + (int64_t)t * a.o_rstride + (int64_t)h * D;
#pragma unroll
  for (int e = 0; e < DPT; e++) op[p + P * e] = to_bf(o[e] * inv);
  if (p == 0) a.lse2[((int64_t)b * a.heads + h) * a.Tq + t] = m + log2f(l);
}

// delta[b, h, t] = sum_d dout[b, t, h, d] * out[b, t, h, d].
__global__ void attention_delta_kernel(AttentionArgs a, const bf16* __restrict__ dout,
                                       float* __restrict__ delta) {
  int64_t total = (int64_t)a.B * a.heads * a.Tq;
  int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  int t = (int)(idx % a.Tq);
  int64_t bh = idx / a.Tq;
  int h = (int)(bh % a.heads), b = (int)(bh / a.heads);
  int64_t off = b * a.o_bstride + (int64_t)t * a.o_rstride + (int64_t)h * a.head_dim;
  float acc = 0.f;
  for (int d = 0; d < a.head_dim; d++) acc += to_f(dout[off + d]) * to_f(a.out[off + d]);
  delta[idx] = acc;
}

template <int D>
__global__ void __launch_bounds__(Cfg<D>::THREADS)
    attention_dq_kernel(AttentionArgs a, const bf16* __restrict__ dout, bf16* __restrict__ dq,
                        const float* __restrict__ delta, float scale_log2, float scale) {
  using C = Cfg<D>;
  constexpr int DPT = C::DPT, P = C::P;
  __shared__ float Ks[C::BT][D];
  __shared__ float Vs[C::BT][D];
  const int tile = gridDim.x - 1 - blockIdx.x;
  const int h = blockIdx.y, b = blockIdx.z;
  const int g = h / (a.heads / a.kv_heads);
  const int qi = threadIdx.x / P, p = threadIdx.x % P;
  const int t = tile * C::BQ + qi;
  const bool valid = t < a.Tq;
  const int pos = valid ? t : -1;
  const unsigned mask = group_mask<P>();

  float q[DPT], dO[DPT], acc[DPT];
  const int64_t qoff = b * a.q_bstride + (int64_t)t * a.q_rstride + (int64_t)h * D;
  const int64_t ooff = b * a.o_bstride + (int64_t)t * a.o_rstride + (int64_t)h * D;
#pragma unroll
  for (int e = 0; e < DPT; e++) {
    q[e] = valid ? to_f(a.q[qoff + p + P * e]) * scale_log2 : 0.f;
    dO[e] = valid ? to_f(dout[ooff + p + P * e]) : 0.f;
    acc[e] = 0.f;
  }
  const int64_t row = ((int64_t)b * a.heads + h) * a.Tq + t;
  const float lse = valid ? a.lse2[row] : 0.f;
  const float dlt = valid ? delta[row] : 0.f;

  const int kend = min(a.Tq, (tile + 1) * C::BQ);
  const bf16* kb = a.k + b * a.kv_bstride + (int64_t)g * D;
  const bf16* vb = a.v + b * a.kv_bstride + (int64_t)g * D;
  for (int k0 = 0; k0 < kend; k0 += C::BT) {
    __syncthreads();
    load_tile<D, C::BT>(Ks, kb, a.kv_rstride, k0, kend);
    load_tile<D, C::BT>(Vs, vb, a.kv_rstride, k0, kend);
    __syncthreads();
    for (int u = 0; u < C::BT; u++) {
      int j = k0 + u;
      if (j > pos) break;  // uniform within the group
      float sc = 0.f, dp = 0.f;
#pragma unroll
      for (int e = 0; e < DPT; e++) {
        sc += q[e] * Ks[u][p + P * e];
        dp += dO[e] * Vs[u][p + P * e];
      }
      sc = group_sum<P>(sc, mask);
      dp = group_sum<P>(dp, mask);
      float pr = exp2f(sc - lse);
      float ds = pr * (dp - dlt);
#pragma unroll
      for (int e = 0; e < DPT; e++) acc[e] += ds * Ks[u][p + P * e];
    }
  }
  if (!valid) return;
#pragma unroll
  for (int e = 0; e < DPT; e++) dq[qoff + p + P * e] = to_bf(acc[e] * scale);
}

template <int D>
__global__ void __launch_bounds__(Cfg<D>::THREADS)
    attention_dkv_kernel(AttentionArgs a, const bf16* __restrict__ dout, bf16* __restrict__ dk,
                         bf16* __restrict__ dv, const float* __restrict__ delta, float scale_log2,
                         float scale) {
  using C = Cfg<D>;
  constexpr int DPT = C::DPT, P = C::P;
  __shared__ float Qs[C::BT][D];
  __shared__ float Os[C::BT][D];  // dout rows
  __shared__ float Ls[C::BT];
  __shared__ float Ds[C::BT];
  const int tile = blockIdx.x;  // earliest keys see the most queries: first
  const int g = blockIdx.y, b = blockIdx.z;
  const int group = a.heads / a.kv_heads;
  const int ki = threadIdx.x / P, p = threadIdx.x % P;
  const int T = a.Tq;
  const int jj = tile * C::BQ + ki;
  const bool valid = jj < T;
  const int j = valid ? jj : INT_MAX;
  const unsigned mask = group_mask<P>();

  float k[DPT], v[DPT], dk_acc[DPT], dv_acc[DPT];
  const int64_t kvoff = b * a.kv_bstride + (int64_t)jj * a.kv_rstride + (int64_t)g * D;
#pragma unroll
  for (int e = 0; e < DPT; e++) {
    k[e] = valid ? to_f(a.k[kvoff + p + P * e]) * scale_log2 : 0.f;
    v[e] = valid ? to_f(a.v[kvoff + p + P * e]) : 0.f;
    dk_acc[e] = 0.f;
    dv_acc[e] = 0.f;
  }
  const int i_first = tile * C::BQ;  // no query before the block's first key sees it
  for (int hh = 0; hh < group; hh++) {
    const int h = g * group + hh;
    const bf16* qb = a.q + b * a.q_bstride + (int64_t)h * D;
    const bf16* ob = dout + b * a.o_bstride + (int64_t)h * D;
    const int64_t lrow = ((int64_t)b * a.heads + h) * T;
    for (int i0 = i_first; i0 < T; i0 += C::BT) {
      __syncthreads();
      load_tile<D, C::BT>(Qs, qb, a.q_rstride, i0, T);
      load_tile<D, C::BT>(Os, ob, a.o_rstride, i0, T);
      for (int r = threadIdx.x; r < C::BT; r += blockDim.x) {
        int i = i0 + r;
        Ls[r] = i < T ? a.lse2[lrow + i] : 0.f;
        Ds[r] = i < T ? delta[lrow + i] : 0.f;
      }
      __syncthreads();
      for (int u = 0; u < C::BT; u++) {
        int i = i0 + u;
        if (i >= T) break;
        if (i < j) continue;  // masked: uniform within the group
        float sc = 0.f, dp = 0.f;
#pragma unroll
        for (int e = 0; e < DPT; e++) {
          sc += k[e] * Qs[u][p + P * e];
          dp += v[e] * Os[u][p + P * e];
        }
        sc = group_sum<P>(sc, mask);
        dp = group_sum<P>(dp, mask);
        float pr = exp2f(sc - Ls[u]);
        float ds = pr * (dp - Ds[u]);
#pragma unroll
        for (int e = 0; e < DPT; e++) {
          dv_acc[e] += pr * Os[u][p + P * e];
          dk_acc[e] += ds * Qs[u][p + P * e];
        }
      }
    }
  }
  if (!valid) return;
#pragma unroll
  for (int e = 0; e < DPT; e++) {
    dk[kvoff + p + P * e] = to_bf(dk_acc[e] * scale);
    dv[kvoff + p + P * e] = to_bf(dv_acc[e]);
  }
}

Status check_args(const AttentionArgs& a, const char* who) {
  std::string w(who);
  if (a.B <= 0 || a.Tq <= 0 || a.Tk <= 0 || a.heads <= 0 || a.kv_heads <= 0 || a.q_pos0 < 0)
    return Status::Invalid(w + ": bad shape");
  if (a.heads % a.kv_heads) return Status::Invalid(w + ": heads not a multiple of kv heads");
  if (!attention_supports(a.head_dim))
    return Status::Invalid(w + ": head_dim " + std::to_string(a.head_dim) +
                           " not built (16, 32, 64, 128)");
  if (a.B > 65535 || a.heads > 65535) return Status::Invalid(w + ": grid too large");
  if (!a.q || !a.k || !a.v || !a.out || !a.lse2) return Status::Invalid(w + ": null pointer");
  return Status::OK();
}

template <int D>
Status forward_d(const AttentionArgs& a, cudaStream_t s) {
  using C = Cfg<D>;
  float scale_log2 = kLog2e / sqrtf((float)D);
  dim3 grid((a.Tq + C::BQ - 1) / C::BQ, a.heads, a.B);
  LM_LAUNCH(attention_forward_kernel<D>, grid, C::THREADS, 0, s, a, scale_log2);
  LM_CUDA_LAUNCHED("attention_forward_kernel");
  return Status::OK();
}

template <int D>
Status backward_d(const AttentionArgs& a, const bf16* dout, bf16* dq, bf16* dk, bf16* dv,
                  float* delta, cudaStream_t s) {
  using C = Cfg<D>;
  float scale = 1.f / sqrtf((float)D);
  float scale_log2 = kLog2e * scale;
  int64_t rows = (int64_t)a.B * a.heads * a.Tq;
  LM_LAUNCH(attention_delta_kernel, blocks_for(rows, 256, INT32_MAX), 256, 0, s, a, dout, delta);
  LM_CUDA_LAUNCHED("attention_delta_kernel");
  dim3 gq((a.Tq + C::BQ - 1) / C::BQ, a.heads, a.B);
  LM_LAUNCH(attention_dq_kernel<D>, gq, C::THREADS, 0, s, a, dout, dq, delta, scale_log2, scale);
  LM_CUDA_LAUNCHED("attention_dq_kernel");
  dim3 gk((a.Tq + C::BQ - 1) / C::BQ, a.kv_heads, a.B);
  LM_LAUNCH(attention_dkv_kernel<D>, gk, C::THREADS, 0, s, a, dout, dk, dv, delta, scale_log2,
            scale);
  LM_CUDA_LAUNCHED("attention_dkv_kernel");
  return Status::OK();
}

}  // namespace

bool attention_supports(int head_dim) {
  return head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128;
}

Status attention_forward(const AttentionArgs& a, cudaStream_t s) {
  LM_RETURN_IF_ERROR(check_args(a, "attention_forward"));
  switch (a.head_dim) {
    case 16:
      return forward_d<16>(a, s);
    case 32:
      return forward_d<32>(a, s);
    case 64:
      return forward_d<64>(a, s);
    case 128:
      return forward_d<128>(a, s);
  }
  return Status::Invalid("attention_forward: unsupported head_dim");
}

Status attention_backward(const AttentionArgs& a, const bf16* dout, bf16* dq, bf16* dk, bf16* dv,
                          float* delta, cudaStream_t s) {
  LM_RETURN_IF_ERROR(check_args(a, "attention_backward"));
  if (a.Tq != a.Tk || a.q_pos0 != 0)
    return Status::Invalid("attention_backward: needs Tq == Tk and q_pos0 == 0");
  if (!dout || !dq || !dk || !dv || !delta)
    return Status::Invalid("attention_backward: null pointer");
  switch (a.head_dim) {
    case 16:
      return backward_d<16>(a, dout, dq, dk, dv, delta, s);
    case 32:
      return backward_d<32>(a, dout, dq, dk, dv, delta, s);
    case 64:
      return backward_d<64>(a, dout, dq, dk, dv, delta, s);
    case 128:
      return backward_d<128>(a, dout, dq, dk, dv, delta, s);
  }
  return Status::Invalid("attention_backward: unsupported head_dim");
}

}  // namespace cuda
}  // namespace lm
