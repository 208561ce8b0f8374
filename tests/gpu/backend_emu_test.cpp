// backend_emu_test.cpp: the whole CUDA backend (common/cuda/cuda_backend.cpp,
// its kernels and the row-major matmul helpers) run on the CPU, against the CPU
// backend, on small models. The kernels run through tests/gpu/emu.h; the CUDA
// runtime calls the backend makes are served from host memory below, and
// cuBLAS(Lt) is replaced by a host GEMM with cuBLAS's column-major contract
// (bf16 operands, fp32 accumulation and output rounding), so this checks the
// backend's orchestration (parameter offsets, the fused qkv and gate/up
// products, their transposes, the chunked loss, recomputation, the KV cache, the
// data-parallel step over ranks run as threads) on machines without a GPU.
// bin/lm-kernel-check does the same on a device.
#define LM_EMU_RUNTIME 1  // launches go through check.cpp and profile.cpp
#include "emu.h"

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

// The backend, its helpers and kernels, compiled as C++.
#include "common/cuda/adamw.cu"
#include "common/cuda/attention.cu"
#include "common/cuda/check.cpp"
#include "common/cuda/convert.cu"
#include "common/cuda/cross_entropy.cu"
#include "common/cuda/cuda_backend.cpp"
#include "common/cuda/device_info.cpp"
#include "common/cuda/embedding.cu"
#include "common/cuda/matmul.cpp"
#include "common/cuda/muon.cu"
#include "common/cuda/muon_step.cpp"
#include "common/cuda/profile.cpp"
#include "common/cuda/rmsnorm.cu"
#include "common/cuda/rope.cu"
#include "common/cuda/swiglu.cu"

#include <random>
#include <string>
#include <vector>

#include "cpu/backend_cpu.h"
#include "cpu/muon.h"
#include "cpu/ops.h"
#include "cuda/cuda_backend.h"
#include "cuda/cudnn_attention.h"
#include "model/config.h"
#include "model/params.h"
#include "model/shards.h"
#include "tests/thread_barrier.h"
#include "tests/unit/test.h"

// --- the CUDA runtime, in host memory ------------------------------------------------
namespace {
std::map<void*, size_t>& DeviceAllocs() {
  static std::map<void*, size_t> allocs;
  return allocs;
}
size_t DeviceLen(size_t n) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  return n == 0 ? page : (n + page - 1) / page * page;
}
void DeviceAccess(bool open) {
  for (const auto& [p, len] : DeviceAllocs())
    if (mprotect(p, len, open ? PROT_READ | PROT_WRITE : PROT_NONE) != 0) abort();
}
// Installed before main, so the first allocation is already closed to the host.
const bool kDeviceAccessHook = (lm_emu::g_device_access = DeviceAccess, true);
}  // namespace

extern "C" {
cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
// The emulated device's compute capability and memory; tests change them.
int g_cc_major = 9, g_cc_minor = 0;
size_t g_free_bytes = 8ull << 30, g_total_bytes = 16ull << 30;
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int) {
  memset(p, 0, sizeof(*p));
  strcpy(p->name, "Emulated GPU");
  p->major = g_cc_major;
  p->minor = g_cc_minor;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int) {
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = reinterpret_cast<cudaStream_t>(0x1);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t) {
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) {
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) {
  return cudaSuccess;
}
// Device memory lives in its own mappings, inaccessible to the host outside
// emulated device operations (lm_emu::DeviceScope): a host dereference of a
// device pointer faults, as on a GPU.
cudaError_t cudaMalloc(void** p, size_t n) {
  size_t len = DeviceLen(n);
  void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return cudaErrorMemoryAllocation;
  memset(m, 0xFF, len);  // fresh allocations hold garbage, as on a device: NaN bytes
  if (lm_emu::g_device_depth == 0) mprotect(m, len, PROT_NONE);
  DeviceAllocs()[m] = len;
  *p = m;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  auto it = DeviceAllocs().find(p);
  if (it == DeviceAllocs().end()) return cudaErrorInvalidValue;
  munmap(p, it->second);
  DeviceAllocs().erase(it);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* d, const void* s, size_t n, cudaMemcpyKind) {
  lm_emu::DeviceScope device;
  memcpy(d, s, n);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind, cudaStream_t) {
  lm_emu::DeviceScope device;
  memcpy(d, s, n);
  return cudaSuccess;
}
cudaError_t cudaMemcpy2DAsync(void* d, size_t dp, const void* s, size_t sp, size_t w, size_t h,
                              cudaMemcpyKind, cudaStream_t) {
  if (w > dp || w > sp) return cudaErrorInvalidPitchValue;
  lm_emu::DeviceScope device;
  for (size_t r = 0; r < h; r++) memcpy((char*)d + r * dp, (const char*)s + r * sp, w);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t) {
  lm_emu::DeviceScope device;
  memset(p, v, n);
  return cudaSuccess;
}
cudaError_t cudaGetLastError(void) {
  return cudaSuccess;
}
const char* cudaGetErrorString(cudaError_t) {
  return "emulated error";
}
cudaError_t cudaMemGetInfo(size_t* f, size_t* t) {
  *f = g_free_bytes;
  *t = g_total_bytes;
  return cudaSuccess;
}
// Pinned host memory is host memory.
cudaError_t cudaMallocHost(void** p, size_t n) {
  *p = malloc(n ? n : 1);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFreeHost(void* p) {
  free(p);
  return cudaSuccess;
}
// Events: the emulator runs each operation to completion before returning, so
// an event is the host's clock when it was recorded.
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = reinterpret_cast<cudaEvent_t>(new double(0));
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) {
  return cudaEventCreate(e);
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete reinterpret_cast<double*>(e);
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  *reinterpret_cast<double*>(e) = ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) {
  return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  *ms = (float)(*reinterpret_cast<double*>(b) - *reinterpret_cast<double*>(a));
  return cudaSuccess;
}
}

// --- cuBLAS(Lt)'s contract on the host ----------------------------------------------------
namespace lm {
namespace cuda {
Matmul::~Matmul() {}
Status Matmul::Init(cudaStream_t stream, size_t) {
  stream_ = stream;
  const char* f = getenv("LM_CUDA_GEMMEX");
  force_fallback_ = f && f[0] == '1';
  return Status::OK();
}
// LM_CUDA_GEMMEX=1 counts every product as a fallback, as the real one does,
// so that the profile's naming of fallbacks can be checked.
Status Matmul::Run(const Gemm& g) {
  lm_emu::DeviceScope device;
  if (force_fallback_) fallbacks_++;
  if (g.m < 0 || g.n < 0 || g.k < 0) return Status::Invalid("matmul: negative dimension");
  if (g.lda < (g.ta ? g.k : g.m) || g.ldb < (g.tb ? g.n : g.k) || g.ldc < g.m)
    return Status::Invalid("matmul: leading dimension too small");
  if (g.beta != 0.f && !g.C) return Status::Invalid("matmul: beta without C");
  const bf16* A = static_cast<const bf16*>(g.A);
  const bf16* B = static_cast<const bf16*>(g.B);
  for (int64_t j = 0; j < g.n; j++)
    for (int64_t i = 0; i < g.m; i++) {
      float acc = 0.f;
      for (int64_t l = 0; l < g.k; l++) {
        float a = __bfloat162float(g.ta ? A[l + i * g.lda] : A[i + l * g.lda]);
        float b = __bfloat162float(g.tb ? B[j + l * g.ldb] : B[l + j * g.ldb]);
        acc += a * b;
      }
      const int64_t o = i + j * g.ldc;
      if (g.out == OutType::kF32) {
        float c = g.beta != 0.f ? static_cast<const float*>(g.C)[o] : 0.f;
        static_cast<float*>(g.D)[o] = g.alpha * acc + g.beta * c;
      } else {
        float c = g.beta != 0.f ? __bfloat162float(static_cast<const bf16*>(g.C)[o]) : 0.f;
        static_cast<bf16*>(g.D)[o] = __float2bfloat16(g.alpha * acc + g.beta * c);
      }
    }
  return Status::OK();
}
}  // namespace cuda
}  // namespace lm

