// kernel_check.cpp: bin/lm-kernel-check, every CUDA kernel of common/cuda/
// against its CPU twin in common/cpu/ops.h, then the whole model on both
// backends (gradients of one step, logits, decoding, and 50 training steps from
// the same initialization).
//
// Each check draws fresh random inputs (the seed is printed; --seed repeats a
// run), rounds to bf16 the inputs that the GPU reads in bf16 and gives the CPU
// the same rounded values, fills every GPU output with NaN before the kernel
// runs (an element left unwritten fails), checks every CUDA call and launch, and
// prints one line: kernel, shape, max error over max |ref|, ||got - ref|| / ||ref||,
// tolerance, PASS/FAIL. Tolerances follow the device notes' METHOD.md: outputs
// stored in bf16 (8-bit mantissa) pass at a norm-wise error up to 1e-2, fp32
// arithmetic at 1e-4 or tighter.
//
// Exit status: 0 all passed; 1 a check failed or a CUDA call failed; 2 bad
// usage; 77 no CUDA GPU is visible (nothing was run on a device; the host-only
// checks still ran and passed).
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cpu/backend_cpu.h"
#include "cpu/muon.h"
#include "cpu/ops.h"
#include "cuda/check.h"
#include "cuda/cuda_backend.h"
#include "cuda/cudnn_attention.h"
#include "cuda/kernels.h"
#include "cuda/matmul.h"
#include "cuda/muon_step.h"
#include "model/config.h"
#include "model/params.h"
#include "tests/gpu/attention_case.h"
#include "util/cli.h"

using lm::Status;
using lm::cuda::bf16;

namespace {

constexpr int kExitNoGpu = 77;

int g_failed = 0, g_passed = 0;
std::mt19937_64 g_rng;
// The legacy default stream: the plain cudaMemcpy and cudaMemset calls below are
// ordered with the kernels without further synchronization.
cudaStream_t g_s = 0;

// --- host helpers ------------------------------------------------------------
float RoundBf16(float x) {
  return __bfloat162float(__float2bfloat16(x));
}

std::vector<float> Randn(size_t n, float scale = 1.f) {
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g_rng);
  return v;
}
std::vector<float> RoundedRandn(size_t n, float scale = 1.f) {
  std::vector<float> v = Randn(n, scale);
  for (auto& x : v) x = RoundBf16(x);
  return v;
}
std::vector<int32_t> RandIds(size_t n, int lo, int hi) {
  std::uniform_int_distribution<int> d(lo, hi - 1);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = d(g_rng);
  return v;
}
std::vector<bf16> ToBf16(const std::vector<float>& v) {
  std::vector<bf16> o(v.size());
  for (size_t i = 0; i < v.size(); i++) o[i] = __float2bfloat16(v[i]);
  return o;
}
std::vector<float> FromBf16(const std::vector<bf16>& v) {
  std::vector<float> o(v.size());
  for (size_t i = 0; i < v.size(); i++) o[i] = __bfloat162float(v[i]);
  return o;
}

// One result line. Errors are relative to the reference's scale: max |got-ref|
// over max |ref|, and the norm-wise ||got-ref|| / ||ref||. NaN never passes.
bool Report(const std::string& name, const std::string& shape, const float* got, const float* ref,
            size_t n, double tol) {
  double max_err = 0, max_ref = 0, se = 0, sr = 0;
  size_t nan_at = n;
  for (size_t i = 0; i < n; i++) {
    double g = got[i], r = ref[i];
    if (!std::isfinite(g) && nan_at == n) nan_at = i;
    double e = std::fabs(g - r);
    max_err = std::max(max_err, e);
    max_ref = std::max(max_ref, std::fabs(r));
    se += e * e;
    sr += r * r;
  }
  double max_rel = max_ref > 0 ? max_err / max_ref : max_err;
  double norm_rel = sr > 0 ? std::sqrt(se / sr) : std::sqrt(se);
  // The element-wise bound is looser than the norm-wise one: single elements
  // near a rounding boundary carry a few bf16 ulps.
  bool ok = nan_at == n && norm_rel <= tol && max_rel <= 4 * tol;
  printf("%-26s %-34s max_rel %9.2e  norm_rel %9.2e  tol %7.0e  %s", name.c_str(), shape.c_str(),
         max_rel, norm_rel, tol, ok ? "PASS" : "FAIL");
  if (nan_at != n) printf("  (non-finite or unwritten at %zu)", nan_at);
  printf("\n");
  fflush(stdout);
  (ok ? g_passed : g_failed)++;
  return ok;
}
bool Report(const std::string& name, const std::string& shape, const std::vector<float>& got,
            const std::vector<float>& ref, double tol) {
  if (got.size() != ref.size()) {
    printf("%-26s %-34s FAIL (size %zu vs %zu)\n", name.c_str(), shape.c_str(), got.size(),
           ref.size());
    g_failed++;
    return false;
  }
  return Report(name, shape, got.data(), ref.data(), got.size(), tol);
}
void Verdict(const std::string& name, const std::string& shape, bool ok, const std::string& what) {
  printf("%-26s %-34s %s  %s\n", name.c_str(), shape.c_str(), what.c_str(), ok ? "PASS" : "FAIL");
  fflush(stdout);
  (ok ? g_passed : g_failed)++;
}

std::string Shape(std::initializer_list<std::pair<const char*, long long>> kv) {
  std::string s;
  for (auto& p : kv)
    s += (s.empty() ? "" : " ") + std::string(p.first) + "=" + std::to_string(p.second);
  return s;
}

