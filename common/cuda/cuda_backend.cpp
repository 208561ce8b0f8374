// cuda_backend.cpp: the CUDA backend (backend.h) in bf16 mixed precision. fp32
// master weights, gradients and AdamW moments; a bf16 copy of the weights and
// bf16 activations feed the matrix products (cuBLASLt, fp32 accumulation); the
// residual stream and every reduction stay fp32. The CPU backend
// (common/cpu/model.cpp) is the reference this must agree with; the
// kernel-check program (tests/gpu/) compares the two.
//
// Per layer, with N = B*T rows (C = dim, F = ffn, Q = dim + 2*kv_dim):
//   xn1 = rmsnorm(x)                bf16 (N,C)      rmsnorm.cu
//   qkv = xn1 Wqkv^T, rope(q, k)    bf16 (N,Q)      matmul (q,k,v weights are adjacent), rope.cu
//   att = attention(q, k, v)        bf16 (N,C)      attention.cu (+ lse)
//   mid = x + att Wo^T              fp32 (N,C)      matmul with beta = 1 (fused residual)
//   xn2 = rmsnorm(mid)              bf16 (N,C)
//   gu  = xn2 Wgu^T                 bf16 (N,2F)     matmul (gate, up weights adjacent)
//   h   = silu(gate) * up           bf16 (N,F)      swiglu.cu
//   x'  = mid + h Wdown^T           fp32 (N,C)      matmul with beta = 1
// The loss runs over chunks of rows: logits of one chunk (bf16 when training,
// their gradient then written over them; fp32 for evaluation), cross-entropy,
// then the head's two backward products, so that all B*T*V logits never exist
// at once. With recompute, only each layer's input x
// is kept; the backward pass reruns the layer's forward first.
//
// Attention runs through cuDNN's fused flash attention (cudnn_attention.h)
// when the build has it and its graphs build for the shapes; otherwise, or
// with LM_CUDA_ATTN=own (or scalar), through the built-in kernels
// (attention.cu), which decoding with the KV cache always uses. Describe()
// says which, and why.
//
// Within an optimizer step nothing waits for the device: batches go up from
// pinned memory, the loss stays on the device until OptimizerStep reads it with
// the gradient norm, and the first micro-batch after ZeroGrad writes the
// gradients instead of adding to zeros.
//
// Data parallelism (BackendOptions::comm, NCCL): the moments cover this
// rank's shard only (model/shards.h); OptimizerStep sums the gradients onto
// their owners, steps the shard and gathers the weights. In the last
// micro-step's backward pass (ReduceDuringNextBackward) each bucket (the
// final norm and head, each layer, the embedding) is reduced on the
// collectives' stream as soon as its last gradient is written. The kept
// losses are summed over the ranks together with the norm's square, in one
// all-reduce before the step's one wait.
#ifdef LM_HAVE_CUDA
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "backend/backend.h"
#include "cuda/check.h"
#include "cuda/cuda_backend.h"
#include "cuda/cudnn_attention.h"
#include "cuda/kernels.h"
#include "cuda/matmul.h"
#include "cuda/muon_step.h"
#include "model/shards.h"
#include "util/human.h"

namespace lm {
namespace cuda {

namespace {

struct Acts {              // one layer's activations, N rows each
  float* mid = nullptr;    // (N,C) residual after attention
  float* rstd1 = nullptr;  // (N)
  float* rstd2 = nullptr;  // (N)
  bf16* xn1 = nullptr;     // (N,C)
  bf16* qkv = nullptr;     // (N,Q) after RoPE
  bf16* att = nullptr;     // (N,C)
  float* lse = nullptr;    // (B,H,T), base 2
  bf16* xn2 = nullptr;     // (N,C)
  bf16* gu = nullptr;      // (N,2F)
  bf16* h = nullptr;       // (N,F)
};

struct LayerOffsets {  // into the flat parameter buffer
  size_t ln1, qkv, o, ln2, gu, down;
};

class CudaBackend : public Backend {
 public:
  ~CudaBackend() override { Release(); }

  std::string Describe() const override {
    std::string d =
        "cuda (" + name_ + ", sm_" + std::to_string(cc_major_) + std::to_string(cc_minor_);
    if (!attn_note_.empty()) d += "; attention: " + attn_note_;
    return d + ")";
  }
  double PeakFlops() const override {
    double f = 0;
    bool ok = false;
    if (PeakFlopsFromEnv(&f, &ok)) return ok ? f : 0;
    return PeakFlopsForName(name_);
  }

  Status Probe(int device) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0)
      return Status::Resource(
          std::string("no CUDA GPU visible (") +
          (e != cudaSuccess ? cudaGetErrorString(e) : "no devices") +
          "); use --device cpu, or check the NVIDIA driver and CUDA_VISIBLE_DEVICES");
    // A scheduler that gives each rank one GPU (CUDA_VISIBLE_DEVICES) leaves
    // it device 0, whatever its local rank.
    if (device >= count && count == 1) device = 0;
    if (device < 0 || device >= count)
      return Status::Invalid("CUDA device " + std::to_string(device) + " does not exist (" +
                             std::to_string(count) + " visible)");
    cudaDeviceProp prop;
    LM_CUDA_RETURN(cudaGetDeviceProperties(&prop, device));
    name_ = prop.name;
    cc_major_ = prop.major;
    cc_minor_ = prop.minor;
    device_ = device;
    return CheckComputeCapability(name_, cc_major_, cc_minor_);
  }

  Status Init(const ModelConfig& cfg, const BackendOptions& opt) override {
    if (ready_) return Status::Invalid("cuda backend: Init called twice");
    LM_RETURN_IF_ERROR(cfg.Validate());
    LM_RETURN_IF_ERROR(Probe(opt.device_index));
    if (!attention_supports(cfg.head_dim()))
      return Status::Invalid("cuda backend: head_dim " + std::to_string(cfg.head_dim()) +
                             " is not supported (16, 32, 64 or 128); use --device cpu");
    cfg_ = cfg;
    opt_ = opt;
    B_ = opt.max_batch;
    T_ = opt.max_seq > 0 ? opt.max_seq : cfg.context;
    if (B_ <= 0) return Status::Invalid("cuda backend: max_batch must be positive");
    if (T_ > cfg.context)
      return Status::Invalid("cuda backend: sequence length " + std::to_string(T_) +
                             " exceeds the model's context " + std::to_string(cfg.context));
    if ((int64_t)B_ * T_ > INT32_MAX / 4) return Status::Invalid("cuda backend: batch too large");
    training_ = opt.training;
    recompute_ = opt.recompute && training_;
    LM_CUDA_RETURN(cudaSetDevice(device_));
    layout_ = MakeParamLayout(cfg_);
    LM_RETURN_IF_ERROR(FindOffsets());
    LM_RETURN_IF_ERROR(StartShards(opt.comm));
    LM_RETURN_IF_ERROR(PlanMemory());
    LM_CUDA_RETURN(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking));
    mm_ = std::make_unique<Matmul>();
    LM_RETURN_IF_ERROR(mm_->Init(s_));
    LM_RETURN_IF_ERROR(AllocateAll());
    LM_RETURN_IF_ERROR(InitContents());
    ChooseAttention();
    LM_CUDA_RETURN(cudaStreamSynchronize(s_));
    ready_ = true;
    return Status::OK();
  }

