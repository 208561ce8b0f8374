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
//   forward_tc the same on the tensor cores: 4 warps x 16 queries per block,
//              S = Q K^T and O += P V as 16x16x16 bf16 wmma products with fp32
//              accumulation; the online softmax and the running O (fp32) live
//              in shared memory, so no fragment layout is assumed
//   delta      D/8 lanes per (b, h, t): sum(dout * out)
//   dq         one thread group per query, loops over key tiles   (dq)
//   dk, dv     one thread group per key, loops over the query heads of its
//              kv head and over query tiles                       (dk, dv)
#include <mma.h>

#include <climits>
#include <cstdlib>
#include <cstring>

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

// ---- forward on the tensor cores ---------------------------------------------
// Copies rows r0..r0+63 (those below limit; zeros for the rest) of D values,
// rstride apart from base, into a [64][D] shared-memory tile: 16 bytes (8
// values) a load when the rows allow it, as every shape the model makes does
// (D a multiple of 16, strides multiples of 8, buffers from cudaMalloc); one
// value a load otherwise. The choice is the same for the whole block.
// Tile rows are D + 8 values apart in shared memory: rows of 128 or 256 bytes
// would put the 8 rows that a wmma fragment load reads at once on the same
// banks; 16 more bytes a row spread them over all 32.
template <int D>
constexpr int tile_ld() {
  return D + 8;
}

template <int D>
__device__ __forceinline__ void copy_rows(bf16* tile, const bf16* __restrict__ base,
                                          int64_t rstride, int r0, int limit) {
  constexpr int LD = tile_ld<D>();
  if (aligned16(base) && (rstride & 7) == 0) {
    for (int idx = threadIdx.x; idx < 64 * D / 8; idx += blockDim.x) {
      int r = idx / (D / 8), c = (idx % (D / 8)) * 8, j = r0 + r;
      int4 v = make_int4(0, 0, 0, 0);  // bf16 zeros
      if (j < limit) {
        LM_CHECK_ALIGNED16(base + (int64_t)j * rstride + c);
        v = *reinterpret_cast<const int4*>(base + (int64_t)j * rstride + c);
      }
      LM_CHECK_ALIGNED16(tile + r * LD + c);
      *reinterpret_cast<int4*>(tile + r * LD + c) = v;
    }
    return;
  }
  for (int idx = threadIdx.x; idx < 64 * D; idx += blockDim.x) {
    int r = idx / D, c = idx % D, j = r0 + r;
    tile[r * LD + c] = j < limit ? base[(int64_t)j * rstride + c] : to_bf(0.f);
  }
}

// The m-th (0..31) column of a lane's share of a 64-wide score row: the two
// lanes of a row (half 0 and 1) take alternate columns, starting at a place
// that depends on the row, so that at every step the warp's 32 lanes touch 32
// different banks. (Walking columns c0..c0+31 of rows 64 floats apart would
// put all 32 lanes on one bank: a 32-way conflict at every step.)
__device__ __forceinline__ int tile_column(int m, int row, int half) {
  return 2 * ((m + row) & 31) + half;
}

// Where each entry of a lane's 16 x 16 fp32 accumulator fragment sits in the
// tile. wmma leaves that layout unspecified, so it is read off a fragment
// loaded from a table that holds each element's own index r * 16 + c. With it
// the kernels work on accumulators element by element (scale the rows of O,
// turn scores into probabilities) without staging them in shared memory and
// without assuming a layout.
struct FragMap {
  nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float> idx;
  __device__ __forceinline__ int row(int e) const { return static_cast<int>(idx.x[e]) >> 4; }
  __device__ __forceinline__ int col(int e) const { return static_cast<int>(idx.x[e]) & 15; }
};
// The table: 256 floats of 32-byte aligned shared memory, filled by the whole
// block, which must pass a barrier before any warp calls load_frag_map.
__device__ __forceinline__ void fill_frag_table(float* table) {
  for (int i = threadIdx.x; i < 256; i += blockDim.x) table[i] = static_cast<float>(i);
}
__device__ __forceinline__ void load_frag_map(FragMap& m, const float* table) {
  nvcuda::wmma::load_matrix_sync(m.idx, table, 16, nvcuda::wmma::mem_row_major);
}