// --- device buffers: allocated, poisoned with NaN (all bits set) ----------------
template <typename T>
class Dev {
 public:
  ~Dev() {
    if (p_) cudaFree(p_);
  }
  Status Alloc(size_t n) {
    n_ = n;
    LM_CUDA_RETURN(cudaMalloc(reinterpret_cast<void**>(&p_), std::max<size_t>(n, 1) * sizeof(T)));
    return Poison();
  }
  Status Poison() {
    LM_CUDA_RETURN(cudaMemset(p_, 0xFF, std::max<size_t>(n_, 1) * sizeof(T)));
    return Status::OK();
  }
  Status Put(const std::vector<T>& v) {
    if (!p_) LM_RETURN_IF_ERROR(Alloc(v.size()));
    if (v.size() != n_) return Status::Invalid("Dev::Put: size mismatch");
    LM_CUDA_RETURN(cudaMemcpy(p_, v.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
    return Status::OK();
  }
  Status Get(std::vector<T>* v) const {
    LM_CUDA_RETURN(cudaStreamSynchronize(g_s));
    v->resize(n_);
    LM_CUDA_RETURN(cudaMemcpy(v->data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return Status::OK();
  }
  T* p() const { return p_; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

Status GetF(const Dev<bf16>& d, std::vector<float>* out) {
  std::vector<bf16> t;
  LM_RETURN_IF_ERROR(d.Get(&t));
  *out = FromBf16(t);
  return Status::OK();
}

// --- kernels -------------------------------------------------------------------
Status CheckConvert(int64_t n) {
  std::vector<float> x = Randn(n, 3.f);
  Dev<float> dx;
  Dev<bf16> dy;
  LM_RETURN_IF_ERROR(dx.Put(x));
  LM_RETURN_IF_ERROR(dy.Alloc(n));
  LM_RETURN_IF_ERROR(lm::cuda::f32_to_bf16(dx.p(), dy.p(), n, g_s));
  std::vector<float> got, ref(n);
  LM_RETURN_IF_ERROR(GetF(dy, &got));
  for (int64_t i = 0; i < n; i++) ref[i] = RoundBf16(x[i]);
  Report("f32_to_bf16", Shape({{"n", n}}), got, ref, 0.0);
  return Status::OK();
}

Status CheckEmbedding(int N, int C, int V) {
  std::vector<float> table = Randn((size_t)V * C);
  std::vector<int32_t> ids = RandIds(N, 0, std::max(1, V / 8));  // repeats: atomics collide
  Dev<float> dt, dout, dtab;
  Dev<int32_t> di;
  LM_RETURN_IF_ERROR(dt.Put(table));
  LM_RETURN_IF_ERROR(di.Put(ids));
  LM_RETURN_IF_ERROR(dout.Alloc((size_t)N * C));
  LM_RETURN_IF_ERROR(lm::cuda::embedding_forward(dout.p(), di.p(), dt.p(), N, C, g_s));
  std::vector<float> got, ref((size_t)N * C);
  LM_RETURN_IF_ERROR(dout.Get(&got));
  lm::cpu::embedding_forward(ref.data(), ids.data(), table.data(), N, C);
  std::string sh = Shape({{"N", N}, {"C", C}, {"V", V}});
  Report("embedding_forward", sh, got, ref, 0.0);

  std::vector<float> g = Randn((size_t)N * C), acc = Randn((size_t)V * C);
  std::vector<int32_t> plan(lm::cuda::embedding_backward_plan_size(N));
  int distinct = 0;
  lm::cuda::embedding_backward_plan(ids.data(), N, plan.data(), &distinct);
  Dev<int32_t> dplan;
  LM_RETURN_IF_ERROR(dplan.Put(plan));
  LM_RETURN_IF_ERROR(dout.Put(g));
  std::vector<float> runs[2];
  for (auto& got2 : runs) {             // twice: the same bits (no atomics)
    LM_RETURN_IF_ERROR(dtab.Put(acc));  // accumulates onto existing values
    LM_RETURN_IF_ERROR(
        lm::cuda::embedding_backward(dtab.p(), dout.p(), dplan.p(), N, distinct, C, g_s));
    LM_RETURN_IF_ERROR(dtab.Get(&got2));
  }
  lm::cpu::embedding_backward(acc.data(), g.data(), ids.data(), N, C);
  Report("embedding_backward", sh, runs[0], acc, 1e-6);
  Verdict("embedding_backward twice", sh, runs[0] == runs[1],
          runs[0] == runs[1] ? "same bits" : "results differ");
  return Status::OK();
}

Status CheckRmsnorm(int N, int C) {
  const float eps = 1e-5f;
  std::vector<float> x = Randn((size_t)N * C, 2.f), w = Randn(C, 0.5f);
  for (auto& v : w) v += 1.f;
  Dev<float> dx, dw, drstd, ddout, ddx, ddw;
  Dev<bf16> dout;
  LM_RETURN_IF_ERROR(dx.Put(x));
  LM_RETURN_IF_ERROR(dw.Put(w));
  LM_RETURN_IF_ERROR(dout.Alloc((size_t)N * C));
  LM_RETURN_IF_ERROR(drstd.Alloc(N));
  LM_RETURN_IF_ERROR(
      lm::cuda::rmsnorm_forward(dout.p(), drstd.p(), dx.p(), dw.p(), N, C, eps, g_s));
  std::vector<float> out, rstd, ref_out((size_t)N * C), ref_rstd(N);
  LM_RETURN_IF_ERROR(GetF(dout, &out));
  LM_RETURN_IF_ERROR(drstd.Get(&rstd));
  lm::cpu::rmsnorm_forward(ref_out.data(), ref_rstd.data(), x.data(), w.data(), N, C, eps);
  std::string sh = Shape({{"N", N}, {"C", C}});
  Report("rmsnorm_forward out", sh, out, ref_out, 1e-2);
  Report("rmsnorm_forward rstd", sh, rstd, ref_rstd, 1e-5);

  // Once adding to dx and dw, once writing them (twice: the same bits); each
  // run also writes dx's bf16 copy.
  std::vector<float> g = Randn((size_t)N * C);
  Dev<float> dscratch;
  Dev<bf16> ddx16;
  LM_RETURN_IF_ERROR(ddout.Put(g));
  LM_RETURN_IF_ERROR(dscratch.Alloc(lm::cuda::rmsnorm_backward_scratch(C)));
  LM_RETURN_IF_ERROR(ddx16.Alloc((size_t)N * C));
  for (int run = 0; run < 2; run++) {
    const bool accumulate = run == 0;
    std::vector<float> dx0 = Randn((size_t)N * C), dw0 = Randn(C);
    LM_RETURN_IF_ERROR(ddx.Put(dx0));
    LM_RETURN_IF_ERROR(ddw.Put(dw0));
    if (!accumulate) {
      LM_RETURN_IF_ERROR(ddx.Poison());
      LM_RETURN_IF_ERROR(ddw.Poison());
      std::fill(dx0.begin(), dx0.end(), 0.f);
      std::fill(dw0.begin(), dw0.end(), 0.f);
    }
    LM_RETURN_IF_ERROR(ddx16.Poison());
    lm::cuda::RmsnormBackward a(ddout.p(), dx.p(), dw.p(), drstd.p(), N, C, dscratch.p());
    a.dx = ddx.p();
    a.dx16 = ddx16.p();
    a.dw = ddw.p();
    a.accumulate_dx = a.accumulate_dw = accumulate;
    LM_RETURN_IF_ERROR(lm::cuda::rmsnorm_backward(a, g_s));
    std::vector<float> gdx, gdw, gdx16;
    LM_RETURN_IF_ERROR(ddx.Get(&gdx));
    LM_RETURN_IF_ERROR(ddw.Get(&gdw));
    LM_RETURN_IF_ERROR(GetF(ddx16, &gdx16));
    // The CPU backward gets the GPU's rstd so that only the backward is measured.
    lm::cpu::rmsnorm_backward(dx0.data(), dw0.data(), g.data(), x.data(), w.data(), rstd.data(), N,
                              C);
    const std::string mode = accumulate ? "" : " written";
    Report("rmsnorm_backward dx" + mode, sh, gdx, dx0, 1e-4);
    Report("rmsnorm_backward dw" + mode, sh, gdw, dw0, 1e-4);
    for (auto& v : gdx) v = RoundBf16(v);
    Report("rmsnorm_backward dx16" + mode, sh, gdx16, gdx, 0.0);
    if (!accumulate) {
      // Written twice from the same inputs: the same bits (dw without atomics).
      LM_RETURN_IF_ERROR(lm::cuda::rmsnorm_backward(a, g_s));
      std::vector<float> again;
      LM_RETURN_IF_ERROR(ddw.Get(&again));
      Verdict("rmsnorm_backward twice", sh, again == gdw,
              again == gdw ? "same bits" : "dw differs");
    }
  }
  return Status::OK();
}

Status CheckMatmul(lm::cuda::Matmul* mm, int N, int IC, int OC) {
  std::vector<float> x = RoundedRandn((size_t)N * IC), w = RoundedRandn((size_t)OC * IC, 0.05f);
  std::vector<float> res = Randn((size_t)N * OC);
  Dev<bf16> dx, dw, dy16;
  Dev<float> dy32, dres, ddx, ddw;
  LM_RETURN_IF_ERROR(dx.Put(ToBf16(x)));
  LM_RETURN_IF_ERROR(dw.Put(ToBf16(w)));
  LM_RETURN_IF_ERROR(dy16.Alloc((size_t)N * OC));
  LM_RETURN_IF_ERROR(dy32.Alloc((size_t)N * OC));
  LM_RETURN_IF_ERROR(dres.Put(res));
  std::string sh = Shape({{"N", N}, {"IC", IC}, {"OC", OC}});
  std::vector<float> ref((size_t)N * OC), got;
  lm::cpu::matmul_forward(ref.data(), x.data(), w.data(), N, IC, OC);

  LM_RETURN_IF_ERROR(mm->Linear(dx.p(), dw.p(), N, IC, OC, dy16.p(), lm::cuda::OutType::kBF16));
  LM_RETURN_IF_ERROR(GetF(dy16, &got));
  Report("matmul_forward bf16", sh, got, ref, 1e-2);

  // y = res + x W^T into a separate output: the fused residual add.
  LM_RETURN_IF_ERROR(
      mm->Linear(dx.p(), dw.p(), N, IC, OC, dy32.p(), lm::cuda::OutType::kF32, 1.f, dres.p()));
  LM_RETURN_IF_ERROR(dy32.Get(&got));
  std::vector<float> ref_res((size_t)N * OC);
  lm::cpu::residual_forward(ref_res.data(), ref.data(), res.data(), (int64_t)N * OC);
  Report("matmul_forward +residual", sh, got, ref_res, 1e-4);

  std::vector<float> dout = RoundedRandn((size_t)N * OC);
  LM_RETURN_IF_ERROR(dy16.Put(ToBf16(dout)));
  std::vector<float> rdx((size_t)N * IC, 0.f), rdw = Randn((size_t)OC * IC);
  std::vector<float> dw0 = rdw;
  LM_RETURN_IF_ERROR(ddx.Alloc((size_t)N * IC));
  LM_RETURN_IF_ERROR(ddw.Put(dw0));
  LM_RETURN_IF_ERROR(
      mm->LinearBackData(dy16.p(), dw.p(), N, IC, OC, ddx.p(), lm::cuda::OutType::kF32));
  LM_RETURN_IF_ERROR(mm->LinearBackWeight(dy16.p(), dx.p(), N, IC, OC, ddw.p()));
  lm::cpu::matmul_backward(rdx.data(), rdw.data(), dout.data(), x.data(), w.data(), N, IC, OC);
  std::vector<float> gdx, gdw;
  LM_RETURN_IF_ERROR(ddx.Get(&gdx));
  LM_RETURN_IF_ERROR(ddw.Get(&gdw));
  Report("matmul_backward dx", sh, gdx, rdx, 1e-4);
  Report("matmul_backward dw (+=)", sh, gdw, rdw, 1e-4);
  return Status::OK();
}

// x rows of `stride` values; the first nh heads of hd are rotated, the rest
// must come back untouched.
Status CheckRope(int B, int T, int nh, int hd, int pos0, int extra_heads) {
  const float theta = 10000.f;
  const int64_t stride = (int64_t)(nh + extra_heads) * hd;
  const int max_pos = pos0 + T + 3;
  std::vector<float> x = RoundedRandn((size_t)B * T * stride);
  std::vector<float> table((size_t)max_pos * hd);
  lm::cuda::rope_table_host(hd, max_pos, theta, table.data());
  Dev<float> dtab;
  Dev<bf16> dx;
  LM_RETURN_IF_ERROR(dtab.Put(table));
  LM_RETURN_IF_ERROR(dx.Put(ToBf16(x)));
  // CPU: the rotated heads as a contiguous (B,T,nh,hd) array.
  std::vector<float> q((size_t)B * T * nh * hd);
  for (int64_t r = 0; r < (int64_t)B * T; r++)
    memcpy(&q[r * nh * hd], &x[r * stride], sizeof(float) * nh * hd);
  std::string sh = Shape({{"B", B}, {"T", T}, {"nh", nh}, {"hd", hd}, {"pos0", pos0}});
  for (int pass = 0; pass < 2; pass++) {
    bool inverse = pass == 1;
    LM_RETURN_IF_ERROR(
        lm::cuda::rope_apply(dx.p(), B, T, stride, nh, hd, pos0, dtab.p(), max_pos, inverse, g_s));
    if (!inverse)
      lm::cpu::rope_forward(q.data(), B, T, nh, hd, pos0, theta);
    else
      lm::cpu::rope_backward(q.data(), B, T, nh, hd, pos0, theta);
    std::vector<float> got, ref = x;
    LM_RETURN_IF_ERROR(GetF(dx, &got));
    for (int64_t r = 0; r < (int64_t)B * T; r++)
      memcpy(&ref[r * stride], &q[r * nh * hd], sizeof(float) * nh * hd);
    Report(inverse ? "rope_backward" : "rope_forward", sh + (extra_heads ? " strided" : ""), got,
           ref, 1e-2);
    // Round the CPU's state like the GPU's bf16 storage before the next pass.
    for (auto& v : q) v = RoundBf16(v);
  }
  return Status::OK();
}

Status CheckSwiglu(int N, int F) {
  std::vector<float> gu = RoundedRandn((size_t)N * 2 * F, 2.f);
  std::vector<float> gate((size_t)N * F), up((size_t)N * F);
  for (int64_t r = 0; r < N; r++)
    for (int c = 0; c < F; c++) {
      gate[r * F + c] = gu[r * 2 * F + c];
      up[r * F + c] = gu[r * 2 * F + F + c];
    }
  Dev<bf16> dgu, dh, ddh, ddgu;
  LM_RETURN_IF_ERROR(dgu.Put(ToBf16(gu)));
  LM_RETURN_IF_ERROR(dh.Alloc((size_t)N * F));
  LM_RETURN_IF_ERROR(lm::cuda::swiglu_forward(dh.p(), dgu.p(), N, F, g_s));
  std::vector<float> got, ref((size_t)N * F);
  LM_RETURN_IF_ERROR(GetF(dh, &got));
  lm::cpu::swiglu_forward(ref.data(), gate.data(), up.data(), N, F);
  std::string sh = Shape({{"N", N}, {"F", F}});
  Report("swiglu_forward", sh, got, ref, 1e-2);

  std::vector<float> dout = RoundedRandn((size_t)N * F);
  LM_RETURN_IF_ERROR(ddh.Put(ToBf16(dout)));
  LM_RETURN_IF_ERROR(ddgu.Alloc((size_t)N * 2 * F));
  LM_RETURN_IF_ERROR(lm::cuda::swiglu_backward(ddgu.p(), ddh.p(), dgu.p(), N, F, g_s));
  std::vector<float> dg((size_t)N * F, 0.f), du((size_t)N * F, 0.f);
  lm::cpu::swiglu_backward(dg.data(), du.data(), dout.data(), gate.data(), up.data(), N, F);
  std::vector<float> ref2((size_t)N * 2 * F);
  for (int64_t r = 0; r < N; r++)
    for (int c = 0; c < F; c++) {
      ref2[r * 2 * F + c] = dg[r * F + c];
      ref2[r * 2 * F + F + c] = du[r * F + c];
    }
  LM_RETURN_IF_ERROR(GetF(ddgu, &got));
  Report("swiglu_backward", sh, got, ref2, 1e-2);
  return Status::OK();
}

// Keys grow with their position, so that later tiles raise the running maximum
// and the online softmax's rescaling is exercised (random keys rarely do that).
// Attention over separate q, k, v arrays (B,T,H,hd) / (B,T,KVH,hd), or, with
// fused, over one (B,T,H+2*KVH,hd) qkv array as the backend lays it out; the
// CPU twin's results, and the gradient buffers with q's, k's, v's strides.
struct AttnCase {
  int B, T, H, KVH, hd;
  bool fused;
  int64_t qd, kvd, row;
  std::string sh;
  std::vector<float> q, k, v, out, lse, g, rq, rk, rv;  // inputs, twin's results
  Dev<bf16> dq, dk, dv, dqkv, dout, ddout, ddq, ddk, ddv, ddqkv;
  Dev<float> dlse, ddelta;
  lm::cuda::AttentionArgs a;
  bf16 *pq = nullptr, *pk = nullptr, *pv = nullptr;  // dq, dk, dv

  Status Setup(int B_, int T_, int H_, int KVH_, int hd_, bool fused_);
  Status PoisonGrads();
  Status Grads(std::vector<float>* gq, std::vector<float>* gk, std::vector<float>* gv);
  void ReportGrads(const std::string& prefix);
};

Status AttnCase::Setup(int B_, int T_, int H_, int KVH_, int hd_, bool fused_) {
  B = B_, T = T_, H = H_, KVH = KVH_, hd = hd_, fused = fused_;
  qd = (int64_t)H * hd, kvd = (int64_t)KVH * hd, row = qd + 2 * kvd;
  q = RoundedRandn((size_t)B * T * qd), k = RoundedRandn((size_t)B * T * kvd);
  v = RoundedRandn((size_t)B * T * kvd);
  lm_test::GrowKeys(&k, B, T, kvd);
  sh = Shape({{"B", B}, {"T", T}, {"H", H}, {"KVH", KVH}, {"hd", hd}}) + (fused ? " qkv" : "");
  a.B = B;
  a.Tq = a.Tk = T;
  a.heads = H;
  a.kv_heads = KVH;
  a.head_dim = hd;
  if (fused) {
    LM_RETURN_IF_ERROR(dqkv.Put(ToBf16(lm_test::PackQkv(q, k, v, (int64_t)B * T, qd, kvd))));
    a.q = dqkv.p(), a.k = dqkv.p() + qd, a.v = dqkv.p() + qd + kvd;
    a.q_rstride = a.kv_rstride = row;
    LM_RETURN_IF_ERROR(ddqkv.Alloc((size_t)B * T * row));
    pq = ddqkv.p(), pk = ddqkv.p() + qd, pv = ddqkv.p() + qd + kvd;
  } else {
    LM_RETURN_IF_ERROR(dq.Put(ToBf16(q)));
    LM_RETURN_IF_ERROR(dk.Put(ToBf16(k)));
    LM_RETURN_IF_ERROR(dv.Put(ToBf16(v)));
    a.q = dq.p(), a.k = dk.p(), a.v = dv.p();
    a.q_rstride = qd;
    a.kv_rstride = kvd;
    LM_RETURN_IF_ERROR(ddq.Alloc((size_t)B * T * qd));
    LM_RETURN_IF_ERROR(ddk.Alloc((size_t)B * T * kvd));
    LM_RETURN_IF_ERROR(ddv.Alloc((size_t)B * T * kvd));
    pq = ddq.p(), pk = ddk.p(), pv = ddv.p();
  }
  a.q_bstride = (int64_t)T * a.q_rstride;
  a.kv_bstride = (int64_t)T * a.kv_rstride;
  LM_RETURN_IF_ERROR(dout.Alloc((size_t)B * T * qd));
  LM_RETURN_IF_ERROR(dlse.Alloc((size_t)B * H * T));
  LM_RETURN_IF_ERROR(ddelta.Alloc((size_t)B * H * T));
  a.out = dout.p();
  a.o_rstride = qd;
  a.o_bstride = (int64_t)T * qd;
  a.lse2 = dlse.p();
  out.resize((size_t)B * T * qd);
  lse.resize((size_t)B * H * T);
  lm::cpu::attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), B, T, H, KVH,
                             hd);
  // Backward, from the CPU's own forward results (the GPU uses its bf16 out).
  g = RoundedRandn((size_t)B * T * qd);
  LM_RETURN_IF_ERROR(ddout.Put(ToBf16(g)));
  rq.assign((size_t)B * T * qd, 0.f), rk.assign((size_t)B * T * kvd, 0.f);
  rv.assign((size_t)B * T * kvd, 0.f);
  lm::cpu::attention_backward(rq.data(), rk.data(), rv.data(), g.data(), out.data(), lse.data(),
                              q.data(), k.data(), v.data(), B, T, H, KVH, hd);
  return Status::OK();
}

Status AttnCase::PoisonGrads() {
  if (fused) return ddqkv.Poison();
  LM_RETURN_IF_ERROR(ddq.Poison());
  LM_RETURN_IF_ERROR(ddk.Poison());
  return ddv.Poison();
}

Status AttnCase::Grads(std::vector<float>* gq, std::vector<float>* gk, std::vector<float>* gv) {
  if (!fused) {
    LM_RETURN_IF_ERROR(GetF(ddq, gq));
    LM_RETURN_IF_ERROR(GetF(ddk, gk));
    return GetF(ddv, gv);
  }
  std::vector<float> all;
  LM_RETURN_IF_ERROR(GetF(ddqkv, &all));
  gq->resize(rq.size());
  gk->resize(rk.size());
  gv->resize(rv.size());
  for (int64_t r = 0; r < (int64_t)B * T; r++) {
    memcpy(&(*gq)[r * qd], &all[r * row], sizeof(float) * qd);
    memcpy(&(*gk)[r * kvd], &all[r * row + qd], sizeof(float) * kvd);
    memcpy(&(*gv)[r * kvd], &all[r * row + qd + kvd], sizeof(float) * kvd);
  }
  return Status::OK();
}

void AttnCase::ReportGrads(const std::string& prefix) {
  std::vector<float> gq, gk, gv;
  Status st = Grads(&gq, &gk, &gv);
  if (!st.ok()) {
    Verdict(prefix, sh, false, st.ToString());
    return;
  }
  Report(prefix + " dq", sh, gq, rq, 1e-2);
  Report(prefix + " dk", sh, gk, rk, 1e-2);
  Report(prefix + " dv", sh, gv, rv, 1e-2);
}

Status CheckAttention(int B, int T, int H, int KVH, int hd, bool fused) {
  AttnCase c;
  LM_RETURN_IF_ERROR(c.Setup(B, T, H, KVH, hd, fused));
  // Both implementations; the tensor-core one (the default) feeds the backward.
  for (auto impl : {lm::cuda::AttnImpl::kScalar, lm::cuda::AttnImpl::kTensorCore}) {
    const bool tc = impl == lm::cuda::AttnImpl::kTensorCore;
    LM_RETURN_IF_ERROR(c.dout.Poison());
    LM_RETURN_IF_ERROR(c.dlse.Poison());
    LM_RETURN_IF_ERROR(lm::cuda::attention_forward(c.a, g_s, impl));
    std::vector<float> got, glse;
    LM_RETURN_IF_ERROR(GetF(c.dout, &got));
    LM_RETURN_IF_ERROR(c.dlse.Get(&glse));
    for (auto& x : glse) x *= 0.6931471805599453f;  // base 2 -> natural
    Report(tc ? "attention_fwd_tc out" : "attention_forward out", c.sh, got, c.out, 1e-2);
    // The tensor-core path sums the bf16-rounded probabilities that P V uses.
    Report(tc ? "attention_fwd_tc lse" : "attention_forward lse", c.sh, glse, c.lse,
           tc ? 1e-3 : 1e-4);
  }
  for (auto impl : {lm::cuda::AttnImpl::kScalar, lm::cuda::AttnImpl::kTensorCore}) {
    LM_RETURN_IF_ERROR(c.PoisonGrads());
    LM_RETURN_IF_ERROR(
        lm::cuda::attention_backward(c.a, c.ddout.p(), c.pq, c.pk, c.pv, c.ddelta.p(), g_s, impl));
    c.ReportGrads(impl == lm::cuda::AttnImpl::kTensorCore ? "attention_bwd_tc"
                                                          : "attention_backward");
  }
  return Status::OK();
}

// cuDNN's fused attention (cudnn_attention.h) against the same twin: the
// inference graph, the training graph with its statistics (natural log), and
// the backward graph, run twice (deterministic: the same bits).
Status CheckAttentionCudnn(lm::cuda::CudnnAttention* sdpa, int B, int T, int H, int KVH, int hd,
                           bool fused) {
  AttnCase c;
  LM_RETURN_IF_ERROR(c.Setup(B, T, H, KVH, hd, fused));
  for (bool training : {false, true}) {
    LM_RETURN_IF_ERROR(c.dout.Poison());
    LM_RETURN_IF_ERROR(c.dlse.Poison());
    Status st = sdpa->Forward(c.a, training);
    if (!st.ok()) {
      Verdict("cudnn_attention forward", c.sh, false, st.ToString());
      return Status::OK();
    }
    std::vector<float> got, glse;
    LM_RETURN_IF_ERROR(GetF(c.dout, &got));
    Report(training ? "cudnn_attention_fwd out" : "cudnn_attention_inf out", c.sh, got, c.out,
           1e-2);
    if (!training) continue;
    LM_RETURN_IF_ERROR(c.dlse.Get(&glse));
    Report("cudnn_attention_fwd stats", c.sh, glse, c.lse, 1e-3);
  }
  std::vector<float> first[3], again[3];
  for (auto* into : {first, again}) {
    LM_RETURN_IF_ERROR(c.PoisonGrads());
    Status st = sdpa->Backward(c.a, c.ddout.p(), c.pq, c.pk, c.pv);
    if (!st.ok()) {
      Verdict("cudnn_attention backward", c.sh, false, st.ToString());
      return Status::OK();
    }
    LM_RETURN_IF_ERROR(c.Grads(&into[0], &into[1], &into[2]));
  }
  c.ReportGrads("cudnn_attention_bwd");
  const bool same = first[0] == again[0] && first[1] == again[1] && first[2] == again[2];
  Verdict("cudnn_attention_bwd twice", c.sh, same, same ? "same bits" : "results differ");
  return Status::OK();
}

// Decoding: Tq new queries at positions Tk-Tq.. against a cache of Tk keys.
Status CheckAttentionCached(int Tq, int Tk, int H, int KVH, int hd) {
  const int64_t qd = (int64_t)H * hd, kvd = (int64_t)KVH * hd;
  std::vector<float> q = RoundedRandn((size_t)Tq * qd), kc = RoundedRandn((size_t)Tk * kvd),
                     vc = RoundedRandn((size_t)Tk * kvd);
  lm_test::GrowKeys(&kc, 1, Tk, kvd);
  Dev<bf16> dq, dk, dv, dout;
  Dev<float> dlse;
  LM_RETURN_IF_ERROR(dq.Put(ToBf16(q)));
  LM_RETURN_IF_ERROR(dk.Put(ToBf16(kc)));
  LM_RETURN_IF_ERROR(dv.Put(ToBf16(vc)));
  LM_RETURN_IF_ERROR(dout.Alloc((size_t)Tq * qd));
  LM_RETURN_IF_ERROR(dlse.Alloc((size_t)H * Tq));
  lm::cuda::AttentionArgs a =
      lm_test::CachedAttentionArgs(Tq, Tk, H, KVH, hd, dq.p(), dk.p(), dv.p(), dout.p(), dlse.p());
  std::vector<float> ref((size_t)Tq * qd), got;
  lm::cpu::attention_forward_cached(ref.data(), q.data(), kc.data(), vc.data(), Tq, Tk, H, KVH, hd);
  for (auto impl : {lm::cuda::AttnImpl::kScalar, lm::cuda::AttnImpl::kTensorCore}) {
    LM_RETURN_IF_ERROR(dout.Poison());
    LM_RETURN_IF_ERROR(lm::cuda::attention_forward(a, g_s, impl));
    LM_RETURN_IF_ERROR(GetF(dout, &got));
    Report(impl == lm::cuda::AttnImpl::kScalar ? "attention_forward_cached"
                                               : "attention_fwd_tc cached",
           Shape({{"Tq", Tq}, {"Tk", Tk}, {"H", H}, {"KVH", KVH}, {"hd", hd}}), got, ref, 1e-2);
  }
  return Status::OK();
}

Status CheckCrossEntropy(int N, int V, int Vp) {
  std::vector<float> logits = Randn((size_t)N * Vp, 3.f);
  std::vector<int32_t> t = RandIds(N, 0, V);
  for (int i = 0; i < N; i += 5) t[i] = -1;  // ignored targets
  const float dloss = 0.37f / N;
  Dev<float> dl, dloss_out;
  Dev<int32_t> dt;
  Dev<bf16> dd;
  LM_RETURN_IF_ERROR(dl.Put(logits));
  LM_RETURN_IF_ERROR(dt.Put(t));
  LM_RETURN_IF_ERROR(dloss_out.Alloc(N));
  LM_RETURN_IF_ERROR(dd.Alloc((size_t)N * Vp));
  LM_RETURN_IF_ERROR(lm::cuda::cross_entropy_forward_backward(dloss_out.p(), dd.p(), dl.p(), dt.p(),
                                                              N, V, Vp, dloss, g_s));
  std::vector<float> rl(N), rd((size_t)N * Vp), gl, gd;
  lm::cpu::cross_entropy_forward_backward(rl.data(), rd.data(), logits.data(), t.data(), N, V, Vp,
                                          dloss);
  LM_RETURN_IF_ERROR(dloss_out.Get(&gl));
  LM_RETURN_IF_ERROR(GetF(dd, &gd));
  std::string sh = Shape({{"N", N}, {"V", V}, {"Vp", Vp}});
  Report("cross_entropy losses", sh, gl, rl, 1e-5);
  Report("cross_entropy dlogits", sh, gd, rd, 1e-2);
  // Forward only: dlogits null must leave the buffer alone.
  LM_RETURN_IF_ERROR(dloss_out.Poison());
  LM_RETURN_IF_ERROR(lm::cuda::cross_entropy_forward_backward(dloss_out.p(), nullptr, dl.p(),
                                                              dt.p(), N, V, Vp, 0.f, g_s));
  LM_RETURN_IF_ERROR(dloss_out.Get(&gl));
  Report("cross_entropy fwd-only", sh, gl, rl, 1e-5);

  // Training's form: bf16 logits, the gradient written over them.
  std::vector<bf16> z16 = ToBf16(logits);
  std::vector<float> zr = FromBf16(z16);
  lm::cpu::cross_entropy_forward_backward(rl.data(), rd.data(), zr.data(), t.data(), N, V, Vp,
                                          dloss);
  Dev<bf16> dz;
  LM_RETURN_IF_ERROR(dz.Put(z16));
  LM_RETURN_IF_ERROR(dloss_out.Poison());
  LM_RETURN_IF_ERROR(lm::cuda::cross_entropy_forward_backward(dloss_out.p(), dz.p(), dz.p(), dt.p(),
                                                              N, V, Vp, dloss, g_s));
  LM_RETURN_IF_ERROR(dloss_out.Get(&gl));
  LM_RETURN_IF_ERROR(GetF(dz, &gd));
  Report("cross_entropy bf16 losses", sh, gl, rl, 1e-5);
  Report("cross_entropy bf16 dlogits in place", sh, gd, rd, 1e-2);
  return Status::OK();
}

Status CheckOptimizer(int64_t n, int64_t t) {
  std::vector<float> p = Randn(n), g = Randn(n, 0.1f), m = Randn(n, 0.01f), v = Randn(n, 0.01f);
  for (auto& x : v) x = x * x;
  Dev<float> dp, dg, dm, dv;
  Dev<double> dsum, dpartial;
  Dev<bf16> dp16;
  LM_RETURN_IF_ERROR(dp.Put(p));
  LM_RETURN_IF_ERROR(dg.Put(g));
  LM_RETURN_IF_ERROR(dm.Put(m));
  LM_RETURN_IF_ERROR(dv.Put(v));
  LM_RETURN_IF_ERROR(dsum.Alloc(2));
  LM_RETURN_IF_ERROR(dpartial.Alloc(lm::cuda::sum_squares_scratch()));
  std::vector<double> s, s2;
  LM_RETURN_IF_ERROR(lm::cuda::sum_squares(dg.p(), n, dpartial.p(), dsum.p(), g_s));
  LM_RETURN_IF_ERROR(dsum.Get(&s));
  LM_RETURN_IF_ERROR(lm::cuda::sum_squares(dg.p(), n, dpartial.p(), dsum.p(), g_s));
  LM_RETURN_IF_ERROR(dsum.Get(&s2));
  double ref = lm::cpu::sum_squares(g.data(), n);
  float fs = (float)s[0], fr = (float)ref;
  std::string sh = Shape({{"n", n}, {"t", t}});
  Report("sum_squares", Shape({{"n", n}}), &fs, &fr, 1, 1e-5);
  Verdict("sum_squares twice", Shape({{"n", n}}), s[0] == s2[0],
          s[0] == s2[0] ? "same bits" : "results differ");
  // The kept-loss sum: acc += scale * sum(x), onto a value already there.
  LM_CUDA_RETURN(cudaMemset(dsum.p() + 1, 0, sizeof(double)));
  LM_RETURN_IF_ERROR(lm::cuda::sum_accumulate(dg.p(), n, 0.25, dpartial.p(), dsum.p() + 1, g_s));
  LM_RETURN_IF_ERROR(lm::cuda::sum_accumulate(dg.p(), n, 0.25, dpartial.p(), dsum.p() + 1, g_s));
  LM_RETURN_IF_ERROR(dsum.Get(&s));
  double plain = 0;
  for (int64_t i = 0; i < n; i++) plain += g[i];
  float fa = (float)s[1], fb = (float)(0.5 * plain);
  Report("sum_accumulate", Shape({{"n", n}}), &fa, &fb, 1, 1e-5);

  const float lr = 1e-3f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f, scale = 0.7f;
  LM_RETURN_IF_ERROR(dp16.Alloc(n));
  LM_RETURN_IF_ERROR(lm::cuda::adamw_update(dp.p(), dp16.p(), dg.p(), dm.p(), dv.p(), n, lr, b1, b2,
                                            eps, wd, t, scale, g_s));
  lm::cpu::adamw_update(p.data(), g.data(), m.data(), v.data(), n, lr, b1, b2, eps, wd, t, scale);
  std::vector<float> gp, gm, gv, gp16;
  LM_RETURN_IF_ERROR(dp.Get(&gp));
  LM_RETURN_IF_ERROR(dm.Get(&gm));
  LM_RETURN_IF_ERROR(dv.Get(&gv));
  LM_RETURN_IF_ERROR(GetF(dp16, &gp16));
  Report("adamw params", sh, gp, p, 1e-6);
  Report("adamw m", sh, gm, m, 1e-6);
  Report("adamw v", sh, gv, v, 1e-6);
  std::vector<float> p16(n);
  for (int64_t i = 0; i < n; i++) p16[i] = RoundBf16(p[i]);
  Report("adamw bf16 copy", sh, gp16, p16, 1e-2);
  return Status::OK();
}

// Muon's kernels against cpu/muon.h: the momentum with its sum of squares
// (the same bits twice), the normalisation into bf16, the update.
Status CheckMuonKernels(int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  const std::string sh = Shape({{"rows", rows}, {"cols", cols}});
  std::vector<float> w = Randn(n, 0.02f), g = Randn(n, 0.1f), m = Randn(n, 0.01f);
  Dev<float> dw, dg, dm, du;
  Dev<bf16> dx, dw16;
  Dev<double> dsum, dpartial;
  LM_RETURN_IF_ERROR(dg.Put(g));
  LM_RETURN_IF_ERROR(dm.Put(m));
  LM_RETURN_IF_ERROR(du.Alloc(n));
  LM_RETURN_IF_ERROR(dx.Alloc(n));
  LM_RETURN_IF_ERROR(dsum.Alloc(2));
  LM_RETURN_IF_ERROR(dpartial.Alloc(lm::cuda::sum_squares_scratch()));
  LM_RETURN_IF_ERROR(lm::cuda::muon_momentum(du.p(), dm.p(), dg.p(), n, 0.95f, true, 0.8f,
                                             dpartial.p(), dsum.p(), g_s));
  std::vector<float> ru(n), rm = m, gu, gm, gx;
  lm::cpu::muon_momentum(ru.data(), rm.data(), g.data(), n, 0.95f, true, 0.8f);
  LM_RETURN_IF_ERROR(du.Get(&gu));
  LM_RETURN_IF_ERROR(dm.Get(&gm));
  Report("muon_momentum update", sh, gu, ru, 1e-6);
  Report("muon_momentum buffer", sh, gm, rm, 1e-6);
  LM_RETURN_IF_ERROR(lm::cuda::sum_squares(du.p(), n, dpartial.p(), dsum.p() + 1, g_s));
  std::vector<double> sums;
  LM_RETURN_IF_ERROR(dsum.Get(&sums));
  float fs = (float)sums[0], fr = (float)lm::cpu::sum_squares(ru.data(), n);
  Report("muon_momentum sum of squares", sh, &fs, &fr, 1, 1e-5);
  Verdict("muon_momentum sum of squares = sum_squares", sh, sums[0] == sums[1],
          sums[0] == sums[1] ? "same bits" : "results differ");
  LM_RETURN_IF_ERROR(lm::cuda::ns_normalize(dx.p(), du.p(), n, dsum.p(), lm::cpu::kNsEps, g_s));
  std::vector<float> rx(n);
  lm::cpu::ns_normalize(rx.data(), ru.data(), n);
  LM_RETURN_IF_ERROR(GetF(dx, &gx));
  Report("ns_normalize (bf16)", sh, gx, rx, 1e-2);
  // The update kernel on its own, from the rounded normalised update.
  std::vector<float> rw = w, gw;
  LM_RETURN_IF_ERROR(dw.Put(w));
  LM_RETURN_IF_ERROR(dw16.Alloc(n));
  LM_RETURN_IF_ERROR(lm::cuda::muon_apply(dw.p(), dw16.p(), dx.p(), n, 0.02f, 0.1f, 1.5f, g_s));
  lm::cpu::muon_apply(rw.data(), gx.data(), n, 0.02f, 0.1f, 1.5f);
  LM_RETURN_IF_ERROR(dw.Get(&gw));
  Report("muon_apply", sh, gw, rw, 1e-6);
  return Status::OK();
}

// One Muon step of W through MuonStepDevice into *w (host), from w, g, m.
Status RunMuonStep(lm::cuda::Matmul* mm, int64_t rows, int64_t cols, const lm::MuonConfig& mc,
                   const std::vector<float>& g, const std::vector<float>& m,
                   std::vector<float>* w) {
  lm::ParamLayout one;
  lm::TensorInfo t;
  t.shape = {rows, cols};
  t.numel = (size_t)(rows * cols);
  one.tensors.push_back(t);
  lm::cuda::MuonScratch scratch;
  Status st = lm::cuda::AllocMuonScratch(
      one,
      [](void** p, size_t bytes) {
        LM_CUDA_RETURN(cudaMalloc(p, bytes));
        return Status::OK();
      },
      &scratch);
  Dev<float> dw, dg, dm;
  Dev<bf16> dw16;
  if (st.ok()) st = dw.Put(*w);
  if (st.ok()) st = dg.Put(g);
  if (st.ok()) st = dm.Put(m);
  if (st.ok()) st = dw16.Alloc(t.numel);
  if (st.ok())
    st = lm::cuda::MuonStepDevice(mm, scratch, dw.p(), dw16.p(), dg.p(), dm.p(), rows, cols, mc,
                                  0.8f, g_s);
  if (st.ok()) st = dw.Get(w);
  lm::cuda::FreeMuonScratch(&scratch);
  return st;
}

// The whole step, its Newton-Schulz iterations as bf16 cuBLASLt products,
// against cpu::muon_update's fp32 ones (compared by what moved), and the same
// bits on a second run.
Status CheckMuonStep(lm::cuda::Matmul* mm, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  const std::string sh = Shape({{"rows", rows}, {"cols", cols}});
  const std::vector<float> w = Randn(n, 0.02f), g = Randn(n, 0.1f), m = Randn(n, 0.01f);
  lm::MuonConfig mc;
  mc.lr = 0.02f;
  mc.weight_decay = 0.1f;
  std::vector<float> gw = w, gw2 = w;
  LM_RETURN_IF_ERROR(RunMuonStep(mm, rows, cols, mc, g, m, &gw));
  LM_RETURN_IF_ERROR(RunMuonStep(mm, rows, cols, mc, g, m, &gw2));
  Verdict("muon step twice", sh, gw == gw2, gw == gw2 ? "same bits" : "results differ");
  lm::cpu::MuonStep cs;
  cs.lr = mc.lr;
  cs.weight_decay = mc.weight_decay;
  cs.grad_scale = 0.8f;
  std::vector<float> rw = w, rm = m, scr(lm::cpu::newton_schulz_scratch((int)rows, (int)cols));
  lm::cpu::muon_update(rw.data(), g.data(), rm.data(), (int)rows, (int)cols, cs, scr.data());
  std::vector<float> dgot(n), dref(n);
  for (int64_t i = 0; i < n; i++) {
    dgot[i] = gw[i] - w[i];
    dref[i] = rw[i] - w[i];
  }
  // Five bf16 iterations: a few bf16 ulps of drift in the update's direction.
  Report("muon step (bf16 Newton-Schulz)", sh, dgot, dref, 3e-2);
  return Status::OK();
}

// --- the whole model -------------------------------------------------------------
std::vector<int32_t> Sequence(int n, int V, uint64_t seed) {
  // A learnable stream: mostly next = (3*prev + 1) mod V, sometimes random, so
  // that the loss falls well below log(V) within 50 steps.
  std::mt19937_64 r(seed);
  std::vector<int32_t> s(n);
  s[0] = (int32_t)(r() % V);
  for (int i = 1; i < n; i++)
    s[i] = (r() % 10 == 0) ? (int32_t)(r() % V) : (int32_t)((3 * (int64_t)s[i - 1] + 1) % V);
  return s;
}

struct ModelCase {
  const char* name;
  lm::ModelConfig cfg;
  int B, T;
  bool recompute;
  bool muon = false;  // train with Muon for the matrices (else AdamW throughout)
};

Status MakeBackends(const ModelCase& mc, bool training, std::unique_ptr<lm::Backend>* cpu,
                    std::unique_ptr<lm::Backend>* gpu, const std::vector<float>& init) {
  lm::BackendOptions o;
  o.max_batch = mc.B;
  o.max_seq = mc.T;
  o.training = training;
  o.recompute = mc.recompute;
  *cpu = lm::NewCpuBackend();
  LM_RETURN_IF_ERROR((*cpu)->Init(mc.cfg, o));
  LM_RETURN_IF_ERROR(lm::NewCudaBackend(gpu));
  LM_RETURN_IF_ERROR((*gpu)->Init(mc.cfg, o));
  LM_RETURN_IF_ERROR((*cpu)->SetParams(init.data()));
  LM_RETURN_IF_ERROR((*gpu)->SetParams(init.data()));
  return Status::OK();
}

Status CheckModel(const ModelCase& mc, int steps) {
  const lm::ModelConfig& c = mc.cfg;
  lm::ParamLayout layout = lm::MakeParamLayout(c);
  std::vector<float> init(layout.total);
  lm::InitParams(c, layout, g_rng(), init.data());
  std::unique_ptr<lm::Backend> cpu, gpu;
  LM_RETURN_IF_ERROR(MakeBackends(mc, true, &cpu, &gpu, init));
  const int B = mc.B, T = mc.T, N = B * T;
  std::string sh = std::string(mc.name) + Shape({{" B", B}, {"T", T}});

  // One step's gradients, tensor by tensor.
  std::vector<int32_t> seq = Sequence(N + 1, c.vocab_size, g_rng());
  std::vector<int32_t> in(seq.begin(), seq.begin() + N), tg(seq.begin() + 1, seq.end());
  tg[3] = -1;  // an ignored target
  float lc = 0, lg = 0;
  LM_RETURN_IF_ERROR(cpu->ZeroGrad());
  LM_RETURN_IF_ERROR(gpu->ZeroGrad());
  LM_RETURN_IF_ERROR(cpu->ForwardBackward(in.data(), tg.data(), B, T, 1.f, &lc));
  LM_RETURN_IF_ERROR(gpu->ForwardBackward(in.data(), tg.data(), B, T, 1.f, &lg));
  Report("model loss", sh, &lg, &lc, 1, 1e-2);
  std::vector<float> gc(layout.total), gg(layout.total);
  LM_RETURN_IF_ERROR(cpu->GetGrads(gc.data()));
  LM_RETURN_IF_ERROR(gpu->GetGrads(gg.data()));
  for (const lm::TensorInfo& t : layout.tensors) {
    // Layer 0 and the last layer stand for all of them.
    bool show = t.name.find("layers.") == std::string::npos ||
                t.name.find("layers.0.") != std::string::npos ||
                t.name.find("layers." + std::to_string(c.n_layers - 1) + ".") != std::string::npos;
    if (!show) continue;
    // Gradients pass through every bf16 activation of the network: a looser bound.
    Report("grad " + t.name, sh, gg.data() + t.offset, gc.data() + t.offset, t.numel, 3e-2);
  }

  // Logits and per-position losses, forward only.
  std::vector<float> logc((size_t)N * c.vocab_size), logg((size_t)N * c.vocab_size);
  LM_RETURN_IF_ERROR(cpu->ForwardLogits(in.data(), B, T, logc.data()));
  LM_RETURN_IF_ERROR(gpu->ForwardLogits(in.data(), B, T, logg.data()));
  Report("model logits", sh, logg, logc, 2e-2);
  std::vector<float> lsc(N), lsg(N);
  LM_RETURN_IF_ERROR(cpu->ForwardLoss(in.data(), tg.data(), B, T, lsc.data()));
  LM_RETURN_IF_ERROR(gpu->ForwardLoss(in.data(), tg.data(), B, T, lsg.data()));
  Report("model losses", sh, lsg, lsc, 1e-2);

  // Decoding: the prompt in one call, then tokens one by one.
  const int prompt = std::min(T - 4, 9);
  std::vector<float> dc(c.vocab_size), dg(c.vocab_size);
  LM_RETURN_IF_ERROR(cpu->ResetCache());
  LM_RETURN_IF_ERROR(gpu->ResetCache());
  LM_RETURN_IF_ERROR(cpu->Decode(in.data(), prompt, dc.data()));
  LM_RETURN_IF_ERROR(gpu->Decode(in.data(), prompt, dg.data()));
  Report("decode prompt logits", sh, dg, dc, 2e-2);
  for (int i = prompt; i < prompt + 3; i++) {
    LM_RETURN_IF_ERROR(cpu->Decode(in.data() + i, 1, dc.data()));
    LM_RETURN_IF_ERROR(gpu->Decode(in.data() + i, 1, dg.data()));
  }
  Report("decode step logits", sh + " pos=" + std::to_string(prompt + 3), dg, dc, 2e-2);
  Verdict("decode position", sh, gpu->CachePosition() == cpu->CachePosition(),
          std::to_string(gpu->CachePosition()) + " vs " + std::to_string(cpu->CachePosition()));

  // Training from the same start. bf16 and fp32 runs drift apart step by step,
  // so the 1% bound is on the mean loss of the last 10 steps; every single
  // step must stay within 5%.
  LM_RETURN_IF_ERROR(cpu->SetParams(init.data()));
  LM_RETURN_IF_ERROR(gpu->SetParams(init.data()));
  std::vector<float> zeros(layout.total, 0.f);
  LM_RETURN_IF_ERROR(cpu->SetOptimizerState(zeros.data(), zeros.data(), 0));
  LM_RETURN_IF_ERROR(gpu->SetOptimizerState(zeros.data(), zeros.data(), 0));
  lm::AdamWConfig opt;
  opt.lr = 3e-3f;
  opt.muon.enabled = mc.muon;
  opt.muon.lr = 0.02f;
  double worst = 0;
  int worst_step = 0;
  float first = 0;
  double tail_c = 0, tail_g = 0;
  const int tail = std::min(10, steps);
  uint64_t data_seed = g_rng();
  for (int step = 0; step < steps; step++) {
    std::vector<int32_t> s = Sequence(N + 1, c.vocab_size, data_seed + step);
    std::vector<int32_t> x(s.begin(), s.begin() + N), y(s.begin() + 1, s.end());
    float a = 0, b = 0, na = 0, nb = 0;
    bool sa = false, sb = false;
    LM_RETURN_IF_ERROR(cpu->ZeroGrad());
    LM_RETURN_IF_ERROR(gpu->ZeroGrad());
    // The GPU keeps its loss on the device until the optimizer step, as lm-train runs it.
    LM_RETURN_IF_ERROR(cpu->ForwardBackward(x.data(), y.data(), B, T, 1.f, &a));
    LM_RETURN_IF_ERROR(gpu->ForwardBackward(x.data(), y.data(), B, T, 1.f, nullptr));
    LM_RETURN_IF_ERROR(cpu->OptimizerStep(opt, &na, &sa));
    LM_RETURN_IF_ERROR(gpu->OptimizerStep(opt, &nb, &sb));
    LM_RETURN_IF_ERROR(gpu->StepLoss(&b));
    if (sb || !std::isfinite(b)) {
      Verdict("train " + std::to_string(steps) + " steps", sh, false,
              "GPU step " + std::to_string(step) + " skipped or non-finite");
      return Status::OK();
    }
    double rel = std::fabs((double)b - a) / std::max(1e-6, std::fabs((double)a));
    if (rel > worst) {
      worst = rel;
      worst_step = step;
    }
    if (step == 0) first = a;
    if (step >= steps - tail) {
      tail_c += a / tail;
      tail_g += b / tail;
    }
  }
  char buf[200];
  const double tail_rel = std::fabs(tail_g - tail_c) / std::max(1e-6, std::fabs(tail_c));
  snprintf(buf, sizeof buf,
           "loss %.3f -> last %d: cpu %.4f gpu %.4f (rel %.2e); worst step %d rel %.2e", first,
           tail, tail_c, tail_g, tail_rel, worst_step, worst);
  Verdict("train " + std::to_string(steps) + " steps", sh, tail_rel <= 0.01 && worst <= 0.05, buf);
  return Status::OK();
}

// Two GPU runs from the same weights and data give the same losses and
// weights to the bit (no floating-point atomics anywhere), with the products'
// algorithms fixed (LM_CUDA_GEMM_TUNE=0: the timing that picks them may choose
// differently from run to run).
Status CheckReproducible(const ModelCase& mc, int steps) {
  const lm::ModelConfig& c = mc.cfg;
  lm::ParamLayout layout = lm::MakeParamLayout(c);
  std::vector<float> init(layout.total), p[2];
  lm::InitParams(c, layout, g_rng(), init.data());
  const uint64_t data_seed = g_rng();
  const int B = mc.B, T = mc.T, N = B * T;
  std::vector<float> losses[2];
  setenv("LM_CUDA_GEMM_TUNE", "0", 1);
  for (int run = 0; run < 2; run++) {
    std::unique_ptr<lm::Backend> cpu, gpu;
    LM_RETURN_IF_ERROR(MakeBackends(mc, true, &cpu, &gpu, init));
    lm::AdamWConfig opt;
    opt.lr = 3e-3f;
    opt.muon.enabled = mc.muon;
    opt.muon.lr = 0.02f;
    for (int step = 0; step < steps; step++) {
      std::vector<int32_t> s = Sequence(N + 1, c.vocab_size, data_seed + step);
      float loss = 0, norm = 0;
      bool skipped = false;
      LM_RETURN_IF_ERROR(gpu->ZeroGrad());
      for (int m = 0; m < 2; m++)  // two micro-batches: the written, then the added gradients
        LM_RETURN_IF_ERROR(gpu->ForwardBackward(s.data(), s.data() + 1, B, T, 0.5f, nullptr));
      LM_RETURN_IF_ERROR(gpu->OptimizerStep(opt, &norm, &skipped));
      LM_RETURN_IF_ERROR(gpu->StepLoss(&loss));
      losses[run].push_back(loss);
      losses[run].push_back(norm);
    }
    p[run].resize(layout.total);
    LM_RETURN_IF_ERROR(gpu->GetParams(p[run].data()));
  }
  unsetenv("LM_CUDA_GEMM_TUNE");
  const bool same = losses[0] == losses[1] && p[0] == p[1];
  Verdict("two runs, same seed", std::string(mc.name) + " " + std::to_string(steps) + " steps",
          same, same ? "same losses, norms and weights to the bit" : "runs differ");
  return Status::OK();
}

// --- host-only checks (run without a GPU too) --------------------------------------
void CheckPeakTable() {
  struct Case {
    const char* name;
    double want;
  } cases[] = {{"NVIDIA H200", 989e12},           {"NVIDIA H100 80GB HBM3", 989e12},
               {"NVIDIA H100 PCIe", 756e12},      {"NVIDIA H100 NVL", 835e12},
               {"NVIDIA A100-SXM4-80GB", 312e12}, {"NVIDIA GeForce RTX 4090", 165.2e12},
               {"NVIDIA L40S", 362.05e12},        {"Tesla T4", 0}};
  bool ok = true;
  for (const Case& c : cases) ok = ok && lm::cuda::PeakFlopsForName(c.name) == c.want;
  Verdict("peak flops table", "8 device names", ok, ok ? "as documented" : "mismatch");
}

int Usage(const char* msg) {
  fprintf(stderr, "lm-kernel-check: %s\nusage: lm-kernel-check [--seed N] [--quick]\n", msg);
  return 2;
}

Status RunDeviceChecks(bool quick) {
  lm::cuda::Matmul mm;
  LM_RETURN_IF_ERROR(mm.Init(g_s));

  LM_RETURN_IF_ERROR(CheckConvert(1000003));
  LM_RETURN_IF_ERROR(CheckEmbedding(37, 67, 101));
  LM_RETURN_IF_ERROR(CheckEmbedding(1024, 768, 5000));
  LM_RETURN_IF_ERROR(CheckRmsnorm(33, 97));
  LM_RETURN_IF_ERROR(CheckRmsnorm(2048, 768));
  LM_RETURN_IF_ERROR(CheckRmsnorm(300, 3000));  // 4 warps a block, each with a dw row
  LM_RETURN_IF_ERROR(CheckRmsnorm(64, 13001));  // dw beyond the shared-memory path
  LM_RETURN_IF_ERROR(CheckMatmul(&mm, 37, 67, 45));
  {
    // An aligned product must run on cuBLASLt: a silent fall back to
    // cublasGemmEx there would cost speed everywhere in the model.
    int64_t before = mm.fallbacks();
    LM_RETURN_IF_ERROR(CheckMatmul(&mm, 512, 768, 2304));
    int64_t fell = mm.fallbacks() - before;
    Verdict("matmul cuBLASLt plan", "512x768x2304 (aligned)", fell == 0,
            fell == 0 ? "no fallback" : std::to_string(fell) + " fallbacks to cublasGemmEx");
  }
  LM_RETURN_IF_ERROR(CheckMatmul(&mm, 300, 1024, 1000));
  LM_RETURN_IF_ERROR(CheckRope(2, 17, 6, 16, 0, 0));
  LM_RETURN_IF_ERROR(CheckRope(3, 64, 12, 64, 100, 4));
  LM_RETURN_IF_ERROR(CheckRope(1, 33, 5, 128, 7, 2));
  LM_RETURN_IF_ERROR(CheckSwiglu(37, 71));
  LM_RETURN_IF_ERROR(CheckSwiglu(512, 2048));
  LM_RETURN_IF_ERROR(CheckAttention(2, 37, 4, 4, 16, false));
  LM_RETURN_IF_ERROR(CheckAttention(1, 130, 6, 2, 32, false));
  LM_RETURN_IF_ERROR(CheckAttention(2, 200, 12, 12, 64, true));
  LM_RETURN_IF_ERROR(CheckAttention(1, 100, 4, 1, 128, false));
  if (!quick) LM_RETURN_IF_ERROR(CheckAttention(2, 1024, 12, 12, 64, true));
  {
    std::unique_ptr<lm::cuda::CudnnAttention> sdpa;
    Status st = lm::cuda::CudnnAttention::Create(g_s, &sdpa);
    if (!st.ok()) {
      printf("cudnn_attention: not checked: %s\n", st.message().c_str());
    } else {
      printf("cudnn_attention: %s\n", sdpa->Version().c_str());
      LM_RETURN_IF_ERROR(CheckAttentionCudnn(sdpa.get(), 2, 37, 4, 4, 16, false));
      LM_RETURN_IF_ERROR(CheckAttentionCudnn(sdpa.get(), 1, 130, 6, 2, 32, false));
      LM_RETURN_IF_ERROR(CheckAttentionCudnn(sdpa.get(), 2, 200, 12, 12, 64, true));
      LM_RETURN_IF_ERROR(CheckAttentionCudnn(sdpa.get(), 1, 100, 4, 1, 128, true));
      if (!quick) LM_RETURN_IF_ERROR(CheckAttentionCudnn(sdpa.get(), 2, 1024, 12, 12, 64, true));
    }
  }
  LM_RETURN_IF_ERROR(CheckAttentionCached(1, 77, 4, 4, 16));
  LM_RETURN_IF_ERROR(CheckAttentionCached(5, 300, 8, 2, 64));
  LM_RETURN_IF_ERROR(CheckAttentionCached(70, 70, 4, 4, 128));
  LM_RETURN_IF_ERROR(CheckCrossEntropy(5, 3, 128));
  LM_RETURN_IF_ERROR(CheckCrossEntropy(17, 1000, 1024));
  LM_RETURN_IF_ERROR(CheckCrossEntropy(64, 50257, 50304));
  LM_RETURN_IF_ERROR(CheckCrossEntropy(6, 1001, 1003));  // bf16 rows not 16-byte aligned
  LM_RETURN_IF_ERROR(CheckOptimizer(100003, 1));
  LM_RETURN_IF_ERROR(CheckOptimizer(1 << 20, 10));
  LM_RETURN_IF_ERROR(CheckMuonKernels(37, 53));
  LM_RETURN_IF_ERROR(CheckMuonKernels(2048, 768));    // several blocks in the sum of squares
  LM_RETURN_IF_ERROR(CheckMuonStep(&mm, 37, 53));     // odd sizes, wide
  LM_RETURN_IF_ERROR(CheckMuonStep(&mm, 53, 37));     // odd sizes, tall
  LM_RETURN_IF_ERROR(CheckMuonStep(&mm, 768, 768));   // GPT-2 124M's attention projections
  LM_RETURN_IF_ERROR(CheckMuonStep(&mm, 2048, 768));  // its gate/up: tall
  LM_RETURN_IF_ERROR(CheckMuonStep(&mm, 768, 2048));  // its down: wide
  printf("matmul fallbacks to cublasGemmEx: %lld\n", (long long)mm.fallbacks());

  // Whole model: tied embeddings with grouped-query heads; untied with
  // recomputation.
  ModelCase a{"gqa-tied", {}, 4, 64, false};
  a.cfg.vocab_size = 500;
  a.cfg.dim = 128;
  a.cfg.n_layers = 2;
  a.cfg.n_heads = 4;
  a.cfg.n_kv_heads = 2;
  a.cfg.ffn_dim = 352;
  a.cfg.context = 64;
  a.cfg.tied_embeddings = true;
  a.cfg.Pad();
  LM_RETURN_IF_ERROR(a.cfg.Validate());
  LM_RETURN_IF_ERROR(CheckModel(a, 50));  // attention through cuDNN where it runs
  setenv("LM_CUDA_ATTN", "own", 1);
  a.name = "gqa-tied own-attention";
  LM_RETURN_IF_ERROR(CheckModel(a, quick ? 10 : 20));
  unsetenv("LM_CUDA_ATTN");
  a.name = "gqa-tied";
  LM_RETURN_IF_ERROR(CheckReproducible(a, 8));
  ModelCase am = a;  // the same with Muon: its bf16 Newton-Schulz against the CPU's fp32
  am.name = "gqa-tied-muon";
  am.muon = true;
  LM_RETURN_IF_ERROR(CheckModel(am, quick ? 10 : 50));
  LM_RETURN_IF_ERROR(CheckReproducible(am, 8));
  // This one also runs the chunked logits path (the head and loss 50 rows at a
  // time), which the default chunk size never takes at these sizes.
  setenv("LM_CUDA_LOGIT_ROWS", "50", 1);
  ModelCase b{"untied-recompute", {}, 2, 96, true};
  b.cfg.vocab_size = 777;
  b.cfg.dim = 256;
  b.cfg.n_layers = 3;
  b.cfg.n_heads = 4;
  b.cfg.n_kv_heads = 4;
  b.cfg.ffn_dim = 688;
  b.cfg.context = 128;
  b.cfg.tied_embeddings = false;
  b.cfg.Pad();
  LM_RETURN_IF_ERROR(b.cfg.Validate());
  LM_RETURN_IF_ERROR(CheckModel(b, quick ? 10 : 50));
  unsetenv("LM_CUDA_LOGIT_ROWS");
  return Status::OK();
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t seed = (uint64_t)std::chrono::steady_clock::now().time_since_epoch().count();
  bool quick = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--seed" && i + 1 < argc) {
      char* end = nullptr;
      seed = strtoull(argv[++i], &end, 10);
      if (!end || *end) return Usage("--seed takes a number");
    } else if (a == "--quick") {
      quick = true;
    } else if (a == "--version") {
      printf("lm-kernel-check %s\n", lm::kVersion);
      return 0;
    } else if (a == "-h" || a == "--help") {
      printf(
          "usage: lm-kernel-check [--seed N] [--quick] [--version]\n\n"
          "Runs every CUDA kernel of the lm CUDA backend against its CPU twin on fresh\n"
          "random inputs, then the whole model on both backends (one step's gradients,\n"
          "logits, decoding, 50 training steps). One line per check.\n\n"
          "  --seed N   repeat a run's random inputs (the seed is printed first)\n"
          "  --quick    skip the largest attention shape and shorten the second model\n\n"
          "Environment: LM_CUDA_SYNC=1 waits after every launch (set by this program),\n"
          "so an asynchronous fault is reported at its kernel.\n\n"
          "Exit status: 0 all checks passed; 1 a check or a CUDA call failed; 2 bad\n"
          "usage; 77 no CUDA GPU visible (host-only checks ran; nothing on a device).\n");
      return 0;
    } else {
      return Usage(("unknown argument '" + a + "'").c_str());
    }
  }
  setenv("LM_CUDA_SYNC", "1", 0);
  g_rng.seed(seed);
  printf("lm-kernel-check: seed %llu\n", (unsigned long long)seed);
  CheckPeakTable();

  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    printf("lm-kernel-check: no CUDA GPU visible (%s); nothing run on a device\n",
           e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    return g_failed ? 1 : kExitNoGpu;
  }
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
    printf("lm-kernel-check: device 0: %s, sm_%d%d, %d SMs, %.1f GiB\n", prop.name, prop.major,
           prop.minor, prop.multiProcessorCount, prop.totalGlobalMem / 1073741824.0);
  Status s = RunDeviceChecks(quick);
  if (!s.ok()) {
    printf("lm-kernel-check: error: %s\n", s.ToString().c_str());
    g_failed++;
  }
  printf("lm-kernel-check: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