  Status SetParams(const float* host) override {
    LM_RETURN_IF_ERROR(Ready());
    const size_t P = layout_.total;
    LM_CUDA_RETURN(cudaMemcpyAsync(p32_, host, P * sizeof(float), cudaMemcpyHostToDevice, s_));
    LM_RETURN_IF_ERROR(f32_to_bf16(p32_, p16_, (int64_t)P, s_));
    LM_CUDA_RETURN(cudaStreamSynchronize(s_));
    return Status::OK();
  }
  Status GetParams(float* host) override {
    LM_RETURN_IF_ERROR(Ready());
    LM_CUDA_RETURN(
        cudaMemcpyAsync(host, p32_, layout_.total * sizeof(float), cudaMemcpyDeviceToHost, s_));
    LM_CUDA_RETURN(cudaStreamSynchronize(s_));
    return Status::OK();
  }
  Status SetOptimizerState(const float* m, const float* v, int64_t step) override {
    LM_RETURN_IF_ERROR(Trainable());
    if (step < 0) return Status::Invalid("cuda backend: negative optimizer step");
    const size_t bytes = (hi_ - lo_) * sizeof(float);
    LM_CUDA_RETURN(cudaMemcpyAsync(m_, m, bytes, cudaMemcpyHostToDevice, s_));
    LM_CUDA_RETURN(cudaMemcpyAsync(v_, v, bytes, cudaMemcpyHostToDevice, s_));
    LM_CUDA_RETURN(cudaStreamSynchronize(s_));
    step_ = step;
    return Status::OK();
  }
  Status GetOptimizerState(float* m, float* v, int64_t* step) override {
    LM_RETURN_IF_ERROR(Trainable());
    const size_t bytes = (hi_ - lo_) * sizeof(float);
    LM_CUDA_RETURN(cudaMemcpyAsync(m, m_, bytes, cudaMemcpyDeviceToHost, s_));
    LM_CUDA_RETURN(cudaMemcpyAsync(v, v_, bytes, cudaMemcpyDeviceToHost, s_));
    LM_CUDA_RETURN(cudaStreamSynchronize(s_));
    *step = step_;
    return Status::OK();
  }

  // The gradients are not cleared here: the first micro-batch after this
  // writes them (beta = 0 in the weight products) instead of adding to zeros.
  Status ZeroGrad() override {
    LM_RETURN_IF_ERROR(Trainable());
    grads_written_ = false;
    kept_read_ = false;
    LM_CUDA_RETURN(cudaMemsetAsync(stats_ + kKeptLoss, 0, sizeof(double), s_));
    reduced_.assign(buckets_.size(), false);
    reduce_in_backward_ = false;
    return Status::OK();
  }
  void ReduceDuringNextBackward() override { reduce_in_backward_ = comm_ != nullptr; }

  Status ForwardBackward(const int32_t* inputs, const int32_t* targets, int B, int T,
                         float grad_scale, float* loss) override {
    LM_RETURN_IF_ERROR(Trainable());
    const int64_t N = (int64_t)B * T;
    int64_t count = 0;
    for (int64_t i = 0; i < N; i++) count += targets[i] >= 0;
    LM_RETURN_IF_ERROR(Upload(inputs, targets, B, T, /*plan=*/count > 0));
    LM_RETURN_IF_ERROR(Forward(B, T, /*save=*/true));
    const float dloss = count ? (float)((double)grad_scale / (double)count) : 0.f;
    const bool first = !grads_written_;
    LM_RETURN_IF_ERROR(HeadAndLoss(B, T, dloss, /*backward=*/count > 0, first));
    if (count) {
      LM_RETURN_IF_ERROR(ReduceBucket(buckets_.size() - 1));  // final norm, head
      LM_RETURN_IF_ERROR(Backward(B, T, first));
      grads_written_ = true;
    } else {
      LM_RETURN_IF_ERROR(EnsureGradsWritten());
    }
    if (loss) {  // read now: waits for the device
      std::vector<float> l(N);
      LM_CUDA_RETURN(
          cudaMemcpyAsync(l.data(), losses_, N * sizeof(float), cudaMemcpyDeviceToHost, s_));
      LM_CUDA_RETURN(cudaStreamSynchronize(s_));
      double sum = 0;
      for (int64_t i = 0; i < N; i++) sum += l[i];
      *loss = count ? (float)(sum / (double)count) : 0.f;
      return Status::OK();
    }
    // Kept on the device: the mean loss, weighted by grad_scale, joins the
    // step's sum (OptimizerStep adds it up over the ranks).
    LM_RETURN_IF_ERROR(sum_accumulate(losses_, N, count ? (double)grad_scale / (double)count : 0.0,
                                      partial_, stats_ + kKeptLoss, s_));
    kept_read_ = false;
    return Status::OK();
  }

  Status StepLoss(float* loss) override {
    LM_RETURN_IF_ERROR(Trainable());
    if (!kept_read_) LM_RETURN_IF_ERROR(ReadStats());
    *loss = (float)host_stats_[kKeptLoss];
    return Status::OK();
  }

  Status OptimizerStep(const AdamWConfig& opt, float* grad_norm, bool* skipped) override {
    LM_RETURN_IF_ERROR(Trainable());
    LM_RETURN_IF_ERROR(EnsureGradsWritten());
    LM_RETURN_IF_ERROR(ReduceRest());
    LM_RETURN_IF_ERROR(
        sum_squares(grad_ + lo_, (int64_t)(hi_ - lo_), partial_, stats_ + kSumSquares, s_));
    if (comm_) {  // the norm's square over every rank's shard, the kept losses over the ranks
      LM_RETURN_IF_ERROR(comm_->SumDoubles(stats_, kStats, s_));
      LM_RETURN_IF_ERROR(comm_->Join(s_));
    }
    LM_RETURN_IF_ERROR(ReadStats());  // the step's one wait: the norm and the kept losses
    const double norm = std::sqrt(host_stats_[kSumSquares]);
    *grad_norm = (float)norm;
    if (!std::isfinite(norm) || !std::isfinite(host_stats_[kKeptLoss])) {
      *skipped = true;  // NaN or Inf somewhere: leave everything as it was
      return Status::OK();
    }
    *skipped = false;
    const float scale =
        opt.grad_clip > 0 && norm > opt.grad_clip ? (float)(opt.grad_clip / norm) : 1.0f;
    step_++;
    for (const Run& r : runs_) {
      if (opt.UsesMuon(r.group)) continue;
      LM_RETURN_IF_ERROR(
          adamw_update(p32_ + r.offset, p16_ + r.offset, grad_ + r.offset, m_ + (r.offset - lo_),
                       v_ + (r.offset - lo_), (int64_t)r.count, opt.LrFor(r.group), opt.beta1,
                       opt.beta2, opt.eps, r.decay ? opt.weight_decay : 0.0f, step_, scale, s_));
    }
    if (opt.muon.enabled) LM_RETURN_IF_ERROR(MuonStep(opt.muon, scale));
    if (comm_) {  // every shard's new weights to every rank, then their bf16 copy
      LM_RETURN_IF_ERROR(comm_->GatherFromOwners(p32_, 0, layout_.total, shards_, s_));
      LM_RETURN_IF_ERROR(comm_->Join(s_));
      LM_RETURN_IF_ERROR(f32_to_bf16(p32_, p16_, (int64_t)layout_.total, s_));
    }
    if (ProfileOn() && !profile_warm_) {  // the first step loads modules and plans
      LM_CUDA_RETURN(cudaStreamSynchronize(s_));
      ProfileWarmedUp();
      profile_warm_ = true;
    }
    return Status::OK();
  }

