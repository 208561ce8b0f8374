// kernels.h: the launchers of the CUDA backend's hand-written kernels, one
// common/cuda/<op>.cu each, and the CPU twin (common/cpu/ops.h) each must
// match. Used by the backend (cuda_backend.cpp) and by the kernel-check program
// (tests/gpu/), which runs every launcher against its twin.
//
// Conventions: every pointer is device memory; matrices are row-major; `n` is a
// row count (B*T); bf16 is __nv_bfloat16. A launcher checks its shapes, launches
// on `s`, and returns the launch error as a Status (check.h). Accumulating
// outputs are marked "+=": the caller zeroes them first when needed.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "util/status.h"

namespace lm {
namespace cuda {

using bf16 = __nv_bfloat16;

// --- convert.cu -------------------------------------------------------------
// out[i] = bf16(in[i]).
Status f32_to_bf16(const float* in, bf16* out, int64_t count, cudaStream_t s);

// --- embedding.cu (twin: embedding forward / backward) ----------------------
// out (N,C) = table[ids[n]] (fp32). Ids must be in range (the backend checks
// them on the host).
Status embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N, int C,
                         cudaStream_t s);
// The host side of the backward pass: ids (N) grouped by value, into plan
// (embedding_backward_plan_size(N) ints): the distinct ids in ascending order,
// from plan[N] where each one's rows start (*distinct + 1 entries, the last
// N), and from plan[2N + 1] the rows, ascending within each id.
inline int64_t embedding_backward_plan_size(int64_t N) {
  return 3 * N + 1;
}
void embedding_backward_plan(const int32_t* ids, int64_t N, int32_t* plan, int* distinct);
// dtable (V,C) += dout (N,C) scattered to rows ids[n], with `plan` (device
// memory) made by embedding_backward_plan: each distinct id's rows are summed
// in row order and added once. No atomics: the same bits on every run.
Status embedding_backward(float* dtable, const float* dout, const int32_t* plan, int64_t N,
                          int distinct, int C, cudaStream_t s);

// --- rmsnorm.cu (twin: rmsnorm forward / backward) --------------------------
// out (N,C) = x * rstd * w with rstd (N) = 1/sqrt(mean(x^2) + eps); x fp32, out
// bf16 (the next matrix product's operand).
Status rmsnorm_forward(bf16* out, float* rstd, const float* x, const float* w, int64_t N, int C,
                       float eps, cudaStream_t s);
// The backward pass, fp32 but for dx16. dx aliases none of the inputs.
struct RmsnormBackward {
  RmsnormBackward(const float* dout_, const float* x_, const float* w_, const float* rstd_,
                  int64_t n_, int dim_, float* scratch_)
      : dout(dout_), x(x_), w(w_), rstd(rstd_), scratch(scratch_), n(n_), dim(dim_) {}
  float* dx = nullptr;   // (N,C): d/dx, added to dx with accumulate_dx, else written
  bf16* dx16 = nullptr;  // (N,C): bf16 of dx as it ends up (null: none), the next product's operand
  float* dw = nullptr;   // (C): d/dw, added to dw with accumulate_dw, else written
  const float *dout, *x, *w, *rstd;  // (N,C), (N,C), (C), (N)
  float* scratch;                    // rmsnorm_backward_scratch(C) floats: per-block sums of dw
  int64_t n;
  int dim;
  bool accumulate_dx = true, accumulate_dw = true;
};
// dw is summed over the rows in a fixed order (per-block sums, then the blocks
// in turn): no atomics, the same bits on every run.
Status rmsnorm_backward(const RmsnormBackward& a, cudaStream_t s);
int64_t rmsnorm_backward_scratch(int C);

// --- rope.cu (twin: rope, rotate-half convention) ---------------------------
// Rotates, in place, the first `heads` heads of head_dim values in each row of x
// ([B*T, row_stride] bf16): the pair (i, i + head_dim/2) of the row for position
// pos0 + t by the angle pos * theta^(-2i/head_dim). `table` holds cos then sin:
// table[p * head_dim/2 + i] = cos, table[(max_pos + p) * head_dim/2 + i] = sin,
// for p < max_pos (rope_table fills it). inverse rotates by minus the angle (the
// backward pass).
Status rope_apply(bf16* x, int B, int T, int64_t row_stride, int heads, int head_dim, int pos0,
                  const float* table, int max_pos, bool inverse, cudaStream_t s);
// The host side of the table above, in the same float arithmetic as transformers'
// LlamaRotaryEmbedding (inv_freq in float, angle = float(pos) * inv_freq).
void rope_table_host(int head_dim, int max_pos, float theta,
                     float* table /* 2*max_pos*head_dim/2 */);

// --- swiglu.cu (twin: swiglu forward / backward) ----------------------------
// gu (N,2F): gate in columns 0..F-1, up in F..2F-1 (the fused gate/up
// projection's output). out (N,F) = silu(gate) * up.
Status swiglu_forward(bf16* out, const bf16* gu, int64_t N, int F, cudaStream_t s);
// dgu (N,2F) is WRITTEN (gate and up halves) from dout (N,F).
Status swiglu_backward(bf16* dgu, const bf16* dout, const bf16* gu, int64_t N, int F,
                       cudaStream_t s);

// --- attention.cu (twin: causal attention with grouped-query heads) ---------
// Element (b, t, head, d) of q is q[b*q_bstride + t*q_rstride + head*head_dim + d];
// likewise k, v (kv heads), out (query heads). Query t sits at position
// q_pos0 + t and sees keys 0..q_pos0+t (keys are at positions 0..Tk-1). Query
// head h reads kv head h / (heads / kv_heads). lse2[(b*heads + h)*Tq + t] is the
// log-sum-exp of the scaled scores in base 2 (for the backward pass).
struct AttentionArgs {
  int B = 0, Tq = 0, Tk = 0, heads = 0, kv_heads = 0, head_dim = 0, q_pos0 = 0;
  const bf16 *q = nullptr, *k = nullptr, *v = nullptr;
  int64_t q_bstride = 0, q_rstride = 0, kv_bstride = 0, kv_rstride = 0;
  bf16* out = nullptr;  // forward output; backward reads it
  int64_t o_bstride = 0, o_rstride = 0;
  float* lse2 = nullptr;  // [B, heads, Tq]
};
// Head sizes the fused kernels are built for.
bool attention_supports(int head_dim);
// Both passes have two implementations: fp32 arithmetic on the CUDA cores
// (kScalar), and tensor-core tiles (kTensorCore: the products as 16x16x16 bf16
// wmma with fp32 accumulation, the elementwise softmax parts in shared memory).
// kAuto picks the tensor cores unless LM_CUDA_ATTN=scalar is set.
enum class AttnImpl { kAuto, kScalar, kTensorCore };
Status attention_forward(const AttentionArgs& a, cudaStream_t s, AttnImpl impl = AttnImpl::kAuto);
// Backward for Tq == Tk, q_pos0 == 0. dout has out's strides; dq, dk, dv have
// q's, k's and v's strides (they may be the three parts of one dqkv buffer)
// and are written, not accumulated. delta is scratch [B, heads, Tq].
Status attention_backward(const AttentionArgs& a, const bf16* dout, bf16* dq, bf16* dk, bf16* dv,
                          float* delta, cudaStream_t s, AttnImpl impl = AttnImpl::kAuto);

// --- cross_entropy.cu (twin: cross-entropy over the padded vocabulary) ------
// logits (N,Vp); only columns < V count. losses (N) = logsumexp - logit[target]
// (0 where target < 0). When dlogits (N,Vp, bf16) is not null it is WRITTEN:
// dloss * (softmax - onehot) in columns < V, 0 in padding columns and in rows
// whose target is ignored. REQUIRES: targets < V.
Status cross_entropy_forward_backward(float* losses, bf16* dlogits, const float* logits,
                                      const int32_t* targets, int64_t N, int V, int Vp, float dloss,
                                      cudaStream_t s);
// The same over bf16 logits (training); dlogits may be logits itself (in place).
Status cross_entropy_forward_backward(float* losses, bf16* dlogits, const bf16* logits,
                                      const int32_t* targets, int64_t N, int V, int Vp, float dloss,
                                      cudaStream_t s);

// --- adamw.cu (twin: grad norm, adamw) --------------------------------------
// *sum (one double in device memory) = sum of x[i]^2: fp32 partial sums per
// thread and block, into `partial` (sum_squares_scratch() doubles), then added
// in a fixed order in double. No atomics: the same bits on every run.
Status sum_squares(const float* x, int64_t n, double* partial, double* sum, cudaStream_t s);
int64_t sum_squares_scratch();
// *sum = the sum of partial[0..count) (count <= sum_squares_scratch()), added
// in a fixed order in double: sum_squares' second pass, for kernels that
// leave one partial sum per block (muon_momentum).
Status sum_partials(const double* partial, int count, double* sum, cudaStream_t s);
// *acc += scale * sum of x[i], summed as sum_squares sums (the losses kept
// on the device between optimizer steps).
Status sum_accumulate(const float* x, int64_t n, double scale, double* partial, double* acc,
                      cudaStream_t s);
// AdamW as the CPU twin (torch.optim.AdamW), step t >= 1, g = grads * grad_scale:
//   p -= lr*wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
//   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// and p16 = bf16(p) when p16 is not null (the bf16 weight copy).
Status adamw_update(float* params, bf16* p16, const float* grads, float* m, float* v, int64_t n,
                    float lr, float b1, float b2, float eps, float wd, int64_t t, float grad_scale,
                    cudaStream_t s);

// --- muon.cu (twins: muon_momentum + sum_squares, ns_normalize, muon_apply) --
// Muon's momentum (cpu/muon.h): out (fp32) = the update before
// orthogonalisation, mom updated in place, and *sumsq (one double) = the sum
// of out^2, added in a fixed order through `partial` (sum_squares_scratch()
// doubles) as sum_squares adds: the same bits on every run.
Status muon_momentum(float* out, float* mom, const float* grad, int64_t n, float mu, bool nesterov,
                     float grad_scale, double* partial, double* sumsq, cudaStream_t s);
// out (bf16) = in / (sqrt(*sumsq) + eps), *sumsq read on the device.
Status ns_normalize(bf16* out, const float* in, int64_t n, const double* sumsq, float eps,
                    cudaStream_t s);
// p = p * (1 - lr * wd) - lr * scale * x (x bf16), and p16 = bf16(p) when not null.
Status muon_apply(float* p, bf16* p16, const bf16* x, int64_t n, float lr, float wd, float scale,
                  cudaStream_t s);

}  // namespace cuda
}  // namespace lm
