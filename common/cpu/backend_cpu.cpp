// backend_cpu.cpp: the CPU backend (fp32, OpenBLAS + OpenMP): the Backend
// interface over cpu::Model<float> plus AdamW with global-norm clipping, sharded
// over the ranks of a data-parallel run (backend.h BackendOptions::comm).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cpu/backend_cpu.h"
#include "cpu/gemm.h"
#include "cpu/model.h"
#include "cpu/muon.h"
#include "cpu/ops.h"
#include "model/shards.h"

namespace lm {

namespace {

class CpuBackend : public Backend {
 public:
  std::string Describe() const override {
    return "cpu (" + std::to_string(threads_) + (threads_ == 1 ? " thread)" : " threads)");
  }
  double PeakFlops() const override { return 0; }

  Status Init(const ModelConfig& cfg, const BackendOptions& opt) override {
    threads_ = opt.threads > 0 ? opt.threads : omp_get_num_procs();
    omp_set_num_threads(threads_);
    cpu::blas_single_threaded();  // the ops split products across OpenMP threads
    training_ = opt.training;
    int logit_rows = 0;                                  // the model's choice
    if (const char* rows = getenv("LM_CPU_LOGIT_ROWS"))  // tests: force small chunks
      if (atoi(rows) > 0) logit_rows = atoi(rows);
    LM_RETURN_IF_ERROR(model_.Init(cfg, opt.max_batch, opt.max_seq, opt.training, logit_rows));
    LM_RETURN_IF_ERROR(StartShards(opt.comm));
    const size_t n = hi_ - lo_;  // the optimizer state: this rank's shard
    m_.reset();
    v_.reset();
    step_ = 0;
    if (training_) {
      const size_t avail = cpu::AvailableMemory(), need = 2 * n * sizeof(float);
      if (avail && need > avail)
        return Status::Resource("cpu backend: the optimizer state needs " +
                                std::to_string(need >> 20) + " MiB, only " +
                                std::to_string(avail >> 20) + " MiB available");
      m_.reset((float*)std::calloc(std::max<size_t>(n, 1), sizeof(float)));
      v_.reset((float*)std::calloc(std::max<size_t>(n, 1), sizeof(float)));
      if (!m_ || !v_) return Status::Resource("cpu backend: cannot allocate the optimizer state");
      std::memset(m_.get(), 0, n * sizeof(float));  // commit the pages now
      std::memset(v_.get(), 0, n * sizeof(float));
    }
    return cpu::CheckBlasAddressSpace(threads_);
  }

  Status SetParams(const float* host) override {
    LM_RETURN_IF_ERROR(Ready());
    std::memcpy(model_.params(), host, model_.layout().total * sizeof(float));
    return Status::OK();
  }
  Status GetParams(float* host) override {
    LM_RETURN_IF_ERROR(Ready());
    std::memcpy(host, model_.params(), model_.layout().total * sizeof(float));
    return Status::OK();
  }
  Status SetOptimizerState(const float* m, const float* v, int64_t step) override {
    LM_RETURN_IF_ERROR(Trainable());
    if (step < 0) return Status::Invalid("cpu backend: negative optimizer step");
    std::memcpy(m_.get(), m, (hi_ - lo_) * sizeof(float));
    std::memcpy(v_.get(), v, (hi_ - lo_) * sizeof(float));
    step_ = step;
    return Status::OK();
  }
  Status GetOptimizerState(float* m, float* v, int64_t* step) override {
    LM_RETURN_IF_ERROR(Trainable());
    std::memcpy(m, m_.get(), (hi_ - lo_) * sizeof(float));
    std::memcpy(v, v_.get(), (hi_ - lo_) * sizeof(float));
    *step = step_;
    return Status::OK();
  }