  Status GetGrads(float* host) override {
    LM_RETURN_IF_ERROR(Trainable());
    LM_RETURN_IF_ERROR(EnsureGradsWritten());
    LM_CUDA_RETURN(
        cudaMemcpyAsync(host, grad_, layout_.total * sizeof(float), cudaMemcpyDeviceToHost, s_));
    LM_CUDA_RETURN(cudaStreamSynchronize(s_));
    return Status::OK();
  }

  Status ForwardLoss(const int32_t* inputs, const int32_t* targets, int B, int T,
                     float* losses) override {
    LM_RETURN_IF_ERROR(Ready());
    LM_RETURN_IF_ERROR(Upload(inputs, targets, B, T, /*plan=*/false));
    LM_RETURN_IF_ERROR(Forward(B, T, /*save=*/false));
    LM_RETURN_IF_ERROR(HeadAndLoss(B, T, 0.f, /*backward=*/false, /*first=*/false));
    const int64_t N = (int64_t)B * T;
    LM_CUDA_RETURN(cudaMemcpyAsync(losses, losses_, N * sizeof(float), cudaMemcpyDeviceToHost, s_));
    LM_CUDA_RETURN(cudaStreamSynchronize(s_));
    return Status::OK();
  }

  Status ForwardLogits(const int32_t* inputs, int B, int T, float* logits) override {
    LM_RETURN_IF_ERROR(Ready());
    LM_RETURN_IF_ERROR(Upload(inputs, nullptr, B, T, /*plan=*/false));
    LM_RETURN_IF_ERROR(Forward(B, T, /*save=*/false));
    const int64_t N = (int64_t)B * T, C = cfg_.dim, V = cfg_.vocab_size, Vp = cfg_.padded_vocab;
    LM_RETURN_IF_ERROR(rmsnorm_forward(xnf_, rstdf_, X(cfg_.n_layers), p32_ + normf_, N, (int)C,
                                       cfg_.norm_eps, s_));
    for (int64_t r0 = 0; r0 < N; r0 += eval_rows_) {
      const int64_t R = std::min(eval_rows_, N - r0);
      LM_RETURN_IF_ERROR(
          mm_->Linear(xnf_ + r0 * C, p16_ + head_, R, C, Vp, logits_, OutType::kF32));
      LM_CUDA_RETURN(cudaMemcpy2DAsync(logits + r0 * V, V * sizeof(float), logits_,
                                       Vp * sizeof(float), V * sizeof(float), R,
                                       cudaMemcpyDeviceToHost, s_));
      LM_CUDA_RETURN(cudaStreamSynchronize(s_));  // logits_ is reused by the next chunk
    }
    return Status::OK();
  }

  Status ResetCache() override {
    LM_RETURN_IF_ERROR(Ready());
    cache_pos_ = 0;
    return Status::OK();
  }

  Status Decode(const int32_t* tokens, int n, float* logits) override {
    LM_RETURN_IF_ERROR(Ready());
    if (n <= 0) return Status::Invalid("cuda backend: Decode needs at least one token");
    if ((int64_t)cache_pos_ + n > cfg_.context)
      return Status::Invalid("cuda backend: decoding " + std::to_string(n) +
                             " tokens at position " + std::to_string(cache_pos_) +
                             " passes the context of " + std::to_string(cfg_.context));
    for (int i = 0; i < n; i++)
      if (tokens[i] < 0 || tokens[i] >= cfg_.vocab_size)
        return Status::Invalid("cuda backend: token id " + std::to_string(tokens[i]) +
                               " outside the vocabulary of " + std::to_string(cfg_.vocab_size));
    const int64_t kvd = cfg_.kv_dim(), L = cfg_.n_layers, C = cfg_.dim;
    const int64_t per_layer = (int64_t)cfg_.context * kvd;
    if (!kcache_) {
      LM_RETURN_IF_ERROR(Alloc(&kcache_, per_layer * L, "KV cache"));
      LM_RETURN_IF_ERROR(Alloc(&vcache_, per_layer * L, "KV cache"));
    }
    const int64_t rows = (int64_t)B_ * T_;
    int last = 0;
    for (int done = 0; done < n;) {
      const int m = (int)std::min<int64_t>(rows, n - done);
      LM_CUDA_RETURN(
          cudaMemcpyAsync(tok_, tokens + done, m * sizeof(int32_t), cudaMemcpyHostToDevice, s_));
      LM_RETURN_IF_ERROR(embedding_forward(X(0), tok_, p32_ + embed_, m, (int)C, s_));
      for (int l = 0; l < L; l++)
        LM_RETURN_IF_ERROR(LayerForward(l, acts_[0], X(l), X(l + 1), 1, m, cache_pos_,
                                        kcache_ + per_layer * l, vcache_ + per_layer * l));
      cache_pos_ += m;
      done += m;
      last = m - 1;
      // tok_ is rewritten by the next chunk's copy only after this chunk's
      // kernels, since both are ordered on s_.
    }
    LM_RETURN_IF_ERROR(rmsnorm_forward(xnf_, rstdf_, X(L) + (int64_t)last * C, p32_ + normf_, 1,
                                       (int)C, cfg_.norm_eps, s_));
    LM_RETURN_IF_ERROR(
        mm_->Linear(xnf_, p16_ + head_, 1, C, cfg_.padded_vocab, logits_, OutType::kF32));
    LM_CUDA_RETURN(cudaMemcpyAsync(logits, logits_, cfg_.vocab_size * sizeof(float),
                                   cudaMemcpyDeviceToHost, s_));
    LM_CUDA_RETURN(cudaStreamSynchronize(s_));
    return Status::OK();
  }
  int CachePosition() const override { return cache_pos_; }

 private:
  struct Run {
    size_t offset, count;
    bool decay;
    ParamGroup group;
  };
  // stats_: device doubles read together, once an optimizer step.
  static constexpr int kSumSquares = 0, kKeptLoss = 1, kStats = 2;

  // Muon on every hidden matrix of this rank's shard (shards hold whole
  // tensors; the momentum is m_ there), one after the other on s_ (no wait).
  Status MuonStep(const MuonConfig& mc, float grad_scale) {
    for (const TensorInfo& t : layout_.tensors) {
      if (t.group != ParamGroup::kMatrix || t.offset < lo_ || t.offset >= hi_) continue;
      const size_t o = t.offset;
      LM_RETURN_IF_ERROR(MuonStepDevice(mm_.get(), muon_, p32_ + o, p16_ + o, grad_ + o,
                                        m_ + (o - lo_), t.rows(), t.cols(), mc, grad_scale, s_));
    }
    return Status::OK();
  }

  // Device memory; while sizing_ (PlanMemory), only counted.
  template <typename P>
  Status Alloc(P** p, int64_t count, const char* what) {
    size_t bytes = (size_t)std::max<int64_t>(count, 1) * sizeof(P);
    bytes = (bytes + 255) / 256 * 256;  // as cudaMalloc rounds
    if (sizing_) {
      planned_ += bytes;
      *p = nullptr;
      return Status::OK();
    }
    void* q = nullptr;
    cudaError_t e = cudaMalloc(&q, bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free allocation error
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      return Status::Resource("cuda backend: cannot allocate " + std::to_string(bytes >> 20) +
                              " MiB for the " + what + " (" + std::to_string(allocated_ >> 20) +
                              " MiB allocated so far, " + std::to_string(free_b >> 20) +
                              " MiB free of " + std::to_string(total_b >> 20) + "); " +
                              LowerHint());
    }
    allocs_.push_back(q);
    allocated_ += bytes;
    *p = static_cast<P*>(q);
    return Status::OK();
  }