// --- cuDNN's fused attention, played by the CPU twin --------------------------------
// The backend's cuDNN path (choosing it, the graphs' shapes and strides, the
// statistics buffer, the fallback) runs against this stand-in: kWorks computes
// what cuDNN would (attention over the strided q, k, v; natural-log
// statistics that only its backward reads), kNoLibrary fails Create as a
// build or machine without cuDNN does, kNoEngine fails Prepare as cuDNN does
// when it has no engine for a shape.
enum class FakeCudnn { kWorks, kNoLibrary, kNoEngine };
FakeCudnn g_cudnn = FakeCudnn::kNoLibrary;
int g_cudnn_forwards = 0, g_cudnn_backwards = 0;

namespace lm {
namespace cuda {
struct CudnnAttention::Impl {};
CudnnAttention::CudnnAttention(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudnnAttention::~CudnnAttention() = default;
Status CudnnAttention::Create(cudaStream_t, std::unique_ptr<CudnnAttention>* out) {
  if (g_cudnn == FakeCudnn::kNoLibrary) return Status::NotFound("the emulator has no cuDNN");
  out->reset(new CudnnAttention(std::make_unique<Impl>()));
  return Status::OK();
}
std::string CudnnAttention::Version() const {
  return "cuDNN (emulated)";
}
Status CudnnAttention::Prepare(const AttentionArgs& a, bool) {
  if (g_cudnn == FakeCudnn::kNoEngine) return Status::Invalid("cuDNN forward graph: no engine");
  if (a.Tq != a.Tk || a.q_pos0 != 0 || a.heads % a.kv_heads)
    return Status::Invalid("cuDNN attention: bad arguments");
  return Status::OK();
}
size_t CudnnAttention::workspace_bytes() const {
  return 0;
}
}  // namespace cuda
}  // namespace lm

namespace {
using lm::cuda::bf16;
// (B,T,heads,hd) floats from bf16 rows `rs` apart, batches `bs` apart; and back.
std::vector<float> Gather(const bf16* p, int B, int T, int heads, int hd, int64_t bs, int64_t rs) {
  std::vector<float> v((size_t)B * T * heads * hd);
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      for (int i = 0; i < heads * hd; i++)
        v[((size_t)b * T + t) * heads * hd + i] = __bfloat162float(p[b * bs + t * rs + i]);
  return v;
}
void Scatter(const std::vector<float>& v, bf16* p, int B, int T, int heads, int hd, int64_t bs,
             int64_t rs) {
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      for (int i = 0; i < heads * hd; i++)
        p[b * bs + t * rs + i] = __float2bfloat16(v[((size_t)b * T + t) * heads * hd + i]);
}
}  // namespace

namespace lm {
namespace cuda {
Status CudnnAttention::Forward(const AttentionArgs& a, bool training) {
  LM_RETURN_IF_ERROR(Prepare(a, training));
  lm_emu::DeviceScope device;
  g_cudnn_forwards++;
  const int B = a.B, T = a.Tq, H = a.heads, K = a.kv_heads, hd = a.head_dim;
  auto q = Gather(a.q, B, T, H, hd, a.q_bstride, a.q_rstride);
  auto k = Gather(a.k, B, T, K, hd, a.kv_bstride, a.kv_rstride);
  auto v = Gather(a.v, B, T, K, hd, a.kv_bstride, a.kv_rstride);
  std::vector<float> out(q.size()), lse((size_t)B * H * T);
  cpu::attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), B, T, H, K, hd);
  Scatter(out, a.out, B, T, H, hd, a.o_bstride, a.o_rstride);
  if (training) memcpy(a.lse2, lse.data(), lse.size() * sizeof(float));
  return Status::OK();
}
Status CudnnAttention::Backward(const AttentionArgs& a, const bf16* dout, bf16* dq, bf16* dk,
                                bf16* dv) {
  lm_emu::DeviceScope device;
  g_cudnn_backwards++;
  const int B = a.B, T = a.Tq, H = a.heads, K = a.kv_heads, hd = a.head_dim;
  auto q = Gather(a.q, B, T, H, hd, a.q_bstride, a.q_rstride);
  auto k = Gather(a.k, B, T, K, hd, a.kv_bstride, a.kv_rstride);
  auto v = Gather(a.v, B, T, K, hd, a.kv_bstride, a.kv_rstride);
  auto o = Gather(a.out, B, T, H, hd, a.o_bstride, a.o_rstride);
  auto d = Gather(dout, B, T, H, hd, a.o_bstride, a.o_rstride);
  std::vector<float> lse(a.lse2, a.lse2 + (size_t)B * H * T);
  std::vector<float> gq(q.size(), 0.f), gk(k.size(), 0.f), gv(v.size(), 0.f);
  cpu::attention_backward(gq.data(), gk.data(), gv.data(), d.data(), o.data(), lse.data(), q.data(),
                          k.data(), v.data(), B, T, H, K, hd);
  Scatter(gq, dq, B, T, H, hd, a.q_bstride, a.q_rstride);
  Scatter(gk, dk, B, T, K, hd, a.kv_bstride, a.kv_rstride);
  Scatter(gv, dv, B, T, K, hd, a.kv_bstride, a.kv_rstride);
  return Status::OK();
}
}  // namespace cuda
}  // namespace lm