  Status ZeroGrad() override {
    LM_RETURN_IF_ERROR(Trainable());
    model_.ZeroGrad();
    kept_sum_ = 0;
    return Status::OK();
  }
  Status ForwardBackward(const int32_t* inputs, const int32_t* targets, int B, int T,
                         float grad_scale, float* loss) override {
    UseThreads();
    LM_RETURN_IF_ERROR(Trainable());
    double l = 0;
    LM_RETURN_IF_ERROR(model_.ForwardBackward(inputs, targets, B, T, grad_scale, &l));
    if (loss) {
      *loss = (float)l;
    } else {
      kept_sum_ += (double)grad_scale * l;  // weighted as the gradients are
    }
    return Status::OK();
  }
  Status StepLoss(float* loss) override {
    LM_RETURN_IF_ERROR(Trainable());
    *loss = (float)kept_sum_;
    return Status::OK();
  }

  Status OptimizerStep(const AdamWConfig& opt, float* grad_norm, bool* skipped) override {
    UseThreads();
    LM_RETURN_IF_ERROR(Trainable());
    const ParamLayout& layout = model_.layout();
    float* g = model_.grads();
    // Several ranks: each shard's gradients summed onto its owner; the norm's
    // square summed over the shards and the kept losses over the ranks, in
    // one collective. (One rank: lo_ = 0, hi_ = total.)
    if (comm_) LM_RETURN_IF_ERROR(comm_->ReduceToOwners(g, 0, layout.total, shards_, nullptr));
    double sums[2] = {cpu::sum_squares(g + lo_, (int64_t)(hi_ - lo_)), kept_sum_};
    if (comm_) LM_RETURN_IF_ERROR(comm_->SumDoubles(sums, 2, nullptr));
    kept_sum_ = sums[1];
    const double norm = std::sqrt(sums[0]);
    *grad_norm = (float)norm;
    if (!std::isfinite(norm) || !std::isfinite(kept_sum_)) {  // leave everything as it was
      *skipped = true;
      return Status::OK();
    }
    *skipped = false;
    const float scale =
        opt.grad_clip > 0 && norm > opt.grad_clip ? (float)(opt.grad_clip / norm) : 1.0f;
    step_++;
    float* p = model_.params();
    for (const TensorInfo& t : layout.tensors) {
      if (t.offset < lo_ || t.offset >= hi_)
        continue;  // another rank's (shards hold whole tensors)
      if (opt.UsesMuon(t.group)) continue;
      const size_t o = t.offset;
      cpu::adamw_update(p + o, g + o, m_.get() + (o - lo_), v_.get() + (o - lo_), (int64_t)t.numel,
                        opt.LrFor(t.group), opt.beta1, opt.beta2, opt.eps,
                        t.decay ? opt.weight_decay : 0.0f, step_, scale);
    }
    if (opt.muon.enabled) LM_RETURN_IF_ERROR(MuonStep(opt.muon, scale));
    if (comm_) LM_RETURN_IF_ERROR(comm_->GatherFromOwners(p, 0, layout.total, shards_, nullptr));
    return Status::OK();
  }

  Status GetGrads(float* host) override {
    LM_RETURN_IF_ERROR(Trainable());
    std::memcpy(host, model_.grads(), model_.layout().total * sizeof(float));
    return Status::OK();
  }

  Status ForwardLoss(const int32_t* inputs, const int32_t* targets, int B, int T,
                     float* losses) override {
    UseThreads();
    return model_.ForwardLoss(inputs, targets, B, T, losses);
  }
  Status ForwardLogits(const int32_t* inputs, int B, int T, float* logits) override {
    UseThreads();
    return model_.ForwardLogits(inputs, B, T, logits);
  }

  Status ResetCache() override {
    LM_RETURN_IF_ERROR(Ready());
    model_.ResetCache();
    return Status::OK();
  }
  Status Decode(const int32_t* tokens, int n, float* logits) override {
    UseThreads();
    return model_.Decode(tokens, n, logits);
  }
  int CachePosition() const override { return model_.CachePosition(); }