  std::string LowerHint() const {
    return training_ ? "lower --micro-batch, or use --recompute" : "use a smaller batch";
  }

  void Release() {
    if (s_) cudaStreamSynchronize(s_);
    sdpa_.reset();
    mm_.reset();  // its handles and workspace, before the stream goes
    for (void* p : allocs_) cudaFree(p);
    allocs_.clear();
    muon_ = MuonScratch();
    for (int k = 0; k < 2; k++) {
      if (pinned_[k]) cudaFreeHost(pinned_[k]);
      if (pinned_done_[k]) cudaEventDestroy(pinned_done_[k]);
      pinned_[k] = nullptr;
      pinned_done_[k] = nullptr;
    }
    if (host_stats_) cudaFreeHost(host_stats_);
    host_stats_ = nullptr;
    if (s_) cudaStreamDestroy(s_);
    s_ = nullptr;
  }

  Status Ready() const {
    return ready_ ? Status::OK() : Status::Invalid("cuda backend: not initialised");
  }
  Status Trainable() const {
    LM_RETURN_IF_ERROR(Ready());
    if (!training_)
      return Status::Invalid("cuda backend: initialised for inference (training = false)");
    return Status::OK();
  }

  // Bytes AllocateAll would take with batch B and recompute.
  Status SizeFor(int B, bool recompute, size_t* bytes) {
    const int b0 = B_;
    const bool r0 = recompute_;
    B_ = B;
    recompute_ = recompute;
    sizing_ = true;
    planned_ = 0;
    Status st = AllocateAll();
    sizing_ = false;
    B_ = b0;
    recompute_ = r0;
    *bytes = planned_;
    return st;
  }

  // Sizes every allocation before making any, so that a batch that does not
  // fit fails here, before any step, with what it needs and what lowers it;
  // then sizes the logits: in training all B*T rows of bf16 logits when they
  // fit in what is left (one chunk: the head's weight gradient is read and
  // written once), else chunks of 512 MiB. Evaluation reads the buffer as fp32
  // rows, half as many a chunk.
  Status PlanMemory() {
    size_t free_b = 0, total_b = 0;
    LM_CUDA_RETURN(cudaMemGetInfo(&free_b, &total_b));
    // Left for cuBLASLt's and cuDNN's workspaces and the libraries' own memory.
    const size_t reserve = (512ull << 20) + total_b / 50;
    const size_t budget = free_b > reserve ? free_b - reserve : 0;
    const int64_t N = (int64_t)B_ * T_, Vp = cfg_.padded_vocab;
    logit_bytes_ = (size_t)std::min<int64_t>(N, 64) * Vp * 4;
    size_t need = 0;
    LM_RETURN_IF_ERROR(SizeFor(B_, recompute_, &need));
    if (total_b > 0 && need > budget) return TooLarge(need, free_b, reserve);
    const size_t chunk = 512ull << 20, all_bf16 = (size_t)N * Vp * 2;
    if (training_ && (total_b == 0 || need - logit_bytes_ + all_bf16 <= budget))
      logit_bytes_ = all_bf16;
    else
      logit_bytes_ = std::max(logit_bytes_, std::min(chunk, (size_t)N * Vp * 4));
    train_rows_ = ChunkRows(logit_bytes_ / (Vp * 2), N);
    eval_rows_ = ChunkRows(logit_bytes_ / (Vp * 4), N);
    if (const char* rows = getenv("LM_CUDA_LOGIT_ROWS")) {  // tests: force small chunks
      if (atoll(rows) > 0) {
        train_rows_ = eval_rows_ = std::min<int64_t>(N, atoll(rows));
        logit_bytes_ = (size_t)eval_rows_ * Vp * 4;
      }
    }
    return Status::OK();
  }

  static int64_t ChunkRows(int64_t fit, int64_t N) {
    int64_t r = std::max<int64_t>(1, std::min(N, fit));
    if (r < N && r >= 64) r -= r % 64;
    return r;
  }

  // Resource: the bytes needed, what the GPU has, and the options that lower it
  // with the figures they would give.
  Status TooLarge(size_t need, size_t free_b, size_t reserve) {
    std::string m = "cuda backend: a batch of " + std::to_string(B_) + " x " + std::to_string(T_) +
                    " needs " + FormatGib((double)need) + " of GPU memory, more than the " +
                    FormatGib((double)(free_b > reserve ? free_b - reserve : 0)) + " usable on " +
                    name_ + " (" + FormatGib((double)free_b) + " free, " +
                    FormatGib((double)reserve) + " kept for cuBLAS and cuDNN); ";
    const size_t budget = free_b > reserve ? free_b - reserve : 0;
    int fits = 0;
    size_t bytes = 0;
    for (int b = B_ - 1; b >= 1 && !fits; b--) {
      LM_RETURN_IF_ERROR(SizeFor(b, recompute_, &bytes));
      if (bytes <= budget) fits = b;
    }
    const std::string batch = training_ ? "--micro-batch" : "the batch";
    m += fits ? "lower " + batch + " to " + std::to_string(fits) + " or less"
              : batch + " 1 does not fit either";
    if (training_ && !recompute_) {
      LM_RETURN_IF_ERROR(SizeFor(B_, true, &bytes));
      m += ", or use --recompute (" + FormatGib((double)bytes) + " at this batch)";
    }
    return Status::Resource(m);
  }

  Status AllocateAll() {
    const int64_t N = (int64_t)B_ * T_, C = cfg_.dim, F = cfg_.ffn_dim, H = cfg_.n_heads;
    const int64_t Q = C + 2 * (int64_t)cfg_.kv_dim();
    const size_t P = layout_.total;
    LM_RETURN_IF_ERROR(Alloc(&p32_, P, "master weights"));
    LM_RETURN_IF_ERROR(Alloc(&p16_, P, "bf16 weights"));
    if (training_) {
      LM_RETURN_IF_ERROR(Alloc(&grad_, P, "gradients"));
      const size_t S = hi_ - lo_;  // this rank's shard of the optimizer
      LM_RETURN_IF_ERROR(Alloc(&m_, S, "AdamW m"));
      LM_RETURN_IF_ERROR(Alloc(&v_, S, "AdamW v"));
      LM_RETURN_IF_ERROR(Alloc(&stats_, kStats, "norm and loss sums"));
      LM_RETURN_IF_ERROR(Alloc(&partial_, sum_squares_scratch(), "norm and loss sums"));
      LM_RETURN_IF_ERROR(AllocMuonScratch(
          layout_,
          [this](void** p, size_t bytes) {
            return Alloc(reinterpret_cast<char**>(p), (int64_t)bytes, "Muon scratch");
          },
          &muon_));
    }
    LM_RETURN_IF_ERROR(AllocateActivations());
    LM_RETURN_IF_ERROR(Alloc(&xnf_, N * C, "final norm"));
    LM_RETURN_IF_ERROR(Alloc(&rstdf_, N, "final norm"));
    LM_RETURN_IF_ERROR(Alloc(&losses_, N, "losses"));
    LM_RETURN_IF_ERROR(Alloc(&tok_, N, "tokens"));
    LM_RETURN_IF_ERROR(Alloc(&tgt_, N, "targets"));
    LM_RETURN_IF_ERROR(Alloc(&logits_, (int64_t)(logit_bytes_ / sizeof(float)), "logits"));
    if (training_) {
      LM_RETURN_IF_ERROR(Alloc(&dres_, N * C, "backward scratch"));
      LM_RETURN_IF_ERROR(Alloc(&dres16_, N * C, "backward scratch"));
      LM_RETURN_IF_ERROR(Alloc(&dxn_, N * C, "backward scratch"));
      LM_RETURN_IF_ERROR(Alloc(&dwide_, N * std::max(2 * F, Q), "backward scratch"));
      LM_RETURN_IF_ERROR(Alloc(&dnarrow_, N * std::max(F, C), "backward scratch"));
      LM_RETURN_IF_ERROR(Alloc(&delta_, N * H, "backward scratch"));
      LM_RETURN_IF_ERROR(Alloc(&norm_scratch_, rmsnorm_backward_scratch((int)C), "norm sums"));
      LM_RETURN_IF_ERROR(Alloc(&plan_, embedding_backward_plan_size(N), "embedding plan"));
    }
    return Alloc(&rope_, (int64_t)cfg_.context * cfg_.head_dim(), "rope table");
  }

