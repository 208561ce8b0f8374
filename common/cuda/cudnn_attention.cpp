// cudnn_attention.cpp: CudnnAttention (cudnn_attention.h) through the
// cudnn-frontend graph API: one graph per pass and shape, q, k, v, out and
// their gradients described by AttentionArgs' strides as [B, heads, T, head_dim]
// tensors (strides {batch, head_dim, row, 1}), the statistics as
// [B, heads, T, 1] floats. Without LM_HAVE_CUDNN only Create does anything:
// it says why there is no cuDNN attention.
#ifdef LM_HAVE_CUDA
#include "cuda/cudnn_attention.h"

#ifdef LM_HAVE_CUDNN
#define CUDNN_FRONTEND_SKIP_JSON_LIB 1
#include <cudnn_frontend.h>
#endif

#include <cmath>
#include <map>
#include <tuple>
#include <unordered_map>

#include "cuda/check.h"

namespace lm {
namespace cuda {

#ifdef LM_HAVE_CUDNN
static_assert(CUDNN_MAJOR >= 9, "cuDNN's fused attention needs cuDNN 9 or later");
namespace fe = cudnn_frontend;

namespace {

enum Uid : int64_t { kQ = 1, kK, kV, kO, kStats, kDO, kDQ, kDK, kDV };
enum Pass { kInference, kTrainingForward, kBackward };
// A graph is made for one pass, shape and set of strides.
using Key =
    std::tuple<int, int, int, int, int, int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>;
Key KeyOf(Pass p, const AttentionArgs& a) {
  return Key{p,           a.B,         a.Tq,         a.heads,      a.kv_heads,  a.head_dim,
             a.q_bstride, a.q_rstride, a.kv_bstride, a.kv_rstride, a.o_bstride, a.o_rstride};
}

// The first line of cuDNN's message, at most 200 characters.
Status FeError(fe::error_t e, const char* what) {
  if (e.is_good()) return Status::OK();
  std::string m = e.get_message();
  m = m.substr(0, std::min(m.find('\n'), (size_t)200));
  return Status::Invalid(std::string("cuDNN ") + what + ": " + m);
}
Status CudnnError(cudnnStatus_t st, const char* what) {
  if (st == CUDNN_STATUS_SUCCESS) return Status::OK();
  return Status::Invalid(std::string(what) + ": " + cudnnGetErrorString(st));
}

using TensorPtr = std::shared_ptr<fe::graph::Tensor_attributes>;
// [B, heads, T, head_dim] bf16 over rows `rstride` apart, batches `bstride` apart.
TensorPtr Tensor(fe::graph::Graph& g, const char* name, Uid uid, const AttentionArgs& a, int heads,
                 int64_t bstride, int64_t rstride) {
  return g.tensor(fe::graph::Tensor_attributes()
                      .set_name(name)
                      .set_uid(uid)
                      .set_dim({a.B, heads, a.Tq, a.head_dim})
                      .set_stride({bstride, a.head_dim, rstride, 1}));
}
void SetOutput(const TensorPtr& t, Uid uid, const AttentionArgs& a, int heads, int64_t bstride,
               int64_t rstride) {
  t->set_output(true)
      .set_uid(uid)
      .set_dim({a.B, heads, a.Tq, a.head_dim})
      .set_stride({bstride, a.head_dim, rstride, 1});
}
fe::graph::Tensor_attributes StatsAttributes(const AttentionArgs& a) {
  return fe::graph::Tensor_attributes()
      .set_name("stats")
      .set_uid(kStats)
      .set_data_type(fe::DataType_t::FLOAT)
      .set_dim({a.B, a.heads, a.Tq, 1})
      .set_stride({(int64_t)a.heads * a.Tq, a.Tq, 1, 1});
}

std::shared_ptr<fe::graph::Graph> NewGraph() {
  auto g = std::make_shared<fe::graph::Graph>();
  g->set_io_data_type(fe::DataType_t::BFLOAT16)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  return g;
}

float Scale(const AttentionArgs& a) {
  return 1.0f / std::sqrt((float)a.head_dim);
}

// The forward pass; with `stats`, also the statistics the backward pass reads.
std::shared_ptr<fe::graph::Graph> ForwardGraph(const AttentionArgs& a, bool stats) {
  auto g = NewGraph();
  auto q = Tensor(*g, "q", kQ, a, a.heads, a.q_bstride, a.q_rstride);
  auto k = Tensor(*g, "k", kK, a, a.kv_heads, a.kv_bstride, a.kv_rstride);
  auto v = Tensor(*g, "v", kV, a, a.kv_heads, a.kv_bstride, a.kv_rstride);
  auto opt = fe::graph::SDPA_attributes()
                 .set_name("attention")
                 .set_generate_stats(stats)
                 .set_causal_mask(true)
                 .set_attn_scale(Scale(a));
  auto [o, st] = g->sdpa(q, k, v, opt);
  SetOutput(o, kO, a, a.heads, a.o_bstride, a.o_rstride);
  if (stats) {
    fe::graph::Tensor_attributes s = StatsAttributes(a);
    st->set_output(true).set_uid(kStats).set_data_type(fe::DataType_t::FLOAT);
    st->set_dim(s.get_dim()).set_stride(s.get_stride());
  }
  return g;
}

// dq, dk, dv with the strides of q, k, v.
std::shared_ptr<fe::graph::Graph> BackwardGraph(const AttentionArgs& a) {
  auto g = NewGraph();
  auto q = Tensor(*g, "q", kQ, a, a.heads, a.q_bstride, a.q_rstride);
  auto k = Tensor(*g, "k", kK, a, a.kv_heads, a.kv_bstride, a.kv_rstride);
  auto v = Tensor(*g, "v", kV, a, a.kv_heads, a.kv_bstride, a.kv_rstride);
  auto o = Tensor(*g, "o", kO, a, a.heads, a.o_bstride, a.o_rstride);
  auto dout = Tensor(*g, "dout", kDO, a, a.heads, a.o_bstride, a.o_rstride);
  auto stats = g->tensor(StatsAttributes(a));
  auto opt = fe::graph::SDPA_backward_attributes()
                 .set_name("attention_backward")
                 .set_causal_mask(true)
                 .set_attn_scale(Scale(a))
                 .set_deterministic_algorithm(true);
  auto [dq, dk, dv] = g->sdpa_backward(q, k, v, o, dout, stats, opt);
  SetOutput(dq, kDQ, a, a.heads, a.q_bstride, a.q_rstride);
  SetOutput(dk, kDK, a, a.kv_heads, a.kv_bstride, a.kv_rstride);
  SetOutput(dv, kDV, a, a.kv_heads, a.kv_bstride, a.kv_rstride);
  return g;
}

}  // namespace

struct CudnnAttention::Impl {
  cudnnHandle_t handle = nullptr;
  cudaStream_t stream = nullptr;
  std::map<Key, std::shared_ptr<fe::graph::Graph>> graphs;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;