// Writes a warp's 16 x D accumulators (the fragments of its 16 rows) to dst as
// bf16, row r at dst + (r0 + r) * rstride, skipping rows from `limit` on;
// each element is multiplied by scale(r).
template <int D, typename Scale>
__device__ __forceinline__ void store_rows(
    const nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float> (&acc)[D / 16],
    const FragMap& fm, bf16* dst, int64_t rstride, int r0, int limit, Scale scale) {
#pragma unroll
  for (int n = 0; n < D / 16; n++) {
#pragma unroll
    for (int e = 0; e < acc[n].num_elements; e++) {
      const int r = fm.row(e);
      if (r0 + r < limit)
        dst[(int64_t)(r0 + r) * rstride + n * 16 + fm.col(e)] = to_bf(acc[n].x[e] * scale(r));
    }
  }
}

// Shared memory of one block (4 warps, 64 queries, 64-key tiles), in bytes.
template <int D>
struct TcLayout {
  static constexpr int BQ = 64, BK = 64, W = 4;
  static constexpr size_t q = 0;                                      // bf16 [BQ][D]
  static constexpr size_t k = q + sizeof(bf16) * BQ * tile_ld<D>();   // bf16 [BK][D + 8]
  static constexpr size_t v = k + sizeof(bf16) * BK * tile_ld<D>();   // bf16 [BK][D + 8]
  static constexpr size_t sc = v + sizeof(bf16) * BK * tile_ld<D>();  // f32 [W][16][BK] scores
  static constexpr size_t p = sc + sizeof(float) * W * 16 * BK;  // bf16 [W][16][BK] probabilities
  static constexpr size_t map = p + sizeof(bf16) * W * 16 * BK;  // f32 [256]: FragMap's table
  static constexpr size_t row = map + sizeof(float) * 256;       // f32 [3][W][16]: m, l, alpha
  static constexpr size_t bytes = row + sizeof(float) * 3 * W * 16;
  // The running output stays in each warp's accumulators: 53 KB at head size
  // 64 (four blocks per SM), 77 KB at 128 (two).
};

// Four blocks per SM at head size 64 (shared memory allows it): at most 128
// registers.
template <int D>
__global__ void __launch_bounds__(128, D <= 64 ? 4 : 2)
    attention_forward_tc_kernel(AttentionArgs a, float scale_log2) {
  using namespace nvcuda;
  using Lay = TcLayout<D>;
  constexpr int BQ = Lay::BQ, BK = Lay::BK;
  LM_DYNAMIC_SHARED(unsigned char, smem);
  bf16* Qs = reinterpret_cast<bf16*>(smem + Lay::q);
  bf16* Ks = reinterpret_cast<bf16*>(smem + Lay::k);
  bf16* Vs = reinterpret_cast<bf16*>(smem + Lay::v);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  float* Sw = reinterpret_cast<float*>(smem + Lay::sc) + warp * 16 * BK;
  bf16* Pw = reinterpret_cast<bf16*>(smem + Lay::p) + warp * 16 * BK;
  float* table = reinterpret_cast<float*>(smem + Lay::map);
  float* Mw = reinterpret_cast<float*>(smem + Lay::row) + warp * 16;
  float* Lw = Mw + Lay::W * 16;
  float* Aw = Lw + Lay::W * 16;

  const int tile = gridDim.x - 1 - blockIdx.x;  // heaviest first
  const int h = blockIdx.y, b = blockIdx.z;
  const int g = h / (a.heads / a.kv_heads);
  const int q0 = tile * BQ;
  const bf16* qb = a.q + b * a.q_bstride + (int64_t)h * D;
  static_assert(BQ == 64 && BK == 64, "copy_rows copies 64 rows");
  copy_rows<D>(Qs, qb, a.q_rstride, q0, a.Tq);
  fill_frag_table(table);
  if (lane < 16) {
    Mw[lane] = -INFINITY;
    Lw[lane] = 0.f;
  }
  __syncthreads();
  FragMap fm;
  load_frag_map(fm, table);
  // The warp's running output O (16 x D), unnormalized.
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> oacc[D / 16];
#pragma unroll
  for (int n = 0; n < D / 16; n++) wmma::fill_fragment(oacc[n], 0.f);
  // This lane's softmax row and half of the tile's columns (tile_column).
  static_assert(BK == 64, "tile_column assumes 64-key tiles");
  const int r = lane >> 1, half = lane & 1;
  const int warp_last = min(a.Tq - 1, q0 + warp * 16 + 15);  // may be < q0 + warp*16
  const int warp_max_pos = a.q_pos0 + warp_last;
  const int last_t = min(a.Tq, q0 + BQ) - 1;
  const int kend = min(a.Tk, a.q_pos0 + last_t + 1);
  const bf16* kb = a.k + b * a.kv_bstride + (int64_t)g * D;
  const bf16* vb = a.v + b * a.kv_bstride + (int64_t)g * D;
  wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> qf[D / 16];
  bool q_loaded = false;

  for (int k0 = 0; k0 < kend; k0 += BK) {
    __syncthreads();  // the previous tile's K and V are no longer read
    copy_rows<D>(Ks, kb, a.kv_rstride, k0, kend);
    copy_rows<D>(Vs, vb, a.kv_rstride, k0, kend);
    __syncthreads();
    if (q0 + warp * 16 >= a.Tq || k0 > warp_max_pos) continue;  // warp-uniform: all masked

    // S (16 x BK) = Q_w (16 x D) K^T (D x BK); the warp's Q fragments are
    // loaded once, on its first visible tile.
    if (!q_loaded) {
      for (int kk = 0; kk < D / 16; kk++)
        wmma::load_matrix_sync(qf[kk], Qs + (warp * 16) * tile_ld<D>() + kk * 16, tile_ld<D>());
      q_loaded = true;
    }
    for (int n = 0; n < BK / 16; n++) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.f);
      for (int kk = 0; kk < D / 16; kk++) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> fb;
        wmma::load_matrix_sync(fb, Ks + (n * 16) * tile_ld<D>() + kk * 16, tile_ld<D>());
        wmma::mma_sync(acc, qf[kk], fb, acc);
      }
      // Scaled to log2 units and masked (-inf) in the accumulator, so that
      // the softmax below only reads the staged scores for its row maxima.
