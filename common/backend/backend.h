// backend.h: the one interface behind which the model runs: the CPU backend
// (common/cpu/, fp32, the reference) and the CUDA backend (common/cuda/, bf16
// mixed precision). The trainer, lm-eval and lm-sample see only this; which
// one runs is chosen by engine/make_backend.h. Headers only: the
// implementations depend on it, never the other way round.
//
// Buffers in the calls are host memory. Token ids are int32; a target < 0 is
// ignored (no loss, no gradient). Parameters cross the interface as one flat
// fp32 buffer in ParamLayout order (model/params.h), which is also what a
// checkpoint holds, so a run can move between backends.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "backend/comm.h"
#include "model/config.h"
#include "model/params.h"
#include "util/status.h"

namespace lm {

// Muon (common/cpu/muon.h) for the hidden matrices (ParamGroup::kMatrix):
// Nesterov momentum orthogonalised by Newton-Schulz iterations.
struct MuonConfig {
  bool enabled = false;  // false: every tensor takes AdamW's update
  float lr = 0.02f;      // this step's learning rate of the matrices (scheduled)
  float momentum = 0.95f;
  bool nesterov = true;
  int ns_steps = 5;
  float weight_decay = 0;  // decoupled: W *= 1 - lr * weight_decay
};

// The optimizer's settings for one step: AdamW's, per-group learning rates,
// and Muon's when it is enabled. State across steps (Set/GetOptimizerState):
// AdamW's moments m and v for the tensors AdamW updates; for a tensor Muon
// updates, m holds its momentum buffer and v stays zero, so both optimizers
// share one layout and a tensor-aligned shard of m holds whole matrices.
struct AdamWConfig {
  float lr = 3e-4f;  // the learning rate of every AdamW tensor without its own below
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.1f;  // decoupled; only tensors with TensorInfo::decay
  float grad_clip = 1.0f;     // clip by global L2 norm; <= 0 disables
  // Learning rates of the AdamW groups (ParamGroup); a value <= 0 means lr.
  float embed_lr = 0, head_lr = 0, norm_lr = 0;
  MuonConfig muon;
  // The learning rate AdamW uses for the tensors of a group.
  float LrFor(ParamGroup group) const {
    float g = group == ParamGroup::kEmbedding ? embed_lr
              : group == ParamGroup::kHead    ? head_lr
              : group == ParamGroup::kNorm    ? norm_lr
                                              : 0.f;
    return g > 0 ? g : lr;
  }
  // Whether Muon updates the tensors of a group (else AdamW does).
  bool UsesMuon(ParamGroup group) const { return muon.enabled && group == ParamGroup::kMatrix; }
};

struct BackendOptions {
  int threads = 0;         // CPU threads (0: all cores)
  int max_batch = 1;       // largest B passed to ForwardBackward / ForwardLoss
  int max_seq = 0;         // largest T (<= context); 0 means context
  bool training = true;    // allocate gradients, optimizer state, saved activations
  bool recompute = false;  // CUDA: recompute activations in backward to save memory
  int device_index = 0;    // CUDA device
  // Data parallelism (backend/comm.h): null for one process. With a comm
  // (of any size; one rank under mpirun -np 1 runs the same collectives),
  // the optimizer is sharded as MakeParamShards(layout, comm->size()) says
  // (model/shards.h): the optimizer state calls below hold this rank's shard
  // only, and OptimizerStep works across the ranks. comm->on_device() must
  // match the backend (host memory for cpu); it outlives the backend.
  Comm* comm = nullptr;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // "cpu (2 threads)", "cuda (NVIDIA H200, sm_90)".
  virtual std::string Describe() const = 0;
  // Peak dense bf16 FLOP/s of the device for MFU, 0 when unknown (CPU: 0).
  virtual double PeakFlops() const = 0;

  // Allocates everything for `cfg`. Returns Resource when memory is short.
  virtual Status Init(const ModelConfig& cfg, const BackendOptions& opt) = 0;