namespace {

double RelErr(const float* got, const float* ref, size_t n) {
  double se = 0, sr = 0;
  for (size_t i = 0; i < n; i++) {
    if (!std::isfinite(got[i])) return INFINITY;
    se += (double)(got[i] - ref[i]) * (got[i] - ref[i]);
    sr += (double)ref[i] * ref[i];
  }
  return sr > 0 ? std::sqrt(se / sr) : std::sqrt(se);
}
#define CHECK_REL(got, ref, n, tol, what)                                                       \
  do {                                                                                          \
    double _e = RelErr(got, ref, n);                                                            \
    if (!(_e <= (tol)))                                                                         \
      lm_test::Fail(__FILE__, __LINE__, std::string(what) + ": rel err " + std::to_string(_e)); \
  } while (0)

lm::Status ToStatus(cudaError_t e) {
  return e == cudaSuccess ? lm::Status::OK() : lm::Status::Resource("emulated cudaMalloc failed");
}

// The largest singular value of X (rows,cols), by power iteration on X^T X.
double TopSingularValue(const std::vector<float>& x, int64_t rows, int64_t cols) {
  std::vector<double> v((size_t)cols, 1.0), xv((size_t)rows);
  double norm = 0;
  for (int it = 0; it < 200; it++) {
    for (int64_t i = 0; i < rows; i++) {
      xv[i] = 0;
      for (int64_t j = 0; j < cols; j++) xv[i] += x[i * cols + j] * v[j];
    }
    norm = 0;
    for (int64_t j = 0; j < cols; j++) {
      v[j] = 0;
      for (int64_t i = 0; i < rows; i++) v[j] += x[i * cols + j] * xv[i];
      norm += v[j] * v[j];
    }
    norm = std::sqrt(norm);
    for (double& e : v) e /= norm;
  }
  return std::sqrt(norm);
}

lm::ModelConfig Tiny(bool tied, int kv_heads) {
  lm::ModelConfig c;
  c.vocab_size = 61;
  c.dim = 32;
  c.n_layers = 2;
  c.n_heads = 2;
  c.n_kv_heads = kv_heads;
  c.ffn_dim = 40;
  c.context = 24;
  c.tied_embeddings = tied;
  c.Pad();
  return c;
}

std::vector<int32_t> Tokens(int n, int V, uint64_t seed) {
  std::mt19937_64 r(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = (int32_t)(r() % V);
  return t;
}

// Initial weights of config c from seed, as lm-train draws them.
std::vector<float> InitialWeights(const lm::ModelConfig& c, uint64_t seed) {
  lm::ParamLayout layout = lm::MakeParamLayout(c);
  std::vector<float> w(layout.total);
  lm::InitParams(c, layout, seed, w.data());
  return w;
}

// The CPU backend and the emulated CUDA one, both of config c with options o,
// both holding params.
void MakeBackends(const lm::ModelConfig& c, const lm::BackendOptions& o,
                  const std::vector<float>& params, std::unique_ptr<lm::Backend>* cpu,
                  std::unique_ptr<lm::Backend>* gpu) {
  *cpu = lm::NewCpuBackend();
  CHECK_OK((*cpu)->Init(c, o));
  CHECK_OK(lm::NewCudaBackend(gpu));
  CHECK_OK((*gpu)->Init(c, o));
  CHECK_OK((*cpu)->SetParams(params.data()));
  CHECK_OK((*gpu)->SetParams(params.data()));
}

// What Describe() says of the attention path for each stand-in of cuDNN.
std::string AttentionNote() {
  switch (g_cudnn) {
    case FakeCudnn::kWorks:
      return "attention: cuDNN (emulated) fused attention";
    case FakeCudnn::kNoLibrary:
      return "attention: built-in kernels, as the emulator has no cuDNN";
    default:
      return "attention: built-in kernels, as cuDNN forward graph: no engine";
  }
}

void Compare(const lm::ModelConfig& c, int B, int T, bool recompute, int steps) {
  lm::ParamLayout layout = lm::MakeParamLayout(c);
  std::vector<float> init = InitialWeights(c, 7);
  lm::BackendOptions o;
  o.max_batch = B;
  o.max_seq = T;
  o.recompute = recompute;
  std::unique_ptr<lm::Backend> cpu, gpu;
  MakeBackends(c, o, init, &cpu, &gpu);
  CHECK_EQ(gpu->Describe(), "cuda (Emulated GPU, sm_90; " + AttentionNote() + ")");

  const int N = B * T;
  std::vector<int32_t> seq = Tokens(N + 1, c.vocab_size, 11);
  std::vector<int32_t> in(seq.begin(), seq.begin() + N), tg(seq.begin() + 1, seq.end());
  tg[2] = -1;
  float lc = 0, lg = 0;
  CHECK_OK(cpu->ZeroGrad());
  CHECK_OK(gpu->ZeroGrad());
  CHECK_OK(cpu->ForwardBackward(in.data(), tg.data(), B, T, 0.5f, &lc));
  CHECK_OK(gpu->ForwardBackward(in.data(), tg.data(), B, T, 0.5f, &lg));
  CHECK_NEAR(lg, lc, 1e-2 * lc);
  std::vector<float> gc(layout.total), gg(layout.total);
  CHECK_OK(cpu->GetGrads(gc.data()));
  CHECK_OK(gpu->GetGrads(gg.data()));
  for (const lm::TensorInfo& t : layout.tensors)
    CHECK_REL(gg.data() + t.offset, gc.data() + t.offset, t.numel, 3e-2, "grad " + t.name);

  // A second micro-batch accumulates onto the first (no ZeroGrad in between).
  std::vector<int32_t> in2 = Tokens(N, c.vocab_size, 12), tg2 = Tokens(N, c.vocab_size, 13);
  CHECK_OK(cpu->ForwardBackward(in2.data(), tg2.data(), B, T, 0.25f, &lc));
  CHECK_OK(gpu->ForwardBackward(in2.data(), tg2.data(), B, T, 0.25f, &lg));
  CHECK_NEAR(lg, lc, 1e-2 * lc);
  CHECK_OK(cpu->GetGrads(gc.data()));
  CHECK_OK(gpu->GetGrads(gg.data()));
  CHECK_REL(gg.data(), gc.data(), gc.size(), 3e-2, "accumulated gradients");

  std::vector<float> xc((size_t)N * c.vocab_size), xg((size_t)N * c.vocab_size);
  CHECK_OK(cpu->ForwardLogits(in.data(), B, T, xc.data()));
  CHECK_OK(gpu->ForwardLogits(in.data(), B, T, xg.data()));
  CHECK_REL(xg.data(), xc.data(), xc.size(), 2e-2, "logits");
  std::vector<float> sc(N), sg(N);
  CHECK_OK(cpu->ForwardLoss(in.data(), tg.data(), B, T, sc.data()));
  CHECK_OK(gpu->ForwardLoss(in.data(), tg.data(), B, T, sg.data()));
  CHECK_REL(sg.data(), sc.data(), N, 1e-2, "losses");
  CHECK_EQ(sg[2], 0.f);

  std::vector<float> dc(c.vocab_size), dg(c.vocab_size);
  CHECK_OK(gpu->ResetCache());
  CHECK_OK(cpu->ResetCache());
  CHECK_OK(cpu->Decode(in.data(), 5, dc.data()));
  CHECK_OK(gpu->Decode(in.data(), 5, dg.data()));
  CHECK_REL(dg.data(), dc.data(), dc.size(), 2e-2, "decode prompt");
  // The decoded prompt's last logits are the full forward's logits at position 4.
  CHECK_REL(dg.data(), xc.data() + 4 * c.vocab_size, dc.size(), 2e-2, "decode vs forward");
  CHECK_OK(cpu->Decode(in.data() + 5, 1, dc.data()));
  CHECK_OK(gpu->Decode(in.data() + 5, 1, dg.data()));
  CHECK_REL(dg.data(), dc.data(), dc.size(), 2e-2, "decode step");
  CHECK_EQ(gpu->CachePosition(), 6);
  std::vector<int32_t> many(c.context, 1);
  CHECK(!gpu->Decode(many.data(), c.context, dg.data()).ok());  // past the context

  lm::AdamWConfig opt;
  opt.lr = 1e-2f;
  for (int s = 0; s < steps; s++) {
    float a = 0, b = 0, na = 0, nb = 0;
    bool ka = false, kb = false;
    CHECK_OK(cpu->ZeroGrad());
    CHECK_OK(gpu->ZeroGrad());
    // The CUDA backend keeps its loss on the device until after the step.
    CHECK_OK(cpu->ForwardBackward(in.data(), tg.data(), B, T, 1.f, &a));
    CHECK_OK(gpu->ForwardBackward(in.data(), tg.data(), B, T, 1.f, nullptr));
    CHECK_OK(cpu->OptimizerStep(opt, &na, &ka));
    CHECK_OK(gpu->OptimizerStep(opt, &nb, &kb));
    CHECK_OK(gpu->StepLoss(&b));
    CHECK(!ka && !kb);
    CHECK_NEAR(b, a, 1e-2 * a);
    CHECK_NEAR(nb, na, 3e-2 * na);
  }
  std::vector<float> pc(layout.total), pg(layout.total), m(layout.total), v(layout.total);
  CHECK_OK(cpu->GetParams(pc.data()));
  CHECK_OK(gpu->GetParams(pg.data()));
  // Adam's first steps move each weight by about lr * sign(g), so small gradient
  // differences show up whole in the weights: a looser bound than the losses'.
  CHECK_REL(pg.data(), pc.data(), pc.size(), 3e-2, "params after training");
  int64_t step = -1;
  CHECK_OK(gpu->GetOptimizerState(m.data(), v.data(), &step));
  CHECK_EQ(step, (int64_t)steps);
}

}  // namespace

// The emulated device memory faults on a host access, as a GPU's would, and
// opens only for device operations: a backend that read a device pointer on
// the host would pass here otherwise, and crash on a GPU.
TEST(device_memory_is_closed_to_the_host) {
  float* d = nullptr;
  CHECK_EQ(cudaMalloc((void**)&d, 64 * sizeof(float)), cudaSuccess);
  float h[64], back[64];
  for (int i = 0; i < 64; i++) h[i] = (float)i;
  CHECK_EQ(cudaMemcpyAsync(d, h, sizeof h, cudaMemcpyHostToDevice, nullptr), cudaSuccess);
  CHECK_EQ(cudaMemcpyAsync(back, d, sizeof back, cudaMemcpyDeviceToHost, nullptr), cudaSuccess);
  CHECK_EQ(back[63], 63.f);
  for (int write = 0; write < 2; write++) {
    pid_t pid = fork();
    if (pid == 0) {
      if (write)
        d[1] = 5.f;
      else
        back[0] = *(volatile float*)&d[1];
      _exit(0);
    }
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
  }
  CHECK_EQ(cudaFree(d), cudaSuccess);
}

// A normalised random matrix rounded to bf16, and its values in double.
void NormalisedBf16(int64_t n, uint64_t seed, std::vector<bf16>* x, std::vector<double>* xd) {
  std::mt19937_64 r(seed);
  std::normal_distribution<double> d(0.0, 1.0);
  std::vector<double> g((size_t)n);
  double ss = 0;
  for (double& v : g) {
    v = d(r);
    ss += v * v;
  }
  x->resize((size_t)n);
  xd->resize((size_t)n);
  for (int64_t i = 0; i < n; i++) {
    (*x)[i] = __float2bfloat16((float)(g[i] / std::sqrt(ss)));
    (*xd)[i] = (double)__bfloat162float((*x)[i]);
  }
}

// Newton-Schulz as the device runs it: bf16 products through cuBLASLt's
// column-major contract (emulated), wide and tall, with the Gram matrix on
// the shorter side. The result follows the float64 reference
// (cpu::newton_schulz on the same input, itself checked in muon_test.cpp) and
// its singular values stay in the quintic's band, in the mean (||X||_F^2 / k)
// and at the top (||X||_2 by power iteration on the Gram matrix).
TEST(newton_schulz_bf16_products_follow_the_float64_reference) {
  const int64_t shapes[][2] = {{32, 96}, {96, 32}, {24, 200}, {37, 53}, {53, 37}, {1, 12}, {12, 1}};
  lm::cuda::Matmul mm;
  CHECK_OK(mm.Init(nullptr));
  uint64_t seed = 90;
  for (const auto& sh : shapes) {
    const int64_t rows = sh[0], cols = sh[1], n = rows * cols, k = std::min(rows, cols);
    const std::string name = std::to_string(rows) + "x" + std::to_string(cols);
    lm::ParamLayout one;
    lm::TensorInfo t;
    t.shape = {rows, cols};
    t.numel = (size_t)n;
    one.tensors.push_back(t);
    lm::cuda::MuonScratch s;
    CHECK_OK(lm::cuda::AllocMuonScratch(
        one, [](void** p, size_t bytes) { return ToStatus(cudaMalloc(p, bytes)); }, &s));
    std::vector<bf16> x;
    std::vector<double> xd, scratch(lm::cpu::newton_schulz_scratch((int)rows, (int)cols));
    NormalisedBf16(n, seed++, &x, &xd);
    CHECK_EQ(cudaMemcpy(s.x, x.data(), n * sizeof(bf16), cudaMemcpyHostToDevice), cudaSuccess);
    bf16* out = nullptr;
    CHECK_OK(lm::cuda::NewtonSchulzDevice(&mm, s, rows, cols, 5, &out));
    CHECK_EQ(cudaMemcpy(x.data(), out, n * sizeof(bf16), cudaMemcpyDeviceToHost), cudaSuccess);
    lm::cuda::FreeMuonScratch(&s);
    lm::cpu::newton_schulz(xd.data(), xd.data(), (int)rows, (int)cols, 5, scratch.data());
    std::vector<float> got((size_t)n), ref(xd.begin(), xd.end());
    for (int64_t i = 0; i < n; i++) got[i] = __bfloat162float(x[i]);
    CHECK_REL(got.data(), ref.data(), (size_t)n, 3e-2, "newton-schulz " + name);
    double fro = 0;
    for (float v : got) fro += (double)v * v;
    const double top = TopSingularValue(got, rows, cols);
    if (!(fro / k > 0.67 * 0.67 && fro / k < 1.16 * 1.16 && top < 1.2))
      lm_test::Fail(__FILE__, __LINE__,
                    name + ": mean squared singular value " + std::to_string(fro / k) +
                        ", largest " + std::to_string(top));
  }
}

float RoundBf16(double x) {
  return __bfloat162float(__float2bfloat16((float)x));
}

// Newton-Schulz with the device's roundings: X, the Gram matrix A and the
// polynomial B rounded to bf16 after each product (fp32 sums), the Gram
// matrix taken on the shorter side (a tall X is iterated as its transpose,
// which changes no value). x (rows,cols) is normalised already.
void NewtonSchulzBf16(std::vector<float>* x, int rows, int cols, int steps) {
  const bool wide = rows <= cols;
  const int k = wide ? rows : cols, n = wide ? cols : rows;  // the iterate Y (k,n)
  std::vector<float> y((size_t)k * n), a((size_t)k * k), b((size_t)k * k), yn(y.size());
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++)
      y[wide ? (size_t)i * n + j : (size_t)j * n + i] = RoundBf16((*x)[(size_t)i * cols + j]);
  for (int s = 0; s < steps; s++) {
    for (int i = 0; i < k; i++)
      for (int j = 0; j < k; j++) {
        float acc = 0.f;
        for (int l = 0; l < n; l++) acc += y[(size_t)i * n + l] * y[(size_t)j * n + l];
        a[(size_t)i * k + j] = RoundBf16(acc);
      }
    for (int i = 0; i < k; i++)
      for (int j = 0; j < k; j++) {
        float acc = 0.f;
        for (int l = 0; l < k; l++) acc += a[(size_t)i * k + l] * a[(size_t)l * k + j];
        b[(size_t)i * k + j] =
            RoundBf16(lm::cpu::kNsC * acc + lm::cpu::kNsB * a[(size_t)i * k + j]);
      }
    for (int i = 0; i < k; i++)
      for (int j = 0; j < n; j++) {
        float acc = 0.f;
        for (int l = 0; l < k; l++) acc += b[(size_t)i * k + l] * y[(size_t)l * n + j];
        yn[(size_t)i * n + j] = RoundBf16(acc + lm::cpu::kNsA * y[(size_t)i * n + j]);
      }
    y.swap(yn);
  }
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++)
      (*x)[(size_t)i * cols + j] = y[wide ? (size_t)i * n + j : (size_t)j * n + i];
}

