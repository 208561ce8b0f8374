// ops.h: the model's operations on the CPU, one plain function per forward and
// backward pass (llm.c's train_gpt2.c style). The CPU backend is built from
// these, and they are the reference every CUDA kernel (common/cuda/<op>.cu) is
// checked against: each CUDA twin takes the same arguments in the same order.
//
// Conventions:
// - Arrays are contiguous, row-major fp32; shapes are given inline, e.g. "out
//   (N,C)". N is the number of token positions (B*T), C the model dimension.
// - Backward functions ADD (+=) into every gradient they output (activations and
//   parameters alike), as llm.c does: callers zero a gradient buffer before its
//   first use. The exceptions are rope_backward (in place) and
//   cross_entropy_forward_backward (writes dlogits).
// - A gradient pointer may be null: that gradient is not computed.
// - Loops are OpenMP with static schedules and every reduction has a fixed
//   order, so for a given thread count results are bitwise reproducible.
//   Matrix products split their rows across the OpenMP threads by hand, each
//   block one single-threaded OpenBLAS sgemm (OpenBLAS's own threads would
//   compete with OpenMP's for the cores).
// - exp in float is cpu/vexp.h's vectorisable one (within 2.5 ulp of libm's).
// - Each function has a double-precision twin (same code, declared at the end)
//   so that tests can check gradients against finite differences in double.
#pragma once

#include <cstdint>

namespace lm {
namespace cpu {

// ---- embedding --------------------------------------------------------------
// out (N,C) = table[ids[n]] for each position; ids (N) in [0, V); table (V,C).
void embedding_forward(float* out, const int32_t* ids, const float* table, int N, int C);
// dtable (V,C) += dout (N,C) scattered to rows ids[n].
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int N, int C);

// ---- RMSNorm (transformers' LlamaRMSNorm) ----------------------------------
// out (N,C) = (x * rstd) * w, with rstd (N) = 1/sqrt(mean(x^2) + eps), saved
// for the backward pass. x (N,C), w (C).
void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int N, int C,
                     float eps);
// dx (N,C) += d/dx, dw (C) += d/dw, given dout (N,C) and the forward's x, w, rstd.
void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                      const float* rstd, int N, int C);

// ---- linear layer without bias ----------------------------------------------
// out (N,OC) = x (N,IC) W^T, with W (OC,IC) as torch stores nn.Linear weights.
// OpenBLAS sgemm, split across the OpenMP threads by rows (by columns when N is small).
void matmul_forward(float* out, const float* x, const float* w, int N, int IC, int OC);
// dx (N,IC) += dout (N,OC) W;  dw (OC,IC) += dout^T x.
void matmul_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, int N,
                     int IC, int OC);

// ---- rotary position embedding (transformers' rotate-half convention) ------
// x (B,T,nh,hd) rotated in place; token t of each sequence is at position pos0+t.
// For i < hd/2: inv_freq[i] = theta^(-2i/hd), a = pos * inv_freq[i] (both fp32,
// as transformers computes them), x1 = x[i], x2 = x[i + hd/2]:
//   x[i] = x1 cos a - x2 sin a;  x[i + hd/2] = x2 cos a + x1 sin a.
// hd must be even.
void rope_forward(float* x, int B, int T, int nh, int hd, int pos0, float theta);
// dx (B,T,nh,hd): the gradient with respect to the rotated x becomes, in place,
// the gradient with respect to the input (the inverse rotation).
void rope_backward(float* dx, int B, int T, int nh, int hd, int pos0, float theta);

// ---- causal self-attention with grouped-query heads ------------------------
// q (B,T,H,hd), k and v (B,T,KVH,hd), out (B,T,H,hd), lse (B,H,T).
// Query head h uses kv head h / (H/KVH); KVH divides H. Query t attends keys
// 0..t with softmax(q.k / sqrt(hd)); lse saves each row's log-sum-exp of the
// scaled scores so that the backward pass recomputes probabilities instead of
// storing (B,H,T,T). Exact (no approximation); parallel over (b, h).
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       int B, int T, int H, int KVH, int hd);
// dq (B,T,H,hd), dk and dv (B,T,KVH,hd) += gradients, given dout (B,T,H,hd)
// and the forward's out, lse, q, k, v. Parallel over (b, kv head).
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out,
                        const float* lse, const float* q, const float* k, const float* v, int B,
                        int T, int H, int KVH, int hd);