  ~Impl() {
    if (workspace) cudaFree(workspace);
    if (handle) cudnnDestroy(handle);
  }

  // The graph for pass p and a's shape, built on first use.
  Status Get(Pass p, const AttentionArgs& a, fe::graph::Graph** out) {
    Key key = KeyOf(p, a);
    auto it = graphs.find(key);
    if (it == graphs.end()) {
      auto g = p == kBackward ? BackwardGraph(a) : ForwardGraph(a, p == kTrainingForward);
      LM_RETURN_IF_ERROR(FeError(g->build(handle, {fe::HeurMode_t::A}),
                                 p == kBackward ? "backward graph" : "forward graph"));
      int64_t ws = 0;
      LM_RETURN_IF_ERROR(FeError(g->get_workspace_size(ws), "workspace size"));
      LM_RETURN_IF_ERROR(Reserve((size_t)ws));
      it = graphs.emplace(key, g).first;
    }
    *out = it->second.get();
    return Status::OK();
  }

  Status Reserve(size_t bytes) {
    if (bytes <= workspace_bytes) return Status::OK();
    if (workspace) LM_CUDA_RETURN(cudaFree(workspace));
    workspace = nullptr;
    workspace_bytes = 0;
    LM_CUDA_RETURN(cudaMalloc(&workspace, bytes));
    workspace_bytes = bytes;
    return Status::OK();
  }