// One Muon step of the matrix at w (rows,cols) as the device computes it:
// cpu/muon.h's momentum, normalisation and update around NewtonSchulzBf16.
void MuonStepBf16(float* w, const float* g, float* m, int rows, int cols, const lm::MuonConfig& mc,
                  float grad_scale) {
  const int64_t n = (int64_t)rows * cols;
  std::vector<float> u((size_t)n);
  lm::cpu::muon_momentum(u.data(), m, g, n, mc.momentum, mc.nesterov, grad_scale);
  lm::cpu::ns_normalize(u.data(), u.data(), n);
  NewtonSchulzBf16(&u, rows, cols, mc.ns_steps);
  lm::cpu::muon_apply(w, u.data(), n, mc.lr, mc.weight_decay,
                      (float)lm::cpu::muon_shape_scale(rows, cols));
}

lm::AdamWConfig MuonOptimizer() {
  lm::AdamWConfig opt;
  opt.lr = 3e-3f;
  opt.embed_lr = 1e-2f;
  opt.head_lr = 2e-3f;
  opt.grad_clip = 0.5f;  // so that clipping's factor reaches both optimizers
  opt.muon.enabled = true;
  opt.muon.lr = 0.02f;
  opt.muon.weight_decay = 0.1f;
  return opt;
}