  // Master weights, layout.total floats.
  virtual Status SetParams(const float* host) = 0;
  virtual Status GetParams(float* host) = 0;
  // The optimizer state of this rank's shard (AdamWConfig says what m and v
  // hold for each tensor; layout.total floats each in one process,
  // shards.count(rank) with several ranks: the state of [shards.lo(rank),
  // shards.hi(rank))) and the number of optimizer steps taken (AdamW's bias
  // correction).
  virtual Status SetOptimizerState(const float* m, const float* v, int64_t step) = 0;
  virtual Status GetOptimizerState(float* m, float* v, int64_t* step) = 0;

  // Gradients to zero (start of an accumulated batch).
  virtual Status ZeroGrad() = 0;
  // One micro-batch: inputs and targets are B x T. Computes the mean loss over
  // the non-ignored targets and accumulates grad_scale * d(mean loss)/d(params)
  // into the gradients (the trainer passes a micro-batch's share of the step's
  // targets over all ranks: 1/micro-steps on one rank). With `loss`, the mean
  // loss is written there, which makes the call wait for the device; with
  // loss == nullptr it is kept for StepLoss instead, weighted by grad_scale,
  // so that a step of many micro-batches never waits for the device before
  // its optimizer step.
  virtual Status ForwardBackward(const int32_t* inputs, const int32_t* targets, int B, int T,
                                 float grad_scale, float* loss) = 0;
  // The sum of grad_scale x mean loss over the micro-batches kept by
  // ForwardBackward(..., nullptr) since ZeroGrad, 0 when none was: the step's
  // mean loss when the grad_scales add up to 1 (the same weights as the
  // gradients'). With several ranks, OptimizerStep sums it over the ranks
  // (with the norm, in one collective): read it after OptimizerStep, where it
  // costs no wait and is the same on every rank.
  virtual Status StepLoss(float* loss) = 0;
  // Clips by global norm and applies AdamW (and Muon to the matrices when
  // opt.muon.enabled) with the step's learning rates. *grad_norm is the norm
  // before clipping. When any gradient, or a loss kept for StepLoss, is NaN or
  // Inf, leaves parameters and moments untouched, sets *skipped, and returns OK.
  // With several ranks, a collective: it first sums the gradients over the
  // ranks onto each shard's owner (the trainer's grad_scale makes the sum the
  // global mean), takes the norm over all ranks, steps this rank's shard, then
  // sends every shard's new weights to all; every rank gets the same
  // *grad_norm and *skipped.
  virtual Status OptimizerStep(const AdamWConfig& opt, float* grad_norm, bool* skipped) = 0;
  // With several ranks: the next ForwardBackward is the step's last, so its
  // backward pass may start the reduction of OptimizerStep for each layer as
  // soon as that layer's gradients are complete (CUDA: on the collectives'
  // stream, overlapped with the rest of the pass). Optional: without it, or
  // on the CPU, OptimizerStep reduces everything.
  virtual void ReduceDuringNextBackward() {}
  // Copies the gradient buffer to host (layout.total floats): for tests. This
  // rank's own, before OptimizerStep's reduction (after it, undefined outside
  // this rank's shard).
  virtual Status GetGrads(float* host) = 0;

  // Forward only: losses[b*T+t] = -log p(targets[b,t] | inputs[b,0..t]) in nats,
  // 0 where the target is ignored. Padded vocabulary rows never count.
  virtual Status ForwardLoss(const int32_t* inputs, const int32_t* targets, int B, int T,
                             float* losses) = 0;
  // Forward only, logits of every position: logits[(b*T+t)*vocab_size + v]. For tests.
  virtual Status ForwardLogits(const int32_t* inputs, int B, int T, float* logits) = 0;

  // Generation with a KV cache for one sequence. ResetCache empties it; Decode
  // appends n tokens at positions CachePosition().. and writes the logits
  // (vocab_size floats) after the last one. Appending past cfg.context is Invalid:
  // the caller decides how to slide its window.
  virtual Status ResetCache() = 0;
  virtual Status Decode(const int32_t* tokens, int n, float* logits) = 0;
  virtual int CachePosition() const = 0;
};

}  // namespace lm