#pragma unroll
      for (int e = 0; e < acc.num_elements; e++) {
        const int t = q0 + warp * 16 + fm.row(e), j = k0 + n * 16 + fm.col(e);
        const bool visible = t < a.Tq && j <= a.q_pos0 + t && j < kend;
        acc.x[e] = visible ? acc.x[e] * scale_log2 : -INFINITY;
      }
      wmma::store_matrix_sync(Sw + n * 16, acc, BK, wmma::mem_row_major);
    }
    __syncwarp();

    // Online softmax, two lanes per row. Masked scores are -inf; a row with
    // nothing visible yet keeps m = -inf and uses 0 as its reference.
    float mloc = -INFINITY;
    for (int m = 0; m < BK / 2; m++) mloc = fmaxf(mloc, Sw[r * BK + tile_column(m, r, half)]);
    mloc = fmaxf(mloc, __shfl_xor_sync(0xffffffffu, mloc, 1));
    const float m_old = Mw[r];
    const float m_new = fmaxf(m_old, mloc);
    const float ref = m_new == -INFINITY ? 0.f : m_new;
    float lsum = 0.f;
    for (int m = 0; m < BK / 2; m++) {
      const int c = tile_column(m, r, half);
      bf16 pb = to_bf(exp2f(Sw[r * BK + c] - ref));
      Pw[r * BK + c] = pb;
      lsum += to_f(pb);  // the sum of what P V will actually use
    }
    lsum += __shfl_xor_sync(0xffffffffu, lsum, 1);
    __syncwarp();  // every lane has read Mw[r] before it changes
    if ((lane & 1) == 0) {
      const float alpha = exp2f(m_old - ref);  // 0 while m_old = -inf
      Mw[r] = m_new;
      Lw[r] = Lw[r] * alpha + lsum;
      Aw[r] = alpha;
    }
    __syncwarp();

    // O = alpha O + P_w (16 x BK) V (BK x D): the rows of O's fragments are
    // scaled in place (FragMap), then P V accumulates into them; P's fragments
    // are loaded once for all D / 16 column blocks.
    wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> pf[BK / 16];
#pragma unroll
    for (int kk = 0; kk < BK / 16; kk++) wmma::load_matrix_sync(pf[kk], Pw + kk * 16, BK);
#pragma unroll
    for (int n = 0; n < D / 16; n++) {
#pragma unroll
      for (int e = 0; e < oacc[n].num_elements; e++) oacc[n].x[e] *= Aw[fm.row(e)];
#pragma unroll
      for (int kk = 0; kk < BK / 16; kk++) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> fb;
        wmma::load_matrix_sync(fb, Vs + (kk * 16) * tile_ld<D>() + n * 16, tile_ld<D>());
        wmma::mma_sync(oacc[n], pf[kk], fb, oacc[n]);
      }
    }
  }

  __syncwarp();
  store_rows<D>(oacc, fm, a.out + b * a.o_bstride + (int64_t)h * D, a.o_rstride, q0 + warp * 16,
                a.Tq, [Lw](int row) { return 1.f / Lw[row]; });
  if (lane < 16) {
    int tt = q0 + warp * 16 + lane;
    if (tt < a.Tq) a.lse2[((int64_t)b * a.heads + h) * a.Tq + tt] = Mw[lane] + log2f(Lw[lane]);
  }
}