// The CPU twins' optimizer step on host copies (w, m, v) from the gradients g:
// Muon for the matrices, AdamW with each group's rate for the rest.
void ReferenceStep(const lm::ParamLayout& layout, const lm::AdamWConfig& opt, int64_t step,
                   const std::vector<float>& g, std::vector<float>* w, std::vector<float>* m,
                   std::vector<float>* v) {
  const double norm = std::sqrt(lm::cpu::sum_squares(g.data(), (int64_t)g.size()));
  const float scale = norm > opt.grad_clip ? (float)(opt.grad_clip / norm) : 1.0f;
  for (const lm::TensorInfo& t : layout.tensors) {
    const size_t o = t.offset;
    if (!opt.UsesMuon(t.group)) {
      lm::cpu::adamw_update(w->data() + o, g.data() + o, m->data() + o, v->data() + o,
                            (int64_t)t.numel, opt.LrFor(t.group), opt.beta1, opt.beta2, opt.eps,
                            t.decay ? opt.weight_decay : 0.0f, step, scale);
      continue;
    }
    MuonStepBf16(w->data() + o, g.data() + o, m->data() + o, (int)t.rows(), (int)t.cols(), opt.muon,
                 scale);
  }
}

// The CUDA backend's step, Muon for the matrices (bf16 Newton-Schulz products
// through the emulated cuBLASLt, the fused kernels) and AdamW with per-group
// rates for the rest, against the CPU twins applied to the same gradients and
// state, step after step, clipping included: AdamW's tensors and every
// momentum buffer to float rounding, Muon's matrices against MuonStepBf16,
// which rounds where the device does; v stays zero for the matrices.
// (Against fp32 Newton-Schulz the update differs by the bf16 drift, up to
// about 0.12 of it in a matrix whose gradient has near-null directions, as an
// attention output projection has at initialisation: the orthogonalisation
// lifts bf16 noise there to the size of the update.)
TEST(muon_step_matches_the_cpu_twins_on_the_same_gradients) {
  g_cudnn = FakeCudnn::kNoLibrary;
  const lm::ModelConfig c = Tiny(false, 1);
  const lm::ParamLayout layout = lm::MakeParamLayout(c);
  lm::BackendOptions o;
  o.max_batch = 4;
  o.max_seq = 24;
  std::unique_ptr<lm::Backend> cpu, gpu;
  MakeBackends(c, o, InitialWeights(c, 5), &cpu, &gpu);
  const lm::AdamWConfig opt = MuonOptimizer();
  const size_t n = layout.total;
  for (int step = 0; step < 3; step++) {
    std::vector<int32_t> t = Tokens(4 * 24 + 1, c.vocab_size, 40 + step);
    std::vector<float> g(n), w(n), m(n), v(n), w2(n), m2(n), v2(n);
    int64_t k = 0, k2 = 0;
    float norm = 0;
    bool skipped = false;
    CHECK_OK(gpu->ZeroGrad());
    CHECK_OK(gpu->ForwardBackward(t.data(), t.data() + 1, 4, 24, 1.f, nullptr));
    CHECK_OK(gpu->GetGrads(g.data()));
    CHECK_OK(gpu->GetParams(w.data()));
    CHECK_OK(gpu->GetOptimizerState(m.data(), v.data(), &k));
    CHECK_OK(gpu->OptimizerStep(opt, &norm, &skipped));
    CHECK(!skipped);
    CHECK_OK(gpu->GetParams(w2.data()));
    CHECK_OK(gpu->GetOptimizerState(m2.data(), v2.data(), &k2));
    CHECK_EQ(k2, k + 1);
    std::vector<float> wr = w, mr = m, vr = v;
    ReferenceStep(layout, opt, k2, g, &wr, &mr, &vr);
    for (const lm::TensorInfo& ti : layout.tensors) {
      std::vector<float> dg(ti.numel), dr(ti.numel);
      for (size_t i = 0; i < ti.numel; i++) {
        dg[i] = w2[ti.offset + i] - w[ti.offset + i];
        dr[i] = wr[ti.offset + i] - w[ti.offset + i];
      }
      const bool muon = ti.group == lm::ParamGroup::kMatrix;
      CHECK_REL(dg.data(), dr.data(), ti.numel, muon ? 1e-3 : 1e-5, "update of " + ti.name);
      CHECK_REL(m2.data() + ti.offset, mr.data() + ti.offset, ti.numel, 1e-6, "m of " + ti.name);
      CHECK_REL(v2.data() + ti.offset, vr.data() + ti.offset, ti.numel, 1e-6, "v of " + ti.name);
    }
  }
}

// The same training, end to end: the CUDA backend's losses follow the CPU
// backend's when both train with Muon.
TEST(muon_training_losses_match_cpu) {
  g_cudnn = FakeCudnn::kNoLibrary;
  const lm::ModelConfig c = Tiny(true, 1);
  lm::BackendOptions o;
  o.max_batch = 2;
  o.max_seq = 12;
  std::unique_ptr<lm::Backend> cpu, gpu;
  MakeBackends(c, o, InitialWeights(c, 6), &cpu, &gpu);
  const lm::AdamWConfig opt = MuonOptimizer();
  for (int step = 0; step < 4; step++) {
    std::vector<int32_t> t = Tokens(2 * 12 + 1, c.vocab_size, 50 + step);
    float a = 0, b = 0, na = 0, nb = 0;
    bool ka = false, kb = false;
    CHECK_OK(cpu->ZeroGrad());
    CHECK_OK(gpu->ZeroGrad());
    CHECK_OK(cpu->ForwardBackward(t.data(), t.data() + 1, 2, 12, 1.f, &a));
    CHECK_OK(gpu->ForwardBackward(t.data(), t.data() + 1, 2, 12, 1.f, nullptr));
    CHECK_OK(cpu->OptimizerStep(opt, &na, &ka));
    CHECK_OK(gpu->OptimizerStep(opt, &nb, &kb));
    CHECK_OK(gpu->StepLoss(&b));
    CHECK(!ka && !kb);
    CHECK_NEAR(b, a, 1e-2 * a);
    CHECK_NEAR(nb, na, 3e-2 * na);
  }
}

// The loss kept on the device is the sum of grad_scale x mean loss, as on the
// CPU: micro-batches of unequal size (a batch warmup's) count by their share
// of the step's targets, which the trainer passes as grad_scale.
TEST(kept_losses_are_weighted_by_grad_scale) {
  g_cudnn = FakeCudnn::kNoLibrary;
  const lm::ModelConfig c = Tiny(true, 1);
  lm::BackendOptions o;
  o.max_batch = 2;
  o.max_seq = 12;
  std::unique_ptr<lm::Backend> cpu, gpu;
  MakeBackends(c, o, InitialWeights(c, 7), &cpu, &gpu);
  std::vector<int32_t> t = Tokens(3 * 12 + 1, c.vocab_size, 60);
  float a = 0, b = 0;
  for (lm::Backend* be : {cpu.get(), gpu.get()}) {
    CHECK_OK(be->ZeroGrad());
    CHECK_OK(be->ForwardBackward(t.data(), t.data() + 1, 1, 12, 1.f / 3, nullptr));
    CHECK_OK(be->ForwardBackward(t.data() + 12, t.data() + 13, 2, 12, 2.f / 3, nullptr));
  }
  CHECK_OK(cpu->StepLoss(&a));
  CHECK_OK(gpu->StepLoss(&b));
  CHECK_NEAR(b, a, 1e-2 * a);
  float l1 = 0, l2 = 0;
  CHECK_OK(cpu->ZeroGrad());
  CHECK_OK(cpu->ForwardBackward(t.data(), t.data() + 1, 1, 12, 1.f, &l1));
  CHECK_OK(cpu->ForwardBackward(t.data() + 12, t.data() + 13, 2, 12, 1.f, &l2));
  CHECK_NEAR(a, (l1 + 2 * l2) / 3, 1e-5 * a);
}

TEST(tied_gqa_matches_cpu) {
  g_cudnn = FakeCudnn::kNoLibrary;
  Compare(Tiny(true, 1), 2, 12, false, 3);
}
TEST(untied_recompute_matches_cpu) {
  g_cudnn = FakeCudnn::kNoLibrary;
  Compare(Tiny(false, 2), 1, 20, true, 2);
}
TEST(small_logit_chunks_match_cpu) {
  g_cudnn = FakeCudnn::kNoLibrary;
  setenv("LM_CUDA_LOGIT_ROWS", "5", 1);  // 24 rows in chunks of 5: a ragged last chunk
  Compare(Tiny(true, 2), 2, 12, false, 1);
  unsetenv("LM_CUDA_LOGIT_ROWS");
}

