// model.h: the transformer (transformers' LlamaForCausalLM) on the CPU, built
// from the ops in ops.h. A template so that the float model, which the CPU
// backend runs, has a double twin computing the same thing for the
// finite-difference gradient tests. Not a public interface: tools use
// backend/backend.h.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "model/config.h"
#include "model/params.h"
#include "util/status.h"

namespace lm {
namespace cpu {

// Bytes a new allocation can get without swapping (/proc/meminfo MemAvailable,
// else the physical total); 0 when unknown.
size_t AvailableMemory();
// Under an address-space limit (ulimit -v), whether OpenBLAS's buffers for
// `threads` threads still fit: an error saying what to change when not. Once
// a check with `final` set passes, later calls pass: the buffers are mapped by
// then. Model::Init checks before its first parallel region (libgomp exits
// the process when it cannot map a thread's stack); the backend checks again,
// with `final`, once all its memory is allocated.
Status CheckBlasAddressSpace(int threads, bool final = true);

template <typename T>
class Model {
 public:
  Model() = default;
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // Allocates parameters, activations for max_batch x max_seq positions and,
  // when training, gradients and the activations kept for the backward pass.
  // Resource when the memory is not there. The head and the loss run over
  // chunks of logit_rows positions so that the logits of all positions never
  // exist at once; 0 picks the chunk (logits of about 64 MiB, whole rows).
  Status Init(const ModelConfig& cfg, int max_batch, int max_seq, bool training,
              int logit_rows = 0);

  const ModelConfig& config() const { return cfg_; }
  const ParamLayout& layout() const { return layout_; }
  T* params() { return params_; }
  const T* params() const { return params_; }
  T* grads() { return grads_; }  // null unless training
  int max_batch() const { return max_batch_; }
  int max_seq() const { return max_seq_; }
  int logit_rows() const { return logit_rows_; }
  // Bytes held by this model.
  size_t bytes() const { return bytes_; }

  void ZeroGrad();
  // Mean loss over counted targets into *loss; adds grad_scale * its gradient.
  Status ForwardBackward(const int32_t* inputs, const int32_t* targets, int B, int T_,
                         double grad_scale, double* loss);
  Status ForwardLoss(const int32_t* inputs, const int32_t* targets, int B, int T_, T* losses);
  // logits[(b*T+t)*vocab_size + v].
  Status ForwardLogits(const int32_t* inputs, int B, int T_, T* logits);

  void ResetCache() { cache_pos_ = 0; }
  Status Decode(const int32_t* tokens, int n, T* logits);
  int CachePosition() const { return cache_pos_; }

 private:
  struct Layer {  // views into the parameter (or gradient) buffer
    T *ln1, *wq, *wk, *wv, *wo, *ln2, *wgate, *wup, *wdown;
  };
  struct Acts {  // one layer's saved activations, (N, ...) each
    T* x;        // residual stream entering the layer (N,C)
    T *ln1, *rstd1;
    T *q, *k, *v;  // after RoPE
    T *att, *lse;
    T* mid;  // residual stream after attention (N,C)
    T *ln2, *rstd2;
    T *gate, *up, *h;
  };

  Status CheckIds(const int32_t* ids, const int32_t* targets, int B, int T_) const;
  Layer LayerView(T* base, int l) const;
  // Runs the layers and the final norm over B x T positions; the result is in lnf_.
  void Forward(const int32_t* inputs, int B, int T_);
  // The head and the loss over N positions, logit_rows_ at a time: losses (N)
  // as cross_entropy_forward_backward writes them; when backward, also the
  // head's gradient and d(lnf_) into dln_ (zeroed first), with dloss as there.
  void HeadLoss(const int32_t* targets, int N, T* losses, bool backward, T dloss);
  // From dln_ = d(loss)/d(lnf_) down to the embedding.
  void Backward(const int32_t* inputs, int B, int T_);
  T* Alloc(size_t n);

  ModelConfig cfg_;
  ParamLayout layout_;
  std::vector<size_t> layer_offsets_;    // 9 per layer, in Layer's order
  size_t normf_off_ = 0, head_off_ = 0;  // final norm, head: looked up once, not per call
  bool training_ = false;
  int max_batch_ = 0, max_seq_ = 0, logit_rows_ = 0;
  size_t bytes_ = 0;

  // One allocation, carved into the buffers below.
  void* arena_ = nullptr;
  size_t arena_used_ = 0, arena_size_ = 0;

  T* params_ = nullptr;
  T* grads_ = nullptr;
  std::vector<Acts> acts_;  // n_layers when training, else one reused by every layer
  T* resid_out_ = nullptr;  // residual stream after the last layer (N,C)
  T *lnf_ = nullptr, *rstdf_ = nullptr;
  T* logits_ = nullptr;  // (logit_rows_,Vp): one chunk, overwritten by its dlogits in backward
  T* losses_ = nullptr;  // (N)
  // Backward scratch.
  T *dres_ = nullptr, *dln_ = nullptr, *dq_ = nullptr, *dk_ = nullptr, *dv_ = nullptr,
    *datt_ = nullptr, *dgate_ = nullptr, *dup_ = nullptr, *dh_ = nullptr;
  // KV cache for Decode: (n_layers, context, kv_dim) each, allocated on first use.
  std::vector<T> kcache_, vcache_;
  int cache_pos_ = 0;
};

extern template class Model<float>;
extern template class Model<double>;

}  // namespace cpu
}  // namespace lm