// Decoding with a KV cache for one sequence: q (Tq,H,hd) holds the queries of
// positions Tk-Tq .. Tk-1; kc and vc (Tk,KVH,hd) hold keys and values of
// positions 0..Tk-1 (including the new ones). Query i attends keys 0..Tk-Tq+i.
// out (Tq,H,hd). Same arithmetic as attention_forward.
void attention_forward_cached(float* out, const float* q, const float* kc, const float* vc, int Tq,
                              int Tk, int H, int KVH, int hd);

// ---- SwiGLU ------------------------------------------------------------------
// out (N,F) = silu(gate) * up, silu(g) = g / (1 + exp(-g)). gate, up (N,F).
void swiglu_forward(float* out, const float* gate, const float* up, int N, int F);
// dgate, dup (N,F) += gradients, given dout (N,F) and the forward's gate, up.
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int N, int F);

// ---- residual ------------------------------------------------------------------
// out (n) = a + b (out may alias a or b).
void residual_forward(float* out, const float* a, const float* b, int64_t n);
// da (n) += dout;  db (n) += dout.
void residual_backward(float* da, float* db, const float* dout, int64_t n);

// ---- cross-entropy over a padded vocabulary ---------------------------------
// logits (N,Vp); only the first V columns are the vocabulary, columns V..Vp-1
// are padding and never count. targets (N); a target < 0 is ignored.
// losses (N) = -log softmax(logits[n, :V])[targets[n]], 0 where ignored.
// When dlogits (N,Vp) is non-null it is WRITTEN (not added):
//   dlogits[n, :V] = dloss * (softmax - onehot(target)), 0 in padded columns and
//   in whole rows whose target is ignored. dloss is d(total loss)/d(losses[n]),
//   e.g. grad_scale / (number of counted targets). dlogits may alias logits.
// REQUIRES: targets[n] < V.
void cross_entropy_forward_backward(float* losses, float* dlogits, const float* logits,
                                    const int32_t* targets, int N, int V, int Vp, float dloss);

// ---- optimizer -----------------------------------------------------------------
// Sum of squares of x (n), accumulated in double in fixed-size chunks and summed
// in chunk order: the result does not depend on the thread count. NaN or Inf in
// x makes the result non-finite.
double sum_squares(const float* x, int64_t n);
// AdamW as torch.optim.AdamW (decoupled decay), on n parameters, step t >= 1:
//   g = grads * grad_scale (grad_scale folds in clipping)
//   p -= lr * wd * p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// wd is 0 for tensors without decay (norm weights).
void adamw_update(float* params, const float* grads, float* m, float* v, int64_t n, float lr,
                  float b1, float b2, float eps, float wd, int64_t t, float grad_scale);

// ---- double-precision twins (the same code) for finite-difference tests ----
void embedding_forward(double* out, const int32_t* ids, const double* table, int N, int C);
void embedding_backward(double* dtable, const double* dout, const int32_t* ids, int N, int C);
void rmsnorm_forward(double* out, double* rstd, const double* x, const double* w, int N, int C,
                     float eps);
void rmsnorm_backward(double* dx, double* dw, const double* dout, const double* x, const double* w,
                      const double* rstd, int N, int C);
void matmul_forward(double* out, const double* x, const double* w, int N, int IC, int OC);
void matmul_backward(double* dx, double* dw, const double* dout, const double* x, const double* w,
                     int N, int IC, int OC);
void rope_forward(double* x, int B, int T, int nh, int hd, int pos0, float theta);
void rope_backward(double* dx, int B, int T, int nh, int hd, int pos0, float theta);
void attention_forward(double* out, double* lse, const double* q, const double* k, const double* v,
                       int B, int T, int H, int KVH, int hd);
void attention_backward(double* dq, double* dk, double* dv, const double* dout, const double* out,
                        const double* lse, const double* q, const double* k, const double* v, int B,
                        int T, int H, int KVH, int hd);
void attention_forward_cached(double* out, const double* q, const double* kc, const double* vc,
                              int Tq, int Tk, int H, int KVH, int hd);
void swiglu_forward(double* out, const double* gate, const double* up, int N, int F);
void swiglu_backward(double* dgate, double* dup, const double* dout, const double* gate,
                     const double* up, int N, int F);
void residual_forward(double* out, const double* a, const double* b, int64_t n);
void residual_backward(double* da, double* db, const double* dout, int64_t n);
void cross_entropy_forward_backward(double* losses, double* dlogits, const double* logits,
                                    const int32_t* targets, int N, int V, int Vp, double dloss);

}  // namespace cpu
}  // namespace lm