// ---- backward on the tensor cores ----------------------------------------------
// Both kernels: 4 warps, 16 rows each (queries for dq, keys for dk/dv), 64-row
// tiles of the other side. Scores and probabilities are staged per warp in
// shared memory for the elementwise part; P and dS enter the products in bf16
// (as FlashAttention-2 does); dq, dk, dv accumulate in fragments across tiles.
template <int D>
struct TcBwdLayout {
  static constexpr int B64 = 64, W = 4;
  static constexpr size_t a = 0;  // bf16 [64][D] own rows (Q or K)
  static constexpr size_t b = a + sizeof(bf16) * B64 * tile_ld<D>();     // own rows (dO or V)
  static constexpr size_t c = b + sizeof(bf16) * B64 * tile_ld<D>();     // tile (K or Q)
  static constexpr size_t d = c + sizeof(bf16) * B64 * tile_ld<D>();     // tile (V or dO)
  static constexpr size_t rows = d + sizeof(bf16) * B64 * tile_ld<D>();  // f32 [2][64]: lse2, delta
  static constexpr size_t map = rows + sizeof(float) * 2 * B64;  // f32 [256]: FragMap's table
  static constexpr size_t pds = map + sizeof(float) * 256;       // per warp: bf16 P, dS [16][64]
  static constexpr size_t pds_w = sizeof(bf16) * 2 * 16 * B64;
  // Scores and dP stay in accumulators (FragMap): 53.5 KB at head size 64,
  // four blocks per SM; 85.5 KB at 128, two.
  static constexpr size_t bytes = pds + pds_w * W;
};

