// model.cpp: LlamaForCausalLM's forward and backward passes and KV-cache
// decoding on the CPU, one op from ops.h per step (see model.h).
#include "cpu/model.h"

#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "cpu/ops.h"
#include "util/human.h"

namespace lm {
namespace cpu {

namespace {

constexpr size_t kAlign = 64;  // bytes: a cache line, and AVX-512 loads

// memset on all threads: on one, zeroing the backward pass's scratch was a
// tenth of a step's wall time with the other core idle.
template <typename T>
void Zero(T* p, size_t n) {
  constexpr size_t kChunk = 1 << 16;
  const int64_t chunks = (int64_t)((n + kChunk - 1) / kChunk);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; c++) {
    const size_t i = (size_t)c * kChunk;
    std::memset(p + i, 0, std::min(kChunk, n - i) * sizeof(T));
  }
}

}  // namespace

// Memory the kernel says a new allocation can get without swapping
// (MemAvailable), else the physical total; 0 when unknown.
size_t AvailableMemory() {
  if (FILE* f = fopen("/proc/meminfo", "r")) {
    char line[256];
    unsigned long long kb = 0;
    bool found = false;
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
        found = true;
        break;
      }
    fclose(f);
    if (found) return (size_t)kb * 1024;
  }
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? (size_t)pages * (size_t)page : 0;
}

// OpenBLAS (0.3.21, Debian's) retries a failed allocation of a thread's
// buffer forever: under `ulimit -v` the first product would hang, not fail.
// Each thread that calls sgemm gets one buffer of BUFFER_SIZE (128 MiB on
// x86-64) plus a page, and a thread costs some more (its stack): measured,
// 134 MiB for one thread and 273 MiB for two beyond what Init leaves mapped.
// Checked once a process, before any product.
Status CheckBlasAddressSpace(int threads, bool final) {
  static bool fits = false;  // once buffers exist they are in VmSize already
  if (fits) return Status::OK();
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return Status::OK();
  size_t vm_pages = 0;
  if (FILE* f = fopen("/proc/self/statm", "r")) {
    if (fscanf(f, "%zu", &vm_pages) != 1) vm_pages = 0;
    fclose(f);
  }
  if (vm_pages == 0) return Status::OK();  // unknown: let it run
  const size_t used = vm_pages * (size_t)sysconf(_SC_PAGE_SIZE);
  const size_t per_thread = 140u << 20, slack = 16u << 20;
  const size_t need = used + (size_t)threads * per_thread + slack;
  if (need > (size_t)rl.rlim_cur) {
    const size_t left = (size_t)rl.rlim_cur > used ? (size_t)rl.rlim_cur - used : 0;
    return Status::Resource(
        "cpu backend: the address-space limit (ulimit -v " +
        std::to_string((size_t)rl.rlim_cur >> 10) + ") leaves " + std::to_string(left >> 20) +
        " MiB, and OpenBLAS needs about 140 MiB for each of " + std::to_string(threads) +
        (threads == 1 ? " thread" : " threads") +
        " (without it OpenBLAS hangs): raise the limit or use fewer threads (-j, --threads)");
  }
  fits = final;
  return Status::OK();
}

template <typename T>
Model<T>::~Model() {
  std::free(arena_);
}

template <typename T>
T* Model<T>::Alloc(size_t n) {
  size_t bytes = (n * sizeof(T) + kAlign - 1) / kAlign * kAlign;
  T* p = arena_ ? (T*)((char*)arena_ + arena_used_) : nullptr;
  arena_used_ += bytes;
  return p;
}