// The cuDNN path's plumbing: q, k, v read from the fused qkv buffer through
// strides, grouped-query heads, the statistics kept for the backward pass,
// recomputation; the attention itself is the stand-in's (the CPU twin).
TEST(cudnn_path_matches_cpu) {
  g_cudnn = FakeCudnn::kWorks;
  const int f0 = g_cudnn_forwards, b0 = g_cudnn_backwards;
  Compare(Tiny(true, 1), 2, 12, false, 2);
  CHECK(g_cudnn_forwards > f0 && g_cudnn_backwards > b0);
  Compare(Tiny(false, 2), 1, 20, true, 1);
  g_cudnn = FakeCudnn::kNoLibrary;
}
// cuDNN present but without an engine for the graphs: the built-in kernels,
// and Describe says why.
TEST(cudnn_without_engine_falls_back) {
  g_cudnn = FakeCudnn::kNoEngine;
  const int f0 = g_cudnn_forwards;
  Compare(Tiny(true, 1), 2, 12, false, 1);
  CHECK_EQ(g_cudnn_forwards, f0);
  g_cudnn = FakeCudnn::kNoLibrary;
}
TEST(lm_cuda_attn_own_chooses_the_built_in_kernels) {
  g_cudnn = FakeCudnn::kWorks;
  setenv("LM_CUDA_ATTN", "own", 1);
  lm::ModelConfig c = Tiny(true, 1);
  lm::BackendOptions o;
  o.max_batch = 1;
  o.max_seq = 8;
  std::unique_ptr<lm::Backend> gpu;
  CHECK_OK(lm::NewCudaBackend(&gpu));
  CHECK_OK(gpu->Init(c, o));
  CHECK_EQ(
      gpu->Describe(),
      std::string("cuda (Emulated GPU, sm_90; attention: built-in kernels (LM_CUDA_ATTN=own))"));
  const int f0 = g_cudnn_forwards;
  std::vector<int32_t> t = Tokens(9, c.vocab_size, 3);
  CHECK_OK(gpu->ForwardBackward(t.data(), t.data() + 1, 1, 8, 1.f, nullptr));
  CHECK_EQ(g_cudnn_forwards, f0);
  unsetenv("LM_CUDA_ATTN");
  g_cudnn = FakeCudnn::kNoLibrary;
}

TEST(gpu_older_than_ampere_is_refused) {
  g_cc_major = 7;
  g_cc_minor = 5;
  std::unique_ptr<lm::Backend> gpu;
  lm::Status s = lm::NewCudaBackend(&gpu);
  g_cc_major = 9;
  g_cc_minor = 0;
  CHECK_EQ(s.code(), lm::Status::kInvalid);
  CHECK_EQ(s.message(),
           std::string("cuda backend: Emulated GPU (compute capability 7.5) is older than the 8.0 "
                       "(Ampere) this backend needs; use --device cpu"));
  CHECK_OK(lm::cuda::CheckComputeCapability("NVIDIA A100-SXM4-80GB", 8, 0));
  CHECK_OK(lm::cuda::CheckComputeCapability("NVIDIA GeForce RTX 5090", 12, 0));
}

// A batch beyond the GPU's memory fails in Init, before anything is allocated,
// with the bytes it needs and the options that lower them.
TEST(batch_too_large_for_the_memory_says_what_lowers_it) {
  lm::ModelConfig c;
  c.vocab_size = 1000;
  c.dim = 256;
  c.n_layers = 4;
  c.n_heads = 4;
  c.n_kv_heads = 4;
  c.ffn_dim = 512;
  c.context = 256;
  c.Pad();
  lm::BackendOptions o;
  o.max_batch = 64;
  o.max_seq = 256;
  const size_t reserve = (512ull << 20) + g_total_bytes / 50, free0 = g_free_bytes;
  for (size_t headroom : {(size_t)100 << 20, (size_t)0}) {
    g_free_bytes = reserve + headroom;
    std::unique_ptr<lm::Backend> gpu;
    CHECK_OK(lm::NewCudaBackend(&gpu));
    lm::Status s = gpu->Init(c, o);
    CHECK_EQ(s.code(), lm::Status::kResource);
    const std::string m = s.message();
    for (const char* want :
         {"a batch of 64 x 256 needs ", " GiB of GPU memory", "Emulated GPU", "--recompute ("})
      if (m.find(want) == std::string::npos)
        lm_test::Fail(__FILE__, __LINE__, std::string("no '") + want + "' in: " + m);
    const char* lower = headroom ? "lower --micro-batch to " : "--micro-batch 1 does not fit";
    if (m.find(lower) == std::string::npos)
      lm_test::Fail(__FILE__, __LINE__, std::string("no '") + lower + "' in: " + m);
  }
  g_free_bytes = free0;
}

TEST(inference_only_backend) {
  lm::ModelConfig c = Tiny(false, 1);
  std::vector<float> init = InitialWeights(c, 3);
  lm::BackendOptions o;
  o.training = false;
  o.max_batch = 1;
  o.max_seq = 7;  // prompts longer than this are decoded in pieces
  std::unique_ptr<lm::Backend> cpu, gpu;
  MakeBackends(c, o, init, &cpu, &gpu);
  std::vector<int32_t> t = Tokens(17, c.vocab_size, 5);
  std::vector<float> dc(c.vocab_size), dg(c.vocab_size);
  CHECK_OK(cpu->Decode(t.data(), 17, dc.data()));
  CHECK_OK(gpu->Decode(t.data(), 17, dg.data()));
  CHECK_REL(dg.data(), dc.data(), dc.size(), 2e-2, "decode in pieces");
  std::vector<float> xc(7 * c.vocab_size), xg(7 * c.vocab_size);
  CHECK_OK(cpu->ForwardLogits(t.data(), 1, 7, xc.data()));
  CHECK_OK(gpu->ForwardLogits(t.data(), 1, 7, xg.data()));
  CHECK_REL(xg.data(), xc.data(), xc.size(), 2e-2, "inference logits");
  float loss = 0;
  CHECK(!gpu->ForwardBackward(t.data(), t.data() + 1, 1, 7, 1.f, &loss).ok());
  CHECK(!gpu->ForwardLogits(t.data(), 1, 8, xg.data()).ok());  // longer than max_seq
  std::vector<int32_t> bad = {0, c.vocab_size};
  CHECK(!gpu->ForwardLogits(bad.data(), 1, 2, xg.data()).ok());  // token out of range
}