// dq for 64 queries of one head: loops over the key tiles they see.
template <int D>
__global__ void __launch_bounds__(128, D <= 64 ? 4 : 2)
    attention_dq_tc_kernel(AttentionArgs a, const bf16* __restrict__ dout, bf16* __restrict__ dq,
                           const float* __restrict__ delta, float scale_log2, float scale) {
  using namespace nvcuda;
  using Lay = TcBwdLayout<D>;
  LM_DYNAMIC_SHARED(unsigned char, smem);
  bf16* Qs = reinterpret_cast<bf16*>(smem + Lay::a);
  bf16* Os = reinterpret_cast<bf16*>(smem + Lay::b);  // dout rows
  bf16* Ks = reinterpret_cast<bf16*>(smem + Lay::c);
  bf16* Vs = reinterpret_cast<bf16*>(smem + Lay::d);
  float* Lr = reinterpret_cast<float*>(smem + Lay::rows);
  float* Dr = Lr + 64;
  float* table = reinterpret_cast<float*>(smem + Lay::map);
  const int warp = threadIdx.x >> 5;
  bf16* dSw = reinterpret_cast<bf16*>(smem + Lay::pds + Lay::pds_w * warp);

  const int tile = gridDim.x - 1 - blockIdx.x;
  const int h = blockIdx.y, b = blockIdx.z, T = a.Tq;
  const int g = h / (a.heads / a.kv_heads);
  const int q0 = tile * 64;
  copy_rows<D>(Qs, a.q + b * a.q_bstride + (int64_t)h * D, a.q_rstride, q0, T);
  copy_rows<D>(Os, dout + b * a.o_bstride + (int64_t)h * D, a.o_rstride, q0, T);
  const int64_t lrow = ((int64_t)b * a.heads + h) * T;
  for (int r = threadIdx.x; r < 64; r += blockDim.x) {
    Lr[r] = q0 + r < T ? a.lse2[lrow + q0 + r] : 0.f;
    Dr[r] = q0 + r < T ? delta[lrow + q0 + r] : 0.f;
  }
  fill_frag_table(table);
  __syncthreads();
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[D / 16];
#pragma unroll
  for (int n = 0; n < D / 16; n++) wmma::fill_fragment(acc[n], 0.f);
  const int kend = min(T, q0 + 64);
  const int warp_last = min(T - 1, q0 + warp * 16 + 15);
  const bf16* kb = a.k + b * a.kv_bstride + (int64_t)g * D;
  const bf16* vb = a.v + b * a.kv_bstride + (int64_t)g * D;
  // The warp's Q fragments stay in registers; its dO fragments are read from
  // shared memory at each use, which keeps the kernel within the 128 registers
  // that four blocks per SM allow.
  wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> qf[D / 16];
  const bf16* Ow = Os + (warp * 16) * tile_ld<D>();
  bool own_loaded = false;
  for (int k0 = 0; k0 < kend; k0 += 64) {
    __syncthreads();
    copy_rows<D>(Ks, kb, a.kv_rstride, k0, kend);
    copy_rows<D>(Vs, vb, a.kv_rstride, k0, kend);
    __syncthreads();
    if (q0 + warp * 16 >= T || k0 > warp_last) continue;  // warp-uniform
    if (!own_loaded) {                                    // the warp's Q fragments, once
      for (int kk = 0; kk < D / 16; kk++)
        wmma::load_matrix_sync(qf[kk], Qs + (warp * 16) * tile_ld<D>() + kk * 16, tile_ld<D>());
      own_loaded = true;
    }
    // S = Q K^T and dP = dO V^T, 16 x 16 at a time, then dS = P (dP - delta)
    // element by element in the accumulators, into dSw (16 x 64, bf16).
    for (int n = 0; n < 4; n++) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> s, dp;
      wmma::fill_fragment(s, 0.f);
      wmma::fill_fragment(dp, 0.f);
      for (int kk = 0; kk < D / 16; kk++) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> fb;
        wmma::load_matrix_sync(fb, Ks + (n * 16) * tile_ld<D>() + kk * 16, tile_ld<D>());
        wmma::mma_sync(s, qf[kk], fb, s);
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> of;
        wmma::load_matrix_sync(of, Ow + kk * 16, tile_ld<D>());
        wmma::load_matrix_sync(fb, Vs + (n * 16) * tile_ld<D>() + kk * 16, tile_ld<D>());
        wmma::mma_sync(dp, of, fb, dp);
      }
      FragMap fm;  // loaded at each use: registers are the limit here
      load_frag_map(fm, table);
#pragma unroll
      for (int e = 0; e < s.num_elements; e++) {
        const int r = fm.row(e), c = n * 16 + fm.col(e);
        const int i = q0 + warp * 16 + r, j = k0 + c;
        const float pr = (i < T && j <= i) ? exp2f(s.x[e] * scale_log2 - Lr[warp * 16 + r]) : 0.f;
        dSw[r * 64 + c] = to_bf(pr * (dp.x[e] - Dr[warp * 16 + r]));
      }
    }
    __syncwarp();
#pragma unroll
    for (int n = 0; n < D / 16; n++) {  // dQ += dS K
      for (int kk = 0; kk < 4; kk++) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> fb;
        wmma::load_matrix_sync(fa, dSw + kk * 16, 64);
        wmma::load_matrix_sync(fb, Ks + (kk * 16) * tile_ld<D>() + n * 16, tile_ld<D>());
        wmma::mma_sync(acc[n], fa, fb, acc[n]);
      }
    }
    __syncwarp();
  }
  FragMap fm;
  load_frag_map(fm, table);
  store_rows<D>(acc, fm, dq + b * a.q_bstride + (int64_t)h * D, a.q_rstride, q0 + warp * 16, T,
                [scale](int) { return scale; });
}