  // Residual streams: every layer's input when training (the backward pass
  // needs them), else two buffers used in turn; each layer's activations, or
  // one layer's with recompute or without training.
  Status AllocateActivations() {
    const int64_t N = (int64_t)B_ * T_, C = cfg_.dim, F = cfg_.ffn_dim, H = cfg_.n_heads;
    const int64_t Q = C + 2 * (int64_t)cfg_.kv_dim();
    const int L = cfg_.n_layers;
    xs_.assign(training_ ? L + 1 : 2, nullptr);
    for (auto& x : xs_) LM_RETURN_IF_ERROR(Alloc(&x, N * C, "residual stream"));
    acts_.assign(training_ && !recompute_ ? L : 1, Acts());
    for (Acts& a : acts_) {
      LM_RETURN_IF_ERROR(Alloc(&a.mid, N * C, "activations"));
      LM_RETURN_IF_ERROR(Alloc(&a.rstd1, N, "activations"));
      LM_RETURN_IF_ERROR(Alloc(&a.rstd2, N, "activations"));
      LM_RETURN_IF_ERROR(Alloc(&a.xn1, N * C, "activations"));
      LM_RETURN_IF_ERROR(Alloc(&a.qkv, N * Q, "activations"));
      LM_RETURN_IF_ERROR(Alloc(&a.att, N * C, "activations"));
      LM_RETURN_IF_ERROR(Alloc(&a.lse, N * H, "activations"));
      LM_RETURN_IF_ERROR(Alloc(&a.xn2, N * C, "activations"));
      LM_RETURN_IF_ERROR(Alloc(&a.gu, N * 2 * F, "activations"));
      LM_RETURN_IF_ERROR(Alloc(&a.h, N * F, "activations"));
    }
    return Status::OK();
  }

  // Weights and moments zero, the rope table, the AdamW runs, and the pinned
  // host buffers batches go up from.
  Status InitContents() {
    const size_t P = layout_.total;
    LM_CUDA_RETURN(cudaMemsetAsync(p32_, 0, P * sizeof(float), s_));
    LM_CUDA_RETURN(cudaMemsetAsync(p16_, 0, P * sizeof(bf16), s_));
    if (training_) {
      LM_CUDA_RETURN(cudaMemsetAsync(m_, 0, (hi_ - lo_) * sizeof(float), s_));
      LM_CUDA_RETURN(cudaMemsetAsync(v_, 0, (hi_ - lo_) * sizeof(float), s_));
      LM_CUDA_RETURN(cudaMemsetAsync(stats_, 0, kStats * sizeof(double), s_));
    }
    std::vector<float> table((size_t)cfg_.context * cfg_.head_dim());
    rope_table_host(cfg_.head_dim(), cfg_.context, cfg_.rope_theta, table.data());
    LM_CUDA_RETURN(cudaMemcpyAsync(rope_, table.data(), table.size() * sizeof(float),
                                   cudaMemcpyHostToDevice, s_));
    // Runs of adjacent tensors of this rank's shard with the same decay flag
    // and optimizer group (learning rate, AdamW or Muon): one AdamW launch each.
    runs_.clear();
    for (const TensorInfo& t : layout_.tensors) {
      if (t.offset < lo_ || t.offset >= hi_) continue;
      if (!runs_.empty() && runs_.back().decay == t.decay && runs_.back().group == t.group &&
          runs_.back().offset + runs_.back().count == t.offset)
        runs_.back().count += t.numel;
      else
        runs_.push_back({t.offset, t.numel, t.decay, t.group});
    }
    const int64_t N = (int64_t)B_ * T_;
    for (int k = 0; k < 2; k++) {
      LM_CUDA_RETURN(cudaMallocHost((void**)&pinned_[k], (size_t)(5 * N + 1) * sizeof(int32_t)));
      LM_CUDA_RETURN(cudaEventCreateWithFlags(&pinned_done_[k], cudaEventDisableTiming));
    }
    LM_CUDA_RETURN(cudaMallocHost((void**)&host_stats_, kStats * sizeof(double)));
    return Status::OK();
  }

  // cuDNN's fused attention unless LM_CUDA_ATTN names the built-in kernels, or
  // cuDNN is missing or has no graph for the largest batch; attn_note_ says
  // which and why (Describe).
  void ChooseAttention() {
    const char* env = getenv("LM_CUDA_ATTN");
    const std::string want = env ? env : "";
    if (want == "own" || want == "scalar") {
      attn_note_ = "built-in kernels (LM_CUDA_ATTN=" + want + ")";
      return;
    }
    Status st = CudnnAttention::Create(s_, &sdpa_);
    if (st.ok()) st = sdpa_->Prepare(AttnArgs(acts_[0], B_, T_), training_);
    if (!st.ok()) {
      sdpa_.reset();
      attn_note_ = "built-in kernels, as " + st.message();
      return;
    }
    attn_note_ = sdpa_->Version() + " fused attention";
  }

  // Whether this pass's attention goes through cuDNN: when it was chosen and
  // has graphs for B x T (built now if new; on failure the built-in kernels run
  // for this shape, and Describe says so).
  bool CudnnFor(int B, int T) {
    if (!sdpa_) return false;
    Status st = sdpa_->Prepare(AttnArgs(acts_[0], B, T), training_);
    if (st.ok()) return true;
    const std::string note = "; built-in kernels for " + std::to_string(B) + " x " +
                             std::to_string(T) + ", as " + st.message();
    if (attn_note_.find(note) == std::string::npos) attn_note_ += note;
    return false;
  }

  // The norm and the kept losses to the host: the one wait of an optimizer step.
  Status ReadStats() {
    LM_CUDA_RETURN(
        cudaMemcpyAsync(host_stats_, stats_, kStats * sizeof(double), cudaMemcpyDeviceToHost, s_));
    LM_CUDA_RETURN(cudaStreamSynchronize(s_));
    kept_read_ = true;
    return Status::OK();
  }