template <typename T>
Status Model<T>::Init(const ModelConfig& cfg, int max_batch, int max_seq, bool training,
                      int logit_rows) {
  LM_RETURN_IF_ERROR(cfg.Validate());
  if (max_seq <= 0) max_seq = cfg.context;
  if (max_batch <= 0) return Status::Invalid("cpu backend: max_batch must be positive");
  if (logit_rows < 0) return Status::Invalid("cpu backend: logit_rows must not be negative");
  if (max_seq > cfg.context)
    return Status::Invalid("cpu backend: sequence length " + std::to_string(max_seq) +
                           " exceeds the model's context " + std::to_string(cfg.context));
  if ((int64_t)max_batch * max_seq > (int64_t)1 << 30)
    return Status::Invalid("cpu backend: batch too large");
  std::free(arena_);
  arena_ = nullptr;
  cfg_ = cfg;
  layout_ = MakeParamLayout(cfg);
  // Offsets of each layer's tensors in Layer's order, looked up once by name.
  layer_offsets_.clear();
  for (int l = 0; l < cfg.n_layers; l++) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (const char* name :
         {"input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
          "self_attn.v_proj.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
          "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"})
      layer_offsets_.push_back(layout_.tensors[layout_.Find(p + name)].offset);
  }
  normf_off_ = layout_.tensors[layout_.Find("model.norm.weight")].offset;
  head_off_ = cfg.tied_embeddings ? layout_.tensors[0].offset : layout_.tensors.back().offset;
  training_ = training;
  max_batch_ = max_batch;
  max_seq_ = max_seq;
  kcache_.clear();
  vcache_.clear();
  cache_pos_ = 0;

  const size_t N = (size_t)max_batch * max_seq, C = cfg.dim, F = cfg.ffn_dim;
  const size_t qd = (size_t)cfg.n_heads * cfg.head_dim(), kvd = cfg.kv_dim();
  const size_t Vp = cfg.padded_vocab, H = cfg.n_heads;
  const int nacts = training ? cfg.n_layers : 1;
  // Rows per logits chunk: about 64 MiB of logits, a multiple of 64 rows when
  // that many fit (the head's products stay large; its weight gradient is
  // read and written once a chunk).
  size_t rows = std::max<size_t>(1, ((size_t)64 << 20) / (Vp * sizeof(T)));
  if (rows >= 64) rows -= rows % 64;
  if (logit_rows > 0) rows = (size_t)logit_rows;
  logit_rows_ = (int)std::min(rows, N);
  // Two passes over the same carving: the first (arena_ null) only measures.
  for (int pass = 0; pass < 2; pass++) {
    arena_used_ = 0;
    params_ = Alloc(layout_.total);
    grads_ = training ? Alloc(layout_.total) : nullptr;
    acts_.assign(nacts, Acts{});
    for (Acts& a : acts_) {
      a.x = Alloc(N * C);
      a.ln1 = Alloc(N * C);
      a.rstd1 = Alloc(N);
      a.q = Alloc(N * qd);
      a.k = Alloc(N * kvd);
      a.v = Alloc(N * kvd);
      a.att = Alloc(N * qd);
      a.lse = Alloc(N * H);
      a.mid = Alloc(N * C);
      a.ln2 = Alloc(N * C);
      a.rstd2 = Alloc(N);
      a.gate = Alloc(N * F);
      a.up = Alloc(N * F);
      a.h = Alloc(N * F);
    }
    resid_out_ = training ? Alloc(N * C) : acts_[0].x;
    lnf_ = Alloc(N * C);
    rstdf_ = Alloc(N);
    logits_ = Alloc((size_t)logit_rows_ * Vp);
    losses_ = Alloc(N);
    if (training) {
      dres_ = Alloc(N * C);
      dln_ = Alloc(N * C);
      dq_ = Alloc(N * qd);
      dk_ = Alloc(N * kvd);
      dv_ = Alloc(N * kvd);
      datt_ = Alloc(N * qd);
      dgate_ = Alloc(N * F);
      dup_ = Alloc(N * F);
      dh_ = Alloc(N * F);
    }
    if (pass == 0) {
      arena_size_ = arena_used_;
      // Refused up front: with overcommit, malloc would succeed and the OOM
      // killer would end the process when the pages are touched.
      size_t avail = AvailableMemory();
      if (avail && arena_size_ > avail)
        return Status::Resource("cpu backend: needs " + FormatGib((double)arena_size_) + " for " +
                                cfg.Describe() + " at batch " + std::to_string(max_batch) + " x " +
                                std::to_string(max_seq) + ", but only " + FormatGib((double)avail) +
                                " is available (try a smaller batch (lm-train --micro-batch, "
                                "lm-eval --batch) or model)");
      arena_ = std::malloc(arena_size_);
      if (!arena_)
        return Status::Resource("cpu backend: cannot allocate " + FormatGib((double)arena_size_) +
                                " for " + cfg.Describe());
    }
  }
  LM_RETURN_IF_ERROR(CheckBlasAddressSpace(omp_get_max_threads(), /*final=*/false));
  // Touch everything now, so that a shortage shows at Init, not mid-run.
  Zero((char*)arena_, arena_size_);
  bytes_ = arena_size_;
  return Status::OK();
}

template <typename T>
typename Model<T>::Layer Model<T>::LayerView(T* base, int l) const {
  const size_t* o = &layer_offsets_[(size_t)l * 9];
  return Layer{base + o[0], base + o[1], base + o[2], base + o[3], base + o[4],
               base + o[5], base + o[6], base + o[7], base + o[8]};
}