// dk and dv for 64 keys of one kv head: loops over its query heads and the
// query tiles that see the keys.
template <int D>
__global__ void __launch_bounds__(128, D <= 64 ? 4 : 2)
    attention_dkv_tc_kernel(AttentionArgs a, const bf16* __restrict__ dout, bf16* __restrict__ dk,
                            bf16* __restrict__ dv, const float* __restrict__ delta,
                            float scale_log2, float scale) {
  using namespace nvcuda;
  using Lay = TcBwdLayout<D>;
  LM_DYNAMIC_SHARED(unsigned char, smem);
  bf16* Ks = reinterpret_cast<bf16*>(smem + Lay::a);
  bf16* Vs = reinterpret_cast<bf16*>(smem + Lay::b);
  bf16* Qs = reinterpret_cast<bf16*>(smem + Lay::c);
  bf16* Os = reinterpret_cast<bf16*>(smem + Lay::d);  // dout rows
  float* Lr = reinterpret_cast<float*>(smem + Lay::rows);
  float* Dr = Lr + 64;
  float* table = reinterpret_cast<float*>(smem + Lay::map);
  const int warp = threadIdx.x >> 5;
  bf16* Pw = reinterpret_cast<bf16*>(smem + Lay::pds + Lay::pds_w * warp);  // P^T
  bf16* dSw = Pw + 16 * 64;                                                 // dS^T

  const int tile = blockIdx.x;  // earliest keys see the most queries: first
  const int g = blockIdx.y, b = blockIdx.z, T = a.Tq;
  const int group = a.heads / a.kv_heads;
  const int k0 = tile * 64;
  copy_rows<D>(Ks, a.k + b * a.kv_bstride + (int64_t)g * D, a.kv_rstride, k0, T);
  copy_rows<D>(Vs, a.v + b * a.kv_bstride + (int64_t)g * D, a.kv_rstride, k0, T);
  fill_frag_table(table);
  __syncthreads();
  FragMap fm;
  load_frag_map(fm, table);
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> dk_acc[D / 16], dv_acc[D / 16];
#pragma unroll
  for (int n = 0; n < D / 16; n++) {
    wmma::fill_fragment(dk_acc[n], 0.f);
    wmma::fill_fragment(dv_acc[n], 0.f);
  }
  const int warp_first = k0 + warp * 16;
  for (int hh = 0; hh < group; hh++) {
    const int h = g * group + hh;
    const bf16* qb = a.q + b * a.q_bstride + (int64_t)h * D;
    const bf16* ob = dout + b * a.o_bstride + (int64_t)h * D;
    const int64_t lrow = ((int64_t)b * a.heads + h) * T;
    for (int i0 = k0; i0 < T; i0 += 64) {
      __syncthreads();
      copy_rows<D>(Qs, qb, a.q_rstride, i0, T);
      copy_rows<D>(Os, ob, a.o_rstride, i0, T);
      for (int rr = threadIdx.x; rr < 64; rr += blockDim.x) {
        Lr[rr] = i0 + rr < T ? a.lse2[lrow + i0 + rr] : 0.f;
        Dr[rr] = i0 + rr < T ? delta[lrow + i0 + rr] : 0.f;
      }
      __syncthreads();
      if (warp_first >= T || i0 + 63 < warp_first) continue;  // warp-uniform: all masked
      for (int n = 0; n < 4; n++) {  // S^T = K Q^T and dP^T = V dO^T, 16 x 64 each
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> s, dp;
        wmma::fill_fragment(s, 0.f);
        wmma::fill_fragment(dp, 0.f);
        for (int kk = 0; kk < D / 16; kk++) {
          wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
          wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> fb;
          wmma::load_matrix_sync(fa, Ks + (warp * 16) * tile_ld<D>() + kk * 16, tile_ld<D>());
          wmma::load_matrix_sync(fb, Qs + (n * 16) * tile_ld<D>() + kk * 16, tile_ld<D>());
          wmma::mma_sync(s, fa, fb, s);
          wmma::load_matrix_sync(fa, Vs + (warp * 16) * tile_ld<D>() + kk * 16, tile_ld<D>());
          wmma::load_matrix_sync(fb, Os + (n * 16) * tile_ld<D>() + kk * 16, tile_ld<D>());
          wmma::mma_sync(dp, fa, fb, dp);
        }
        // P^T and dS^T element by element in the accumulators (FragMap).
#pragma unroll
        for (int e = 0; e < s.num_elements; e++) {
          const int r = fm.row(e), c = n * 16 + fm.col(e);
          const int j = warp_first + r, i = i0 + c;
          const float pr = (i < T && i >= j) ? exp2f(s.x[e] * scale_log2 - Lr[c]) : 0.f;
          Pw[r * 64 + c] = to_bf(pr);
          dSw[r * 64 + c] = to_bf(pr * (dp.x[e] - Dr[c]));
        }
      }
      __syncwarp();
#pragma unroll
      for (int n = 0; n < D / 16; n++) {  // dV += P^T dO, dK += dS^T Q
        for (int kk = 0; kk < 4; kk++) {
          wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
          wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> fb;
          wmma::load_matrix_sync(fa, Pw + kk * 16, 64);
          wmma::load_matrix_sync(fb, Os + (kk * 16) * tile_ld<D>() + n * 16, tile_ld<D>());
          wmma::mma_sync(dv_acc[n], fa, fb, dv_acc[n]);
          wmma::load_matrix_sync(fa, dSw + kk * 16, 64);
          wmma::load_matrix_sync(fb, Qs + (kk * 16) * tile_ld<D>() + n * 16, tile_ld<D>());
          wmma::mma_sync(dk_acc[n], fa, fb, dk_acc[n]);
        }
      }
      __syncwarp();
    }
  }
  __syncwarp();
  const int64_t at = b * a.kv_bstride + (int64_t)g * D;
  store_rows<D>(dk_acc, fm, dk + at, a.kv_rstride, warp_first, T, [scale](int) { return scale; });
  store_rows<D>(dv_acc, fm, dv + at, a.kv_rstride, warp_first, T, [](int) { return 1.f; });
}