// LM_CUDA_PROFILE: one training step's table names every kind of operation,
// rates the products and attention, and accounts for each launch once.
TEST(profile_table_of_a_training_step) {
  lm::ModelConfig c = Tiny(true, 1);
  std::vector<float> init = InitialWeights(c, 3);
  lm::BackendOptions o;
  o.max_batch = 2;
  o.max_seq = 12;
  std::unique_ptr<lm::Backend> cpu, gpu;
  MakeBackends(c, o, init, &cpu, &gpu);
  std::vector<int32_t> t = Tokens(2 * 13, c.vocab_size, 9);
  lm::cuda::ProfileEnable(true);
  float loss = 0, norm = 0;
  bool skipped = false;
  // The first step is left out as warm-up; the second is timed.
  CHECK_OK(gpu->ForwardBackward(t.data(), t.data() + 1, 2, 12, 1.f, &loss));
  CHECK_OK(gpu->OptimizerStep(lm::AdamWConfig{}, &norm, &skipped));
  CHECK_OK(gpu->ZeroGrad());
  CHECK_OK(gpu->ForwardBackward(t.data(), t.data() + 1, 2, 12, 1.f, &loss));
  std::string table = lm::cuda::ProfileReport();
  lm::cuda::ProfileEnable(false);
  if (getenv("SHOW_PROFILE")) fputs(table.c_str(), stderr);
  CHECK(table.find("adamw_kernel") == std::string::npos);  // in the warm-up step
  for (const char* want :
       {"warm-up operations", "attention_forward_tc_kernel", "attention_dkv_tc_kernel",
        "cross_entropy_kernel<bf16>", "rmsnorm_forward_kernel", "embedding_backward_kernel",
        "linear Y 24x32->", "linear dW 24x", "linear dX 24x"})
    if (table.find(want) == std::string::npos)
      lm_test::Fail(__FILE__, __LINE__, std::string("no '") + want + "' in:\n" + table);
  // Each layer's attention forward runs once: 2 calls for 2 layers.
  size_t at = table.find("attention_forward_tc_kernel");
  size_t line = table.rfind('\n', at);
  long calls = 0;
  double ms = 0, pct = 0;
  CHECK(sscanf(table.c_str() + line + 1, "%lf %lf %ld", &ms, &pct, &calls) == 3);
  CHECK_EQ(calls, 2L);
  // One logits chunk: the head's weight gradient is one product (24 rows of
  // 32 -> 128, the padded vocabulary), written (beta 0) in the first micro-batch.
  at = table.find("linear dW 24x32->128 f32\n");
  CHECK(at != std::string::npos);
  line = table.rfind('\n', at);
  CHECK(sscanf(table.c_str() + line + 1, "%lf %lf %ld", &ms, &pct, &calls) == 3);
  CHECK_EQ(calls, 1L);
  // A second report is empty: the first one cleared the table.
  CHECK_EQ(lm::cuda::ProfileReport(), std::string());
}

// LM_CUDA_PROFILE=1 names every product that fell back to cublasGemmEx.
TEST(profile_names_gemmex_fallbacks) {
  setenv("LM_CUDA_GEMMEX", "1", 1);
  lm::ModelConfig c = Tiny(true, 1);
  std::vector<float> init = InitialWeights(c, 3);
  lm::BackendOptions o;
  o.max_batch = 1;
  o.max_seq = 8;
  std::unique_ptr<lm::Backend> cpu, gpu;
  MakeBackends(c, o, init, &cpu, &gpu);
  std::vector<int32_t> t = Tokens(9, c.vocab_size, 4);
  lm::cuda::ProfileEnable(true);
  std::vector<float> losses(8);
  CHECK_OK(gpu->ForwardLoss(t.data(), t.data() + 1, 1, 8, losses.data()));
  std::string table = lm::cuda::ProfileReport();
  lm::cuda::ProfileEnable(false);
  unsetenv("LM_CUDA_GEMMEX");
  for (const char* want :
       {"products fell back to cublasGemmEx", "linear Y 8x32->", " (cublasGemmEx fallback)\n"})
    if (table.find(want) == std::string::npos)
      lm_test::Fail(__FILE__, __LINE__, std::string("no '") + want + "' in:\n" + table);
}

namespace {

// --- data parallelism: ranks as threads, a stand-in for NCCL ----------------------
// The emulator is single-threaded (device memory opens and closes for all,
// kernels' shared memory is static), so the ranks take turns: each runs while
// it holds the world's lock, which it gives up only while it waits in a
// collective for the others.
struct EmuWorld {
  explicit EmuWorld(int n) : size(n), ptr(n), barrier(n) {}
  void Barrier(std::unique_lock<std::mutex>* lk) { barrier.Wait(lk); }
  int size;
  std::vector<void*> ptr;  // each rank's buffer of the current call
  lm_test::ThreadBarrier barrier;
};

// NCCL's contract on the emulated device memory: the calls complete before
// they return (the emulated streams are in order), Join has nothing to wait for.
class EmuNccl : public lm::Comm {
 public:
  EmuNccl(EmuWorld* w, int rank, std::unique_lock<std::mutex>* lk) : w_(w), rank_(rank), lk_(lk) {}
  int rank() const override { return rank_; }
  int size() const override { return w_->size; }
  std::string Describe() const override { return "emulated nccl"; }
  bool on_device() const override { return true; }
  lm::Status AllReduce(double*, int, lm::ReduceOp) override { return Unused(); }
  lm::Status Broadcast(void*, size_t, int) override { return Unused(); }
  lm::Status Gather(const void*, const std::vector<size_t>&, void*, int) override {
    return Unused();
  }
  lm::Status Scatter(const void*, const std::vector<size_t>&, void*, int) override {
    return Unused();
  }
  // Each owner's part, summed over the ranks in rank order; the rest of the
  // range is left as garbage (NaN), as NCCL's "undefined" allows.
  lm::Status ReduceToOwners(float* buf, size_t lo, size_t hi, const lm::ParamShards& s,
                            void*) override {
    reduces++;
    Share(buf);
    std::vector<float> sum;
    {
      lm_emu::DeviceScope device;
      const auto [a, b] = s.Part(rank_, lo, hi);
      for (size_t i = a; i < b; i++) {
        float v = 0;
        for (int r = 0; r < w_->size; r++) v += static_cast<float*>(w_->ptr[r])[i];
        sum.push_back(v);
      }
    }
    w_->Barrier(lk_);
    lm_emu::DeviceScope device;
    const auto [a, b] = s.Part(rank_, lo, hi);
    std::copy(sum.begin(), sum.end(), buf + a);
    for (size_t i = lo; i < hi; i++)
      if (i < a || i >= b) buf[i] = NAN;
    return Done();
  }
  lm::Status GatherFromOwners(float* buf, size_t lo, size_t hi, const lm::ParamShards& s,
                              void*) override {
    Share(buf);
    {
      lm_emu::DeviceScope device;
      for (int r = 0; r < w_->size; r++) {
        const auto [a, b] = s.Part(r, lo, hi);
        if (r != rank_ && a < b)
          memcpy(buf + a, static_cast<float*>(w_->ptr[r]) + a, (b - a) * sizeof(float));
      }
    }
    return Done();
  }
  lm::Status SumDoubles(double* x, int n, void*) override {
    Share(x);
    std::vector<double> sum(n, 0.0);
    {
      lm_emu::DeviceScope device;
      for (int r = 0; r < w_->size; r++)
        for (int i = 0; i < n; i++) sum[i] += static_cast<double*>(w_->ptr[r])[i];
    }
    w_->Barrier(lk_);
    lm_emu::DeviceScope device;
    std::copy(sum.begin(), sum.end(), x);
    return Done();
  }
  lm::Status Join(void*) override { return lm::Status::OK(); }
  [[noreturn]] void Abort(int) override { abort(); }
  int reduces = 0;  // ReduceToOwners calls