template <typename T>
Status Model<T>::CheckIds(const int32_t* ids, const int32_t* targets, int B, int T_) const {
  if (!params_) return Status::Invalid("cpu backend: not initialised");
  if (B <= 0 || T_ <= 0 || B > max_batch_ || T_ > max_seq_)
    return Status::Invalid("cpu backend: batch " + std::to_string(B) + " x " + std::to_string(T_) +
                           " outside the allocated " + std::to_string(max_batch_) + " x " +
                           std::to_string(max_seq_));
  const int64_t n = (int64_t)B * T_;
  for (int64_t i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= cfg_.vocab_size)
      return Status::Invalid("cpu backend: token id " + std::to_string(ids[i]) +
                             " outside the vocabulary of " + std::to_string(cfg_.vocab_size));
    if (targets && targets[i] >= cfg_.vocab_size)
      return Status::Invalid("cpu backend: target id " + std::to_string(targets[i]) +
                             " outside the vocabulary of " + std::to_string(cfg_.vocab_size));
  }
  return Status::OK();
}

template <typename T>
void Model<T>::Forward(const int32_t* inputs, int B, int T_) {
  const ModelConfig& c = cfg_;
  const int N = B * T_, C = c.dim, F = c.ffn_dim, H = c.n_heads, KVH = c.n_kv_heads;
  const int hd = c.head_dim(), qd = H * hd, kvd = c.kv_dim();
  const T* embed = params_ + layout_.tensors[0].offset;
  const int L = c.n_layers;
  embedding_forward(acts_[0].x, inputs, embed, N, C);
  for (int l = 0; l < L; l++) {
    Acts& A = acts_[training_ ? l : 0];
    T* next = training_ ? (l + 1 < L ? acts_[l + 1].x : resid_out_) : A.x;
    const Layer P = LayerView(params_, l);
    rmsnorm_forward(A.ln1, A.rstd1, A.x, P.ln1, N, C, c.norm_eps);
    matmul_forward(A.q, A.ln1, P.wq, N, C, qd);
    matmul_forward(A.k, A.ln1, P.wk, N, C, kvd);
    matmul_forward(A.v, A.ln1, P.wv, N, C, kvd);
    rope_forward(A.q, B, T_, H, hd, 0, c.rope_theta);
    rope_forward(A.k, B, T_, KVH, hd, 0, c.rope_theta);
    attention_forward(A.att, A.lse, A.q, A.k, A.v, B, T_, H, KVH, hd);
    matmul_forward(A.mid, A.att, P.wo, N, qd, C);
    residual_forward(A.mid, A.mid, A.x, (int64_t)N * C);
    rmsnorm_forward(A.ln2, A.rstd2, A.mid, P.ln2, N, C, c.norm_eps);
    matmul_forward(A.gate, A.ln2, P.wgate, N, C, F);
    matmul_forward(A.up, A.ln2, P.wup, N, C, F);
    swiglu_forward(A.h, A.gate, A.up, N, F);
    matmul_forward(next, A.h, P.wdown, N, F, C);
    residual_forward(next, next, A.mid, (int64_t)N * C);
  }
  rmsnorm_forward(lnf_, rstdf_, resid_out_, params_ + normf_off_, N, C, c.norm_eps);
}

template <typename T>
void Model<T>::HeadLoss(const int32_t* targets, int N, T* losses, bool backward, T dloss) {
  const ModelConfig& c = cfg_;
  const int C = c.dim, V = c.vocab_size, Vp = c.padded_vocab;
  const T* head = params_ + head_off_;
  if (backward) Zero(dln_, (size_t)N * C);
  for (int r0 = 0; r0 < N; r0 += logit_rows_) {
    const int m = std::min(logit_rows_, N - r0);
    const T* x = lnf_ + (size_t)r0 * C;
    matmul_forward(logits_, x, head, m, C, Vp);
    // In backward the chunk's dlogits are written over its logits.
    cross_entropy_forward_backward(losses + r0, backward ? logits_ : (T*)nullptr, logits_,
                                   targets + r0, m, V, Vp, dloss);
    if (backward)
      matmul_backward(dln_ + (size_t)r0 * C, grads_ + head_off_, logits_, x, head, m, C, Vp);
  }
}