// delta[b, h, t] = sum_d dout[b, t, h, d] * out[b, t, h, d]. D/8 adjacent
// lanes share a row, 8 elements each (one 16-byte load of each input when
// vec), so that a warp reads whole rows at once instead of one row per
// thread; the lanes' sums meet through shuffles.
template <int D>
__global__ void attention_delta_kernel(AttentionArgs a, const bf16* __restrict__ dout,
                                       float* __restrict__ delta, bool vec) {
  constexpr int G = D / 8;
  const int64_t total = (int64_t)a.B * a.heads * a.Tq;
  const int64_t idx = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / G;
  const int j = threadIdx.x % G;
  float acc = 0.f;
  if (idx < total) {  // no early return: every lane of a group joins the shuffles
    int t = (int)(idx % a.Tq);
    int64_t bh = idx / a.Tq;
    int h = (int)(bh % a.heads), b = (int)(bh / a.heads);
    int64_t off = b * a.o_bstride + (int64_t)t * a.o_rstride + (int64_t)h * D;
    if (vec) {
      Floats8 x = load_bf16x8(dout + off + j * 8), y = load_bf16x8(a.out + off + j * 8);
#pragma unroll
      for (int i = 0; i < 8; i++) acc += x.x[i] * y.x[i];
    } else {
      for (int d = j; d < D; d += G) acc += to_f(dout[off + d]) * to_f(a.out[off + d]);
    }
  }
  acc = group_sum<G>(acc, group_mask<G>());
  if (idx < total && j == 0) delta[idx] = acc;
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

// Query-key pairs the causal mask keeps, over every batch row and head: query i
// sits at position q_pos0 + i and sees keys 0 .. min(q_pos0 + i, Tk - 1). The
// profile rates each kernel by 2 * head_dim FLOPs per pair for each of its
// products (forward: 2, dq: 3, dk and dv: 4).
double causal_pairs(const AttentionArgs& a) {
  const double p = a.q_pos0, n1 = std::max(0, std::min(a.Tq, a.Tk - a.q_pos0));
  const double per_head = n1 * p + n1 * (n1 + 1) / 2 + ((double)a.Tq - n1) * a.Tk;
  return per_head * a.heads * a.B;
}

template <int D>
Status forward_d(const AttentionArgs& a, cudaStream_t s) {
  using C = Cfg<D>;
  float scale_log2 = kLog2e / sqrtf((float)D);
  dim3 grid((a.Tq + C::BQ - 1) / C::BQ, a.heads, a.B);
  LM_LAUNCH(attention_forward_kernel<D>, grid, C::THREADS, 0, s, a, scale_log2);
  LM_CUDA_LAUNCHED_FLOPS("attention_forward_kernel", 4.0 * D * causal_pairs(a));
  return Status::OK();
}

template <int D>
Status forward_tc_d(const AttentionArgs& a, cudaStream_t s) {
  using Lay = TcLayout<D>;
  float scale_log2 = kLog2e / sqrtf((float)D);
  LM_CUDA_RETURN(LM_SET_MAX_SMEM(attention_forward_tc_kernel<D>, Lay::bytes));
  dim3 grid((a.Tq + Lay::BQ - 1) / Lay::BQ, a.heads, a.B);
  LM_LAUNCH(attention_forward_tc_kernel<D>, grid, 32 * Lay::W, Lay::bytes, s, a, scale_log2);
  LM_CUDA_LAUNCHED_FLOPS("attention_forward_tc_kernel", 4.0 * D * causal_pairs(a));
  return Status::OK();
}

template <int D>
Status backward_d(const AttentionArgs& a, const bf16* dout, bf16* dq, bf16* dk, bf16* dv,
                  float* delta, bool tc, cudaStream_t s) {
  using C = Cfg<D>;
  float scale = 1.f / sqrtf((float)D);
  float scale_log2 = kLog2e * scale;
  int64_t rows = (int64_t)a.B * a.heads * a.Tq;
  // Rows start every o_rstride elements: 16-byte loads need it, and both
  // bases, to be multiples of 8 bf16.
  const bool vec =
      aligned16(dout) && aligned16(a.out) && a.o_rstride % 8 == 0 && a.o_bstride % 8 == 0;
  LM_LAUNCH(attention_delta_kernel<D>, blocks_for(rows * (D / 8), 256, INT32_MAX), 256, 0, s, a,
            dout, delta, vec);
  LM_CUDA_LAUNCHED("attention_delta_kernel");
  if (tc) {
    using Lay = TcBwdLayout<D>;
    const unsigned tiles = (a.Tq + 63) / 64;
    LM_CUDA_RETURN(LM_SET_MAX_SMEM(attention_dq_tc_kernel<D>, Lay::bytes));
    LM_CUDA_RETURN(LM_SET_MAX_SMEM(attention_dkv_tc_kernel<D>, Lay::bytes));
    LM_LAUNCH(attention_dq_tc_kernel<D>, dim3(tiles, a.heads, a.B), 128, Lay::bytes, s, a, dout, dq,
              delta, scale_log2, scale);
    LM_CUDA_LAUNCHED_FLOPS("attention_dq_tc_kernel", 6.0 * D * causal_pairs(a));
    LM_LAUNCH(attention_dkv_tc_kernel<D>, dim3(tiles, a.kv_heads, a.B), 128, Lay::bytes, s, a, dout,
              dk, dv, delta, scale_log2, scale);
    LM_CUDA_LAUNCHED_FLOPS("attention_dkv_tc_kernel", 8.0 * D * causal_pairs(a));
    return Status::OK();
  }
  dim3 gq((a.Tq + C::BQ - 1) / C::BQ, a.heads, a.B);
  LM_LAUNCH(attention_dq_kernel<D>, gq, C::THREADS, 0, s, a, dout, dq, delta, scale_log2, scale);
  LM_CUDA_LAUNCHED_FLOPS("attention_dq_kernel", 6.0 * D * causal_pairs(a));
  dim3 gk((a.Tq + C::BQ - 1) / C::BQ, a.kv_heads, a.B);
  LM_LAUNCH(attention_dkv_kernel<D>, gk, C::THREADS, 0, s, a, dout, dk, dv, delta, scale_log2,
            scale);
  LM_CUDA_LAUNCHED_FLOPS("attention_dkv_kernel", 8.0 * D * causal_pairs(a));
  return Status::OK();
}

}  // namespace

