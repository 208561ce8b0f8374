// cudnn_attention.h: causal attention with grouped-query heads through cuDNN's
// fused flash attention (SDPA), forward and backward, reading q, k and v
// through AttentionArgs' strides, so straight from the fused qkv buffer. CPU
// twin: attention_forward / attention_backward in common/cpu/ops.h, the
// function the built-in kernels (attention.cu) compute too.
//
// Built with cuDNN 9 or later and the cudnn-frontend headers (LM_HAVE_CUDNN);
// otherwise Create fails, saying so, and the backend uses the built-in kernels.
// The graphs are built once per shape (slow: about a second each) and kept.
// The backward graph is cuDNN's deterministic one: two runs give the same bits.
#pragma once

#include <cuda_runtime_api.h>

#include <memory>
#include <string>

#include "cuda/kernels.h"
#include "util/status.h"

namespace lm {
namespace cuda {

class CudnnAttention {
 public:
  // A cuDNN handle working on `stream`, or the reason there is none (built
  // without cuDNN, no cuDNN 9 library at run time, no handle).
  static Status Create(cudaStream_t stream, std::unique_ptr<CudnnAttention>* out);
  ~CudnnAttention();
  CudnnAttention(const CudnnAttention&) = delete;
  CudnnAttention& operator=(const CudnnAttention&) = delete;

  // "cuDNN 9.19.0" (the library loaded at run time).
  std::string Version() const;

  // Builds, unless built already, the graphs for a's shape and strides: the
  // forward pass, and with `training` the forward pass that also writes the
  // statistics plus the backward pass. Fails with cuDNN's reason when it has no
  // engine for them (the caller then uses the built-in kernels). REQUIRES:
  // a.Tq == a.Tk, a.q_pos0 == 0.
  Status Prepare(const AttentionArgs& a, bool training);

  // a.out = attention(q, k, v). With `training`, a.lse2 (B x heads x Tq
  // floats) receives cuDNN's statistics (the natural-log log-sum-exp of each
  // query's scaled scores), which only Backward reads: they are not the
  // built-in kernels' base-2 values. Prepares the shape when needed.
  Status Forward(const AttentionArgs& a, bool training);
  // dq, dk, dv (q's, k's and v's strides; written, not accumulated) from dout
  // (out's strides), a.out and the statistics of a training Forward.
  Status Backward(const AttentionArgs& a, const bf16* dout, bf16* dq, bf16* dk, bf16* dv);

  // Device memory held for cuDNN's workspace, bytes.
  size_t workspace_bytes() const;

  struct Impl;

 private:
  explicit CudnnAttention(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cuda
}  // namespace lm