template <typename T>
void Model<T>::Backward(const int32_t* inputs, int B, int T_) {
  const ModelConfig& c = cfg_;
  const int N = B * T_, C = c.dim, F = c.ffn_dim, H = c.n_heads, KVH = c.n_kv_heads;
  const int hd = c.head_dim(), qd = H * hd, kvd = c.kv_dim();
  const size_t NC = (size_t)N * C;
  const T* embed = params_ + layout_.tensors[0].offset;
  T* dembed = grads_ + layout_.tensors[0].offset;
  const size_t normf = normf_off_;
  // dln_ holds d(lnf_) from HeadLoss.
  Zero(dres_, NC);
  rmsnorm_backward(dres_, grads_ + normf, dln_, resid_out_, params_ + normf, rstdf_, N, C);
  for (int l = c.n_layers - 1; l >= 0; l--) {
    const Acts& A = acts_[l];
    const Layer P = LayerView(params_, l);
    const Layer G = LayerView(grads_, l);
    // MLP: next = mid + down(silu(gate(ln2)) * up(ln2)); dres_ is d(next).
    Zero(dh_, (size_t)N * F);
    matmul_backward(dh_, G.wdown, dres_, A.h, P.wdown, N, F, C);
    Zero(dgate_, (size_t)N * F);
    Zero(dup_, (size_t)N * F);
    swiglu_backward(dgate_, dup_, dh_, A.gate, A.up, N, F);
    Zero(dln_, NC);
    matmul_backward(dln_, G.wgate, dgate_, A.ln2, P.wgate, N, C, F);
    matmul_backward(dln_, G.wup, dup_, A.ln2, P.wup, N, C, F);
    rmsnorm_backward(dres_, G.ln2, dln_, A.mid, P.ln2, A.rstd2, N, C);  // dres_ is d(mid)
    // Attention: mid = x + o(attn(rope(q(ln1)), rope(k(ln1)), v(ln1))).
    Zero(datt_, (size_t)N * qd);
    matmul_backward(datt_, G.wo, dres_, A.att, P.wo, N, qd, C);
    Zero(dq_, (size_t)N * qd);
    Zero(dk_, (size_t)N * kvd);
    Zero(dv_, (size_t)N * kvd);
    attention_backward(dq_, dk_, dv_, datt_, A.att, A.lse, A.q, A.k, A.v, B, T_, H, KVH, hd);
    rope_backward(dq_, B, T_, H, hd, 0, c.rope_theta);
    rope_backward(dk_, B, T_, KVH, hd, 0, c.rope_theta);
    Zero(dln_, NC);
    matmul_backward(dln_, G.wq, dq_, A.ln1, P.wq, N, C, qd);
    matmul_backward(dln_, G.wk, dk_, A.ln1, P.wk, N, C, kvd);
    matmul_backward(dln_, G.wv, dv_, A.ln1, P.wv, N, C, kvd);
    rmsnorm_backward(dres_, G.ln1, dln_, A.x, P.ln1, A.rstd1, N, C);  // dres_ is d(x)
  }
  embedding_backward(dembed, dres_, inputs, N, C);
  (void)embed;
}

template <typename T>
void Model<T>::ZeroGrad() {
  if (grads_) Zero(grads_, layout_.total);
}

template <typename T>
Status Model<T>::ForwardBackward(const int32_t* inputs, const int32_t* targets, int B, int T_,
                                 double grad_scale, double* loss) {
  if (!training_) return Status::Invalid("cpu backend: initialised without training buffers");
  LM_RETURN_IF_ERROR(CheckIds(inputs, targets, B, T_));
  const int N = B * T_;
  int64_t count = 0;
  for (int i = 0; i < N; i++) count += targets[i] >= 0;
  Forward(inputs, B, T_);
  const T dloss = count ? (T)(grad_scale / (double)count) : T(0);
  HeadLoss(targets, N, losses_, count > 0, dloss);
  double sum = 0;
  for (int i = 0; i < N; i++) sum += losses_[i];
  *loss = count ? sum / (double)count : 0.0;
  if (count) Backward(inputs, B, T_);
  return Status::OK();
}

template <typename T>
Status Model<T>::ForwardLoss(const int32_t* inputs, const int32_t* targets, int B, int T_,
                             T* losses) {
  LM_RETURN_IF_ERROR(CheckIds(inputs, targets, B, T_));
  Forward(inputs, B, T_);
  HeadLoss(targets, B * T_, losses, false, T(0));
  return Status::OK();
}