// kAuto: the tensor cores unless LM_CUDA_ATTN=scalar.
static AttnImpl ResolveImpl(AttnImpl impl) {
  if (impl != AttnImpl::kAuto) return impl;
  static const bool scalar = [] {
    const char* e = getenv("LM_CUDA_ATTN");
    return e && strcmp(e, "scalar") == 0;
  }();
  return scalar ? AttnImpl::kScalar : AttnImpl::kTensorCore;
}

bool attention_supports(int head_dim) {
  return head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128;
}

Status attention_forward(const AttentionArgs& a, cudaStream_t s, AttnImpl impl) {
  LM_RETURN_IF_ERROR(check_args(a, "attention_forward"));
  if (ResolveImpl(impl) == AttnImpl::kTensorCore) {
    switch (a.head_dim) {
      case 16:
        return forward_tc_d<16>(a, s);
      case 32:
        return forward_tc_d<32>(a, s);
      case 64:
        return forward_tc_d<64>(a, s);
      case 128:
        return forward_tc_d<128>(a, s);
    }
  }
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
                          float* delta, cudaStream_t s, AttnImpl impl) {
  LM_RETURN_IF_ERROR(check_args(a, "attention_backward"));
  if (a.Tq != a.Tk || a.q_pos0 != 0)
    return Status::Invalid("attention_backward: needs Tq == Tk and q_pos0 == 0");
  if (!dout || !dq || !dk || !dv || !delta)
    return Status::Invalid("attention_backward: null pointer");
  const bool tc = ResolveImpl(impl) == AttnImpl::kTensorCore;
  switch (a.head_dim) {
    case 16:
      return backward_d<16>(a, dout, dq, dk, dv, delta, tc, s);
    case 32:
      return backward_d<32>(a, dout, dq, dk, dv, delta, tc, s);
    case 64:
      return backward_d<64>(a, dout, dq, dk, dv, delta, tc, s);
    case 128:
      return backward_d<128>(a, dout, dq, dk, dv, delta, tc, s);
  }
  return Status::Invalid("attention_backward: unsupported head_dim");
}

}  // namespace cuda
}  // namespace lm