  // Zeroes the gradients when no micro-batch has written them since ZeroGrad.
  Status EnsureGradsWritten() {
    if (grads_written_) return Status::OK();
    LM_CUDA_RETURN(cudaMemsetAsync(grad_, 0, layout_.total * sizeof(float), s_));
    grads_written_ = true;
    return Status::OK();
  }
  Status FindOffsets() {
    auto off = [&](const std::string& name, size_t* o) -> Status {
      int i = layout_.Find(name);
      if (i < 0) return Status::Invalid("cuda backend: parameter layout lacks " + name);
      *o = layout_.tensors[i].offset;
      return Status::OK();
    };
    LM_RETURN_IF_ERROR(off("model.embed_tokens.weight", &embed_));
    LM_RETURN_IF_ERROR(off("model.norm.weight", &normf_));
    if (cfg_.tied_embeddings)
      head_ = embed_;
    else
      LM_RETURN_IF_ERROR(off("lm_head.weight", &head_));
    const size_t C = cfg_.dim, kvd = cfg_.kv_dim(), F = cfg_.ffn_dim;
    layers_.resize(cfg_.n_layers);
    for (int l = 0; l < cfg_.n_layers; l++) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      LayerOffsets& o = layers_[l];
      size_t k = 0, v = 0, up = 0;
      LM_RETURN_IF_ERROR(off(p + "input_layernorm.weight", &o.ln1));
      LM_RETURN_IF_ERROR(off(p + "self_attn.q_proj.weight", &o.qkv));
      LM_RETURN_IF_ERROR(off(p + "self_attn.k_proj.weight", &k));
      LM_RETURN_IF_ERROR(off(p + "self_attn.v_proj.weight", &v));
      LM_RETURN_IF_ERROR(off(p + "self_attn.o_proj.weight", &o.o));
      LM_RETURN_IF_ERROR(off(p + "post_attention_layernorm.weight", &o.ln2));
      LM_RETURN_IF_ERROR(off(p + "mlp.gate_proj.weight", &o.gu));
      LM_RETURN_IF_ERROR(off(p + "mlp.up_proj.weight", &up));
      LM_RETURN_IF_ERROR(off(p + "mlp.down_proj.weight", &o.down));
      // The fused products rely on q, k, v (and gate, up) being adjacent rows.
      if (k != o.qkv + C * C || v != k + kvd * C || up != o.gu + F * C)
        return Status::Invalid("cuda backend: unexpected parameter layout in layer " +
                               std::to_string(l));
    }
    return Status::OK();
  }

  float* X(int l) const { return xs_[xs_.size() == 2 ? l % 2 : l]; }

  // Checks the ids, then copies them through a pinned buffer (two in turn, so
  // that filling one never waits for the copy from the other): the call returns
  // without waiting for the device. With `plan`, also the embedding backward's
  // grouping of the rows by token (embedding_backward_plan).
  Status Upload(const int32_t* inputs, const int32_t* targets, int B, int T, bool plan) {
    if (B <= 0 || T <= 0 || B > B_ || T > T_)
      return Status::Invalid("cuda backend: batch " + std::to_string(B) + " x " +
                             std::to_string(T) + " outside the initialised " + std::to_string(B_) +
                             " x " + std::to_string(T_));
    const int64_t N = (int64_t)B * T;
    for (int64_t i = 0; i < N; i++) {
      if (inputs[i] < 0 || inputs[i] >= cfg_.vocab_size)
        return Status::Invalid("cuda backend: token id " + std::to_string(inputs[i]) +
                               " outside the vocabulary of " + std::to_string(cfg_.vocab_size));
      if (targets && targets[i] >= cfg_.vocab_size)
        return Status::Invalid("cuda backend: target id " + std::to_string(targets[i]) +
                               " outside the vocabulary of " + std::to_string(cfg_.vocab_size));
    }
    const int k = pinned_slot_;
    pinned_slot_ ^= 1;
    LM_CUDA_RETURN(cudaEventSynchronize(pinned_done_[k]));  // its last copy has been made
    int32_t* h = pinned_[k];
    std::memcpy(h, inputs, N * sizeof(int32_t));
    LM_CUDA_RETURN(cudaMemcpyAsync(tok_, h, N * sizeof(int32_t), cudaMemcpyHostToDevice, s_));
    if (targets) {
      std::memcpy(h + N, targets, N * sizeof(int32_t));
      LM_CUDA_RETURN(cudaMemcpyAsync(tgt_, h + N, N * sizeof(int32_t), cudaMemcpyHostToDevice, s_));
    }
    if (plan) {
      embedding_backward_plan(inputs, N, h + 2 * N, &plan_distinct_);
      LM_CUDA_RETURN(cudaMemcpyAsync(plan_, h + 2 * N,
                                     embedding_backward_plan_size(N) * sizeof(int32_t),
                                     cudaMemcpyHostToDevice, s_));
    }
    LM_CUDA_RETURN(cudaEventRecord(pinned_done_[k], s_));
    return Status::OK();
  }

  AttentionArgs AttnArgs(const Acts& a, int B, int T) const {
    const int64_t C = cfg_.dim, kvd = cfg_.kv_dim(), Q = C + 2 * kvd;
    AttentionArgs g;
    g.B = B;
    g.Tq = g.Tk = T;
    g.heads = cfg_.n_heads;
    g.kv_heads = cfg_.n_kv_heads;
    g.head_dim = cfg_.head_dim();
    g.q = a.qkv;
    g.k = a.qkv + C;
    g.v = a.qkv + C + kvd;
    g.q_rstride = g.kv_rstride = Q;
    g.q_bstride = g.kv_bstride = (int64_t)T * Q;
    g.out = a.att;
    g.o_rstride = C;
    g.o_bstride = (int64_t)T * C;
    g.lse2 = a.lse;
    return g;
  }

  // One layer forward over B x T rows from x_in. x_out null: stop after the
  // SwiGLU (recomputation needs no more). kc/vc non-null: decoding one sequence
  // (B = 1) at positions pos0.., with keys and values appended to the cache.
  Status LayerForward(int l, const Acts& a, const float* x_in, float* x_out, int B, int T, int pos0,
                      bf16* kc, bf16* vc) {
    const LayerOffsets& w = layers_[l];
    const int64_t N = (int64_t)B * T, C = cfg_.dim, F = cfg_.ffn_dim, kvd = cfg_.kv_dim();
    const int64_t Q = C + 2 * kvd;
    LM_RETURN_IF_ERROR(
        rmsnorm_forward(a.xn1, a.rstd1, x_in, p32_ + w.ln1, N, (int)C, cfg_.norm_eps, s_));
    LM_RETURN_IF_ERROR(mm_->Linear(a.xn1, p16_ + w.qkv, N, C, Q, a.qkv, OutType::kBF16));
    LM_RETURN_IF_ERROR(rope_apply(a.qkv, B, T, Q, cfg_.n_heads + cfg_.n_kv_heads, cfg_.head_dim(),
                                  pos0, rope_, cfg_.context, false, s_));
    AttentionArgs g = AttnArgs(a, B, T);
    if (kc) {
      const size_t es = sizeof(bf16);
      LM_CUDA_RETURN(cudaMemcpy2DAsync(kc + (int64_t)pos0 * kvd, kvd * es, a.qkv + C, Q * es,
                                       kvd * es, T, cudaMemcpyDeviceToDevice, s_));
      LM_CUDA_RETURN(cudaMemcpy2DAsync(vc + (int64_t)pos0 * kvd, kvd * es, a.qkv + C + kvd, Q * es,
                                       kvd * es, T, cudaMemcpyDeviceToDevice, s_));
      g.k = kc;
      g.v = vc;
      g.kv_rstride = kvd;
      g.kv_bstride = 0;
      g.Tk = pos0 + T;
      g.q_pos0 = pos0;
      LM_RETURN_IF_ERROR(attention_forward(g, s_));
    } else if (use_cudnn_) {
      LM_RETURN_IF_ERROR(sdpa_->Forward(g, training_));
    } else {
      LM_RETURN_IF_ERROR(attention_forward(g, s_));
    }
    LM_RETURN_IF_ERROR(mm_->Linear(a.att, p16_ + w.o, N, C, C, a.mid, OutType::kF32, 1.f, x_in));
    LM_RETURN_IF_ERROR(
        rmsnorm_forward(a.xn2, a.rstd2, a.mid, p32_ + w.ln2, N, (int)C, cfg_.norm_eps, s_));
    LM_RETURN_IF_ERROR(mm_->Linear(a.xn2, p16_ + w.gu, N, C, 2 * F, a.gu, OutType::kBF16));
    LM_RETURN_IF_ERROR(swiglu_forward(a.h, a.gu, N, (int)F, s_));
    if (x_out)
      LM_RETURN_IF_ERROR(
          mm_->Linear(a.h, p16_ + w.down, N, F, C, x_out, OutType::kF32, 1.f, a.mid));
    return Status::OK();
  }

  // Embedding and every layer; the result is X(n_layers). save: keep what the
  // backward pass needs (all layers' activations, or only their inputs with
  // recompute). Chooses the attention path for the pass and its backward.
  Status Forward(int B, int T, bool save) {
    const int64_t N = (int64_t)B * T;
    use_cudnn_ = CudnnFor(B, T);
    LM_RETURN_IF_ERROR(embedding_forward(X(0), tok_, p32_ + embed_, N, cfg_.dim, s_));
    for (int l = 0; l < cfg_.n_layers; l++) {
      const Acts& a = save && acts_.size() > 1 ? acts_[l] : acts_[0];
      LM_RETURN_IF_ERROR(LayerForward(l, a, X(l), X(l + 1), B, T, 0, nullptr, nullptr));
    }
    return Status::OK();
  }

  // Final norm, then per chunk of rows: logits, losses and (backward) the head's
  // gradients and d(final norm output), then d(residual) into dres_ (and its
  // bf16 copy into dres16_). first: the first micro-batch since ZeroGrad,
  // which writes the gradients instead of adding to them.
  Status HeadAndLoss(int B, int T, float dloss, bool backward, bool first) {
    const int64_t N = (int64_t)B * T, C = cfg_.dim, Vp = cfg_.padded_vocab;
    const int L = cfg_.n_layers;
    LM_RETURN_IF_ERROR(
        rmsnorm_forward(xnf_, rstdf_, X(L), p32_ + normf_, N, (int)C, cfg_.norm_eps, s_));
    const int64_t rows = backward ? train_rows_ : eval_rows_;
    for (int64_t r0 = 0; r0 < N; r0 += rows) {
      const int64_t R = std::min(rows, N - r0);
      if (!backward) {  // evaluation keeps the logits in fp32
        LM_RETURN_IF_ERROR(
            mm_->Linear(xnf_ + r0 * C, p16_ + head_, R, C, Vp, logits_, OutType::kF32));
        LM_RETURN_IF_ERROR(cross_entropy_forward_backward(losses_ + r0, nullptr, logits_, tgt_ + r0,
                                                          R, cfg_.vocab_size, (int)Vp, 0.f, s_));
        continue;
      }
      // Training: bf16 logits in the same buffer, their gradient written over them.
      bf16* dlogits = reinterpret_cast<bf16*>(logits_);
      LM_RETURN_IF_ERROR(
          mm_->Linear(xnf_ + r0 * C, p16_ + head_, R, C, Vp, dlogits, OutType::kBF16));
      LM_RETURN_IF_ERROR(cross_entropy_forward_backward(losses_ + r0, dlogits, dlogits, tgt_ + r0,
                                                        R, cfg_.vocab_size, (int)Vp, dloss, s_));
      LM_RETURN_IF_ERROR(
          mm_->LinearBackData(dlogits, p16_ + head_, R, C, Vp, dxn_ + r0 * C, OutType::kF32));
      LM_RETURN_IF_ERROR(mm_->LinearBackWeight(dlogits, xnf_ + r0 * C, R, C, Vp, grad_ + head_,
                                               first && r0 == 0 ? 0.f : 1.f));
    }
    if (!backward) return Status::OK();
    return NormBackward(dres_, dres16_, grad_ + normf_, X(L), normf_, rstdf_, N, false, !first);
  }

  // dx (fp32, and its bf16 copy dx16 unless null) and the norm weight's
  // gradient at w_off, from dxn_ = d(norm output).
  Status NormBackward(float* dx, bf16* dx16, float* dw, const float* x, size_t w_off,
                      const float* rstd, int64_t N, bool accumulate_dx, bool accumulate_dw) {
    RmsnormBackward a(dxn_, x, p32_ + w_off, rstd, N, cfg_.dim, norm_scratch_);
    a.dx = dx;
    a.dx16 = dx16;
    a.dw = dw;
    a.accumulate_dx = accumulate_dx;
    a.accumulate_dw = accumulate_dw;
    return rmsnorm_backward(a, s_);
  }

  // From dres_ = d loss / d X(n_layers) (and dres16_, its bf16 copy) down to
  // the embedding. first: write the weight gradients instead of adding.
  Status Backward(int B, int T, bool first) {
    const int64_t N = (int64_t)B * T, C = cfg_.dim, F = cfg_.ffn_dim, kvd = cfg_.kv_dim();
    const int64_t Q = C + 2 * kvd;
    const float beta = first ? 0.f : 1.f;
    for (int l = cfg_.n_layers - 1; l >= 0; l--) {
      const LayerOffsets& w = layers_[l];
      const Acts& a = recompute_ ? acts_[0] : acts_[l];
      const float* x_in = X(l);
      if (recompute_)
        LM_RETURN_IF_ERROR(LayerForward(l, a, x_in, nullptr, B, T, 0, nullptr, nullptr));
      // MLP: x_out = mid + h Wdown^T.
      LM_RETURN_IF_ERROR(mm_->LinearBackWeight(dres16_, a.h, N, F, C, grad_ + w.down, beta));
      LM_RETURN_IF_ERROR(
          mm_->LinearBackData(dres16_, p16_ + w.down, N, F, C, dnarrow_, OutType::kBF16));
      LM_RETURN_IF_ERROR(swiglu_backward(dwide_, dnarrow_, a.gu, N, (int)F, s_));
      LM_RETURN_IF_ERROR(mm_->LinearBackWeight(dwide_, a.xn2, N, C, 2 * F, grad_ + w.gu, beta));
      LM_RETURN_IF_ERROR(
          mm_->LinearBackData(dwide_, p16_ + w.gu, N, C, 2 * F, dxn_, OutType::kF32));
      LM_RETURN_IF_ERROR(
          NormBackward(dres_, dres16_, grad_ + w.ln2, a.mid, w.ln2, a.rstd2, N, true, !first));
      // Attention: mid = x + att Wo^T.
      LM_RETURN_IF_ERROR(mm_->LinearBackWeight(dres16_, a.att, N, C, C, grad_ + w.o, beta));
      LM_RETURN_IF_ERROR(
          mm_->LinearBackData(dres16_, p16_ + w.o, N, C, C, dnarrow_, OutType::kBF16));
      AttentionArgs g = AttnArgs(a, B, T);
      if (use_cudnn_)
        LM_RETURN_IF_ERROR(sdpa_->Backward(g, dnarrow_, dwide_, dwide_ + C, dwide_ + C + kvd));
      else
        LM_RETURN_IF_ERROR(
            attention_backward(g, dnarrow_, dwide_, dwide_ + C, dwide_ + C + kvd, delta_, s_));
      LM_RETURN_IF_ERROR(rope_apply(dwide_, B, T, Q, cfg_.n_heads + cfg_.n_kv_heads,
                                    cfg_.head_dim(), 0, rope_, cfg_.context, true, s_));
      LM_RETURN_IF_ERROR(mm_->LinearBackWeight(dwide_, a.xn1, N, C, Q, grad_ + w.qkv, beta));
      LM_RETURN_IF_ERROR(mm_->LinearBackData(dwide_, p16_ + w.qkv, N, C, Q, dxn_, OutType::kF32));
      // The bf16 copy feeds the next layer down; the embedding takes fp32.
      LM_RETURN_IF_ERROR(NormBackward(dres_, l > 0 ? dres16_ : nullptr, grad_ + w.ln1, x_in, w.ln1,
                                      a.rstd1, N, true, !first));
      LM_RETURN_IF_ERROR(ReduceBucket((size_t)l + 1));  // layer l's last gradient is written
    }
    // Tied: the head's product wrote the table's gradient above; untied, the
    // rows of tokens absent from the batch must read zero.
    if (first && !cfg_.tied_embeddings)
      LM_CUDA_RETURN(
          cudaMemsetAsync(grad_ + embed_, 0, (size_t)cfg_.padded_vocab * C * sizeof(float), s_));
    LM_RETURN_IF_ERROR(
        embedding_backward(grad_ + embed_, dres_, plan_, N, plan_distinct_, cfg_.dim, s_));
    return ReduceBucket(0);
  }

  // --- data parallelism ---------------------------------------------------------
  // This rank's shard, and the buckets of the overlapped reduction in layout
  // order: the embedding, each layer, the final norm with the head.
  Status StartShards(Comm* comm) {
    comm_ = comm;
    if (comm_ && !comm_->on_device())
      return Status::Invalid("cuda backend: the collectives work on host memory (NCCL needed)");
    shards_ = MakeParamShards(layout_, comm_ ? comm_->size() : 1);
    lo_ = shards_.lo(comm_ ? comm_->rank() : 0);
    hi_ = shards_.hi(comm_ ? comm_->rank() : 0);
    buckets_.clear();
    size_t at = 0;
    for (const LayerOffsets& o : layers_) {
      buckets_.push_back({at, o.ln1});
      at = o.ln1;
    }
    buckets_.push_back({at, normf_});
    buckets_.push_back({normf_, layout_.total});
    reduced_.assign(buckets_.size(), false);
    return Status::OK();
  }
  // Bucket i, once complete in the last micro-step, to its owners.
  Status ReduceBucket(size_t i) {
    if (!reduce_in_backward_ || reduced_[i]) return Status::OK();
    reduced_[i] = true;
    return comm_->ReduceToOwners(grad_, buckets_[i].first, buckets_[i].second, shards_, s_);
  }
  // What the backward pass did not reduce, then the stream waits for it all.
  Status ReduceRest() {
    if (!comm_) return Status::OK();
    reduce_in_backward_ = false;
    for (size_t i = 0; i < buckets_.size(); i++) {
      if (reduced_[i]) continue;
      reduced_[i] = true;
      LM_RETURN_IF_ERROR(
          comm_->ReduceToOwners(grad_, buckets_[i].first, buckets_[i].second, shards_, s_));
    }
    return comm_->Join(s_);
  }

  std::string name_ = "no device";
  int cc_major_ = 0, cc_minor_ = 0, device_ = 0;
  bool ready_ = false, training_ = false, recompute_ = false;
  ModelConfig cfg_;
  BackendOptions opt_;
  ParamLayout layout_;
  int B_ = 0, T_ = 0;
  cudaStream_t s_ = nullptr;
  std::unique_ptr<Matmul> mm_;
  std::vector<void*> allocs_;
  size_t allocated_ = 0;
  bool sizing_ = false;  // Alloc counts into planned_ instead of allocating
  size_t planned_ = 0;

  size_t embed_ = 0, normf_ = 0, head_ = 0;
  std::vector<LayerOffsets> layers_;
  std::vector<Run> runs_;
  MuonScratch muon_;
  Comm* comm_ = nullptr;  // several ranks only
  ParamShards shards_;
  size_t lo_ = 0, hi_ = 0;  // this rank's shard (m_, v_ hold it)
  std::vector<std::pair<size_t, size_t>> buckets_;
  std::vector<bool> reduced_;
  bool reduce_in_backward_ = false;

  float* p32_ = nullptr;
  bf16* p16_ = nullptr;
  float *grad_ = nullptr, *m_ = nullptr, *v_ = nullptr;
  bool grads_written_ = false;    // by a micro-batch (or zeroed) since ZeroGrad
  double* stats_ = nullptr;       // kStats doubles: the gradient's sum of squares, the kept losses
  double* partial_ = nullptr;     // sum_squares_scratch() doubles
  double* host_stats_ = nullptr;  // pinned copy of stats_
  bool kept_read_ = false;        // host_stats_ is current
  int64_t step_ = 0;
  bool profile_warm_ = false;

  std::unique_ptr<CudnnAttention> sdpa_;
  std::string attn_note_;   // which attention runs and why (Describe)
  bool use_cudnn_ = false;  // this pass's attention goes through sdpa_

  std::vector<float*> xs_;
  std::vector<Acts> acts_;
  bf16* xnf_ = nullptr;
  float* rstdf_ = nullptr;
  float* losses_ = nullptr;
  int32_t *tok_ = nullptr, *tgt_ = nullptr, *plan_ = nullptr;
  int plan_distinct_ = 0;
  int32_t* pinned_[2] = {nullptr, nullptr};  // 5N + 1 ints: inputs, targets, plan
  cudaEvent_t pinned_done_[2] = {nullptr, nullptr};
  int pinned_slot_ = 0;
  size_t logit_bytes_ = 0;
  int64_t train_rows_ = 0, eval_rows_ = 0;  // logit rows a chunk: bf16 (training), fp32
  float* logits_ = nullptr;
  float *dres_ = nullptr, *dxn_ = nullptr, *delta_ = nullptr, *norm_scratch_ = nullptr;
  bf16 *dres16_ = nullptr, *dwide_ = nullptr, *dnarrow_ = nullptr;
  float* rope_ = nullptr;
  bf16 *kcache_ = nullptr, *vcache_ = nullptr;
  int cache_pos_ = 0;
};

}  // namespace
}  // namespace cuda

Status NewCudaBackend(std::unique_ptr<Backend>* out) {
  auto b = std::make_unique<cuda::CudaBackend>();
  LM_RETURN_IF_ERROR(b->Probe(0));
  *out = std::move(b);
  return Status::OK();
}

}  // namespace lm
#endif  // LM_HAVE_CUDA