template <typename T>
Status Model<T>::ForwardLogits(const int32_t* inputs, int B, int T_, T* logits) {
  LM_RETURN_IF_ERROR(CheckIds(inputs, nullptr, B, T_));
  Forward(inputs, B, T_);
  const ModelConfig& c = cfg_;
  const int N = B * T_, C = c.dim, V = c.vocab_size, Vp = c.padded_vocab;
  const T* head = params_ + head_off_;
  for (int r0 = 0; r0 < N; r0 += logit_rows_) {
    const int m = std::min(logit_rows_, N - r0);
    matmul_forward(logits_, lnf_ + (size_t)r0 * C, head, m, C, Vp);
    for (int n = 0; n < m; n++)
      std::memcpy(logits + (size_t)(r0 + n) * V, logits_ + (size_t)n * Vp, (size_t)V * sizeof(T));
  }
  return Status::OK();
}

template <typename T>
Status Model<T>::Decode(const int32_t* tokens, int n, T* logits) {
  const ModelConfig& c = cfg_;
  if (!params_) return Status::Invalid("cpu backend: not initialised");
  if (n <= 0) return Status::Invalid("cpu backend: Decode needs at least one token");
  if ((int64_t)cache_pos_ + n > c.context)
    return Status::Invalid("cpu backend: decoding " + std::to_string(n) + " tokens at position " +
                           std::to_string(cache_pos_) + " passes the context of " +
                           std::to_string(c.context));
  for (int i = 0; i < n; i++)
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size)
      return Status::Invalid("cpu backend: token id " + std::to_string(tokens[i]) +
                             " outside the vocabulary of " + std::to_string(c.vocab_size));
  const int C = c.dim, F = c.ffn_dim, H = c.n_heads, KVH = c.n_kv_heads;
  const int hd = c.head_dim(), qd = H * hd, kvd = c.kv_dim(), L = c.n_layers;
  const size_t per_layer = (size_t)c.context * kvd;
  if (kcache_.empty()) {
    try {
      kcache_.assign(per_layer * L, T(0));
      vcache_.assign(per_layer * L, T(0));
    } catch (const std::bad_alloc&) {
      kcache_.clear();
      vcache_.clear();
      return Status::Resource("cpu backend: cannot allocate the KV cache");
    }
  }
  const T* embed = params_ + layout_.tensors[0].offset;
  Acts& A = acts_[0];
  const int rows = max_batch_ * max_seq_;
  int last = 0;
  for (int done = 0; done < n;) {
    const int m = std::min(rows, n - done);
    const int p0 = cache_pos_;
    embedding_forward(A.x, tokens + done, embed, m, C);
    for (int l = 0; l < L; l++) {
      const Layer P = LayerView(params_, l);
      T* kc = kcache_.data() + per_layer * l;
      T* vc = vcache_.data() + per_layer * l;
      rmsnorm_forward(A.ln1, A.rstd1, A.x, P.ln1, m, C, c.norm_eps);
      matmul_forward(A.q, A.ln1, P.wq, m, C, qd);
      matmul_forward(kc + (size_t)p0 * kvd, A.ln1, P.wk, m, C, kvd);
      matmul_forward(vc + (size_t)p0 * kvd, A.ln1, P.wv, m, C, kvd);
      rope_forward(A.q, 1, m, H, hd, p0, c.rope_theta);
      rope_forward(kc + (size_t)p0 * kvd, 1, m, KVH, hd, p0, c.rope_theta);
      attention_forward_cached(A.att, A.q, kc, vc, m, p0 + m, H, KVH, hd);
      matmul_forward(A.mid, A.att, P.wo, m, qd, C);
      residual_forward(A.mid, A.mid, A.x, (int64_t)m * C);
      rmsnorm_forward(A.ln2, A.rstd2, A.mid, P.ln2, m, C, c.norm_eps);
      matmul_forward(A.gate, A.ln2, P.wgate, m, C, F);
      matmul_forward(A.up, A.ln2, P.wup, m, C, F);
      swiglu_forward(A.h, A.gate, A.up, m, F);
      matmul_forward(A.x, A.h, P.wdown, m, F, C);
      residual_forward(A.x, A.x, A.mid, (int64_t)m * C);
    }
    cache_pos_ += m;
    done += m;
    last = m - 1;
  }
  rmsnorm_forward(lnf_, rstdf_, A.x + (size_t)last * C, params_ + normf_off_, 1, C, c.norm_eps);
  matmul_forward(logits_, lnf_, params_ + head_off_, 1, C, c.padded_vocab);
  std::memcpy(logits, logits_, (size_t)c.vocab_size * sizeof(T));
  return Status::OK();
}

template class Model<float>;
template class Model<double>;

}  // namespace cpu
}  // namespace lm