 private:
  lm::Status Unused() { return lm::Status::Invalid("emulated nccl: not a data collective"); }
  void Share(void* p) {
    w_->ptr[rank_] = p;
    w_->Barrier(lk_);  // every rank's buffer is in
  }
  lm::Status Done() {
    w_->Barrier(lk_);  // every rank has read what it needed
    return lm::Status::OK();
  }
  EmuWorld* w_;
  int rank_;
  std::unique_lock<std::mutex>* lk_;
};

struct RankResult {
  std::vector<float> params, m, v, losses, norms;
  int reduces = 0;
};

// `steps` steps of `micro` micro-steps, as lm-train runs them: rank r of
// `ranks` takes row r of each micro-step's `ranks` rows, grad_scale
// 1/(ranks*micro) (every target counts), the loss kept on the device, the
// reduction started in the last micro-step's backward pass. Without a comm,
// one backend takes every row in turn, one micro-batch each: the same
// gradients, added up in another order when micro > 1.
void TrainRanks(const lm::ModelConfig& c, int ranks, int rank, lm::Comm* comm, int micro,
                float clip, RankResult* out) {
  const int T = 12, steps = 2;
  std::vector<float> init = InitialWeights(c, 5);
  lm::BackendOptions o;
  o.max_batch = 1;
  o.max_seq = T;
  o.comm = comm;
  std::unique_ptr<lm::Backend> gpu;
  CHECK_OK(lm::NewCudaBackend(&gpu));
  CHECK_OK(gpu->Init(c, o));
  CHECK_OK(gpu->SetParams(init.data()));
  lm::AdamWConfig opt;
  opt.lr = 1e-2f;
  opt.grad_clip = clip;
  for (int s = 0; s < steps; s++) {
    CHECK_OK(gpu->ZeroGrad());
    for (int m = 0; m < micro; m++) {
      std::vector<int32_t> seq = Tokens(ranks * (T + 1), c.vocab_size, 1000 + s * micro + m);
      if (m == micro - 1) gpu->ReduceDuringNextBackward();
      for (int r = comm ? rank : 0; r < (comm ? rank + 1 : ranks); r++) {
        const int32_t* row = seq.data() + r * (T + 1);
        CHECK_OK(gpu->ForwardBackward(row, row + 1, 1, T, 1.f / (float)(ranks * micro), nullptr));
      }
    }
    float norm = 0, loss = 0;
    bool skipped = false;
    CHECK_OK(gpu->OptimizerStep(opt, &norm, &skipped));
    CHECK(!skipped);
    CHECK_OK(gpu->StepLoss(&loss));
    out->losses.push_back(loss);
    out->norms.push_back(norm);
  }
  lm::ParamLayout layout = lm::MakeParamLayout(c);
  const lm::ParamShards sh = lm::MakeParamShards(layout, comm ? comm->size() : 1);
  out->params.resize(layout.total);
  out->m.resize(std::max<size_t>(sh.count(rank), 1));
  out->v.resize(out->m.size());
  int64_t step = 0;
  CHECK_OK(gpu->GetParams(out->params.data()));
  CHECK_OK(gpu->GetOptimizerState(out->m.data(), out->v.data(), &step));
  CHECK_EQ(step, (int64_t)steps);
}

// Two or three emulated GPUs with the sharded AdamW against one GPU alone:
// every rank holds the same weights, and the losses (summed over the ranks),
// norms, weights and moments (shard by shard) are the single GPU's. With one
// micro-step, untied embeddings and no clipping (the norm's sum is ordered
// differently) they are the same bits; else up to the order of the
// gradients' fp32 sums (tied, the table's adds the head's and the
// embedding's), which Adam's first steps magnify. A bucket reduced before
// its last gradient was written would lose a micro-batch's share.
void CheckRanksMatchOne(const lm::ModelConfig& c, int ranks, int micro) {
  const float clip = micro == 1 ? 0.f : 0.05f;  // 0.05: clipping on, by the global norm
  RankResult one;
  TrainRanks(c, ranks, 0, nullptr, micro, clip, &one);
  EmuWorld w(ranks);
  std::vector<RankResult> res(ranks);
  std::vector<std::thread> th;
  for (int r = 0; r < ranks; r++)
    th.emplace_back([&, r] {
      std::unique_lock<std::mutex> lk(w.barrier.mu);
      EmuNccl comm(&w, r, &lk);
      TrainRanks(c, ranks, r, &comm, micro, clip, &res[r]);
      res[r].reduces = comm.reduces;
    });
  for (auto& t : th) t.join();
  const lm::ParamShards sh = lm::MakeParamShards(lm::MakeParamLayout(c), ranks);
  const size_t steps = one.losses.size();
  for (int r = 0; r < ranks; r++) {
    // One reduction a bucket a step (embedding, each layer, final norm and
    // head), all started in the backward pass.
    CHECK_EQ(res[r].reduces, (int)steps * (c.n_layers + 2));
    CHECK(res[r].params == res[0].params);
    for (size_t s = 0; s < steps; s++)
      CHECK_NEAR(res[r].norms[s], one.norms[s], 1e-5 * one.norms[s]);
    const float* m1 = one.m.data() + sh.lo(r);
    const float* v1 = one.v.data() + sh.lo(r);
    if (micro == 1) CHECK(res[r].losses == one.losses);
    if (micro == 1 && !c.tied_embeddings) {
      CHECK(res[r].params == one.params);
      CHECK(std::equal(m1, m1 + sh.count(r), res[r].m.begin()));
      CHECK(std::equal(v1, v1 + sh.count(r), res[r].v.begin()));
      continue;
    }
    for (size_t s = 0; s < steps; s++)
      CHECK_NEAR(res[r].losses[s], one.losses[s], 1e-6 * one.losses[s]);
    CHECK_REL(res[r].params.data(), one.params.data(), one.params.size(), 1e-4, "weights");
    CHECK_REL(res[r].m.data(), m1, sh.count(r), 1e-3, "AdamW m");
    CHECK_REL(res[r].v.data(), v1, sh.count(r), 1e-3, "AdamW v");
  }
}

}  // namespace

TEST(two_emulated_gpus_sharded_match_one) {
  g_cudnn = FakeCudnn::kNoLibrary;
  CheckRanksMatchOne(Tiny(false, 2), 2, 1);
  CheckRanksMatchOne(Tiny(true, 1), 2, 1);
  CheckRanksMatchOne(Tiny(false, 2), 2, 2);
  CheckRanksMatchOne(Tiny(true, 1), 2, 2);
}
TEST(three_emulated_gpus_sharded_match_one) {
  g_cudnn = FakeCudnn::kNoLibrary;
  CheckRanksMatchOne(Tiny(false, 1), 3, 1);
  CheckRanksMatchOne(Tiny(false, 1), 3, 2);
}

TEST(peak_flops_table_and_override) {
  CHECK_EQ(lm::cuda::PeakFlopsForName("NVIDIA H200"), 989e12);
  CHECK_EQ(lm::cuda::PeakFlopsForName("NVIDIA H100 80GB HBM3"), 989e12);
  CHECK_EQ(lm::cuda::PeakFlopsForName("NVIDIA A100-SXM4-40GB"), 312e12);
  CHECK_EQ(lm::cuda::PeakFlopsForName("NVIDIA H100 PCIe"), 756e12);
  CHECK_EQ(lm::cuda::PeakFlopsForName("NVIDIA GeForce RTX 3090"), 71e12);
  CHECK_EQ(lm::cuda::PeakFlopsForName("NVIDIA GeForce RTX 4090"), 165.2e12);
  CHECK_EQ(lm::cuda::PeakFlopsForName("NVIDIA L40S"), 362.05e12);
  CHECK_EQ(lm::cuda::PeakFlopsForName("NVIDIA L4"), 121e12);
  CHECK_EQ(lm::cuda::PeakFlopsForName("NVIDIA A10"), 125e12);
  CHECK_EQ(lm::cuda::PeakFlopsForName("NVIDIA RTX A6000"), 154.8e12);
  CHECK_EQ(lm::cuda::PeakFlopsForName("NVIDIA B200"), 2250e12);
  CHECK_EQ(lm::cuda::PeakFlopsForName("NVIDIA A40"), 149.7e12);
  CHECK_EQ(lm::cuda::PeakFlopsForName("NVIDIA RTX A4000"), 0.0);  // not the A40
  CHECK_EQ(lm::cuda::PeakFlopsForName("NVIDIA GH200 480GB"), 989e12);
  CHECK_EQ(lm::cuda::PeakFlopsForName("Tesla V100-SXM2-16GB"), 0.0);
  std::unique_ptr<lm::Backend> gpu;
  CHECK_OK(lm::NewCudaBackend(&gpu));
  CHECK_EQ(gpu->PeakFlops(), 0.0);  // "Emulated GPU" is not in the table: unknown
  setenv("LM_PEAK_FLOPS", "500T", 1);
  CHECK_EQ(gpu->PeakFlops(), 500e12);
  setenv("LM_PEAK_FLOPS", "bogus", 1);
  CHECK_EQ(gpu->PeakFlops(), 0.0);  // never a made-up figure
  unsetenv("LM_PEAK_FLOPS");
}

TEST_MAIN()