  Status Run(fe::graph::Graph* g, std::unordered_map<int64_t, void*>& pack, const char* what) {
    LM_RETURN_IF_ERROR(FeError(g->execute(handle, pack, workspace), what));
    return CheckLaunch(what, __FILE__, __LINE__);
  }
};

Status CudnnAttention::Create(cudaStream_t stream, std::unique_ptr<CudnnAttention>* out) {
  const size_t v = cudnnGetVersion();
  if (v < 90000)
    return Status::NotFound("the cuDNN library loaded is " + std::to_string(v) +
                            ", older than 9.0");
  auto impl = std::make_unique<Impl>();
  LM_RETURN_IF_ERROR(CudnnError(cudnnCreate(&impl->handle), "cudnnCreate"));
  LM_RETURN_IF_ERROR(CudnnError(cudnnSetStream(impl->handle, stream), "cudnnSetStream"));
  impl->stream = stream;
  out->reset(new CudnnAttention(std::move(impl)));
  return Status::OK();
}

std::string CudnnAttention::Version() const {
  const size_t v = cudnnGetVersion();
  return "cuDNN " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." +
         std::to_string(v % 100);
}

Status CudnnAttention::Prepare(const AttentionArgs& a, bool training) {
  if (a.Tq != a.Tk || a.q_pos0 != 0)
    return Status::Invalid("cuDNN attention: only whole sequences (Tq == Tk, from position 0)");
  fe::graph::Graph* g = nullptr;
  LM_RETURN_IF_ERROR(impl_->Get(training ? kTrainingForward : kInference, a, &g));
  if (training) LM_RETURN_IF_ERROR(impl_->Get(kBackward, a, &g));
  return Status::OK();
}

Status CudnnAttention::Forward(const AttentionArgs& a, bool training) {
  fe::graph::Graph* g = nullptr;
  LM_RETURN_IF_ERROR(Prepare(a, training));
  LM_RETURN_IF_ERROR(impl_->Get(training ? kTrainingForward : kInference, a, &g));
  std::unordered_map<int64_t, void*> pack = {
      {kQ, (void*)a.q}, {kK, (void*)a.k}, {kV, (void*)a.v}, {kO, (void*)a.out}};
  if (training) pack[kStats] = a.lse2;
  if (ProfileOn()) ProfileBegin(impl_->stream);
  return impl_->Run(g, pack, "cudnn_attention_forward");
}

Status CudnnAttention::Backward(const AttentionArgs& a, const bf16* dout, bf16* dq, bf16* dk,
                                bf16* dv) {
  fe::graph::Graph* g = nullptr;
  LM_RETURN_IF_ERROR(impl_->Get(kBackward, a, &g));
  std::unordered_map<int64_t, void*> pack = {
      {kQ, (void*)a.q}, {kK, (void*)a.k}, {kV, (void*)a.v}, {kO, (void*)a.out}, {kDO, (void*)dout},
      {kStats, a.lse2}, {kDQ, (void*)dq}, {kDK, (void*)dk}, {kDV, (void*)dv}};
  if (ProfileOn()) ProfileBegin(impl_->stream);
  return impl_->Run(g, pack, "cudnn_attention_backward");
}

size_t CudnnAttention::workspace_bytes() const {
  return impl_->workspace_bytes;
}

#else  // no cuDNN at build time: Create says so; nothing else is reachable.

struct CudnnAttention::Impl {};

Status CudnnAttention::Create(cudaStream_t, std::unique_ptr<CudnnAttention>*) {
  return Status::NotFound(
      "this build has no cuDNN (cuDNN 9 and the cudnn-frontend headers were not found at build "
      "time)");
}
std::string CudnnAttention::Version() const {
  return "no cuDNN";
}
Status CudnnAttention::Prepare(const AttentionArgs&, bool) {
  return Status::NotFound("no cuDNN");
}
Status CudnnAttention::Forward(const AttentionArgs&, bool) {
  return Status::NotFound("no cuDNN");
}
Status CudnnAttention::Backward(const AttentionArgs&, const bf16*, bf16*, bf16*, bf16*) {
  return Status::NotFound("no cuDNN");
}
size_t CudnnAttention::workspace_bytes() const {
  return 0;
}

#endif  // LM_HAVE_CUDNN

CudnnAttention::CudnnAttention(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudnnAttention::~CudnnAttention() = default;

}  // namespace cuda
}  // namespace lm
#endif  // LM_HAVE_CUDA