 private:
  // Muon on every hidden matrix of this rank's shard (shards hold whole
  // tensors; its momentum is m_ there): whole matrices spread over the
  // threads, each computed by one thread alone (cpu/muon.h), so results do not
  // depend on the thread count or on which thread took which matrix.
  Status MuonStep(const MuonConfig& mc, float grad_scale) {
    const ParamLayout& layout = model_.layout();
    std::vector<const TensorInfo*> mats;
    size_t scratch = 0;
    for (const TensorInfo& t : layout.tensors)
      if (t.group == ParamGroup::kMatrix && t.offset >= lo_ && t.offset < hi_) {
        mats.push_back(&t);
        scratch = std::max(scratch, cpu::newton_schulz_scratch((int)t.rows(), (int)t.cols()));
      }
    scratch = (scratch + 15) / 16 * 16;  // each thread's part starts 64-byte aligned
    if (muon_scratch_n_ < scratch * threads_) {
      muon_scratch_n_ = scratch * threads_;
      muon_scratch_.reset((float*)std::aligned_alloc(64, muon_scratch_n_ * sizeof(float)));
      if (!muon_scratch_) {
        muon_scratch_n_ = 0;
        return Status::Resource("cpu backend: cannot allocate Muon's scratch");
      }
    }
    cpu::MuonStep s;
    s.lr = mc.lr;
    s.momentum = mc.momentum;
    s.nesterov = mc.nesterov;
    s.weight_decay = mc.weight_decay;
    s.grad_scale = grad_scale;
    s.ns_steps = mc.ns_steps;
    float* p = model_.params();
    const float* g = model_.grads();
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_)
    for (size_t i = 0; i < mats.size(); i++) {
      const TensorInfo& t = *mats[i];
      float* work = muon_scratch_.get() + scratch * (size_t)omp_get_thread_num();
      cpu::muon_update(p + t.offset, g + t.offset, m_.get() + (t.offset - lo_), (int)t.rows(),
                       (int)t.cols(), s, work);
    }
    return Status::OK();
  }

  // The thread count is per process in OpenMP: set ours again before each
  // computation in case another backend changed it.
  void UseThreads() const {
    if (omp_get_max_threads() != threads_) omp_set_num_threads(threads_);
  }
  Status Ready() const {
    return model_.params() ? Status::OK() : Status::Invalid("cpu backend: not initialised");
  }
  Status Trainable() const {
    LM_RETURN_IF_ERROR(Ready());
    if (!training_)
      return Status::Invalid("cpu backend: initialised for inference (training = false)");
    return Status::OK();
  }
  // This rank's range of the optimizer: the whole buffer without a comm of
  // several ranks; else its shard, and the comm is kept for OptimizerStep.
  Status StartShards(Comm* comm) {
    const ParamLayout& layout = model_.layout();
    comm_ = comm;
    if (comm_ && comm_->on_device())
      return Status::Invalid("cpu backend: the collectives work on device memory");
    shards_ = MakeParamShards(layout, comm_ ? comm_->size() : 1);
    lo_ = shards_.lo(comm_ ? comm_->rank() : 0);
    hi_ = shards_.hi(comm_ ? comm_->rank() : 0);
    return Status::OK();
  }
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };

  cpu::Model<float> model_;
  int threads_ = 1;
  bool training_ = false;
  std::unique_ptr<float, Free> m_, v_;  // [lo_, hi_) of the parameters
  int64_t step_ = 0;
  std::unique_ptr<float, Free> muon_scratch_;  // Muon's per-thread scratch, on first use
  size_t muon_scratch_n_ = 0;
  Comm* comm_ = nullptr;  // several ranks only
  ParamShards shards_;
  size_t lo_ = 0, hi_ = 0;
  // grad_scale x the mean loss of the micro-batches kept for StepLoss since
  // ZeroGrad; with several ranks, summed over the ranks by OptimizerStep.
  double kept_sum_ = 0;
};

}  // namespace

std::unique_ptr<Backend> NewCpuBackend() {
  return std::make_unique<CpuBackend>();
}

}  // namespace lm
