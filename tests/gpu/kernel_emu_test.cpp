// kernel_emu_test.cpp: the CUDA backend's hand-written kernels, run on the CPU
// through tests/gpu/emu.h (one fiber per CUDA thread), against their CPU
// twins in common/cpu/ops.h. This is what checks the kernels' indexing,
// masking, barriers and shuffles on machines without a GPU (CI, this project's
// build machine); bin/lm-kernel-check checks the real thing on a device.
// Shapes are small (every CUDA thread is a fiber) but cross the kernels'
// tile boundaries and cover every head size the attention kernels are built for.
#include "emu.h"

// The kernels and their launchers, compiled as C++.
#include "common/cuda/adamw.cu"
#include "common/cuda/attention.cu"
#include "common/cuda/convert.cu"
#include "common/cuda/cross_entropy.cu"
#include "common/cuda/embedding.cu"
#include "common/cuda/muon.cu"
#include "common/cuda/rmsnorm.cu"
#include "common/cuda/rope.cu"
#include "common/cuda/swiglu.cu"

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu/muon.h"
#include "cpu/ops.h"
#include "tests/gpu/attention_case.h"
#include "tests/unit/test.h"

namespace {

using lm::cuda::bf16;
std::mt19937_64 rng(20261128);

float Rb(float x) {
  return __bfloat162float(__float2bfloat16(x));
}
std::vector<float> Randn(size_t n, float s = 1.f, bool round = false) {
  std::normal_distribution<float> d(0.f, s);
  std::vector<float> v(n);
  for (auto& x : v) x = round ? Rb(d(rng)) : d(rng);
  return v;
}
std::vector<bf16> ToB(const std::vector<float>& v) {
  std::vector<bf16> o(v.size());
  for (size_t i = 0; i < v.size(); i++) o[i] = __float2bfloat16(v[i]);
  return o;
}
std::vector<float> ToF(const std::vector<bf16>& v) {
  std::vector<float> o(v.size());
  for (size_t i = 0; i < v.size(); i++) o[i] = __bfloat162float(v[i]);
  return o;
}
// Outputs start as NaN: an element the kernel never writes fails the check.
std::vector<bf16> PoisonB(size_t n) {
  return std::vector<bf16>(n, __float2bfloat16(NAN));
}
std::vector<float> PoisonF(size_t n) {
  return std::vector<float>(n, NAN);
}

// ||got - ref|| / ||ref||, infinite when anything is not finite.
double RelErr(const std::vector<float>& got, const std::vector<float>& ref) {
  if (got.size() != ref.size()) return INFINITY;
  double se = 0, sr = 0;
  for (size_t i = 0; i < got.size(); i++) {
    if (!std::isfinite(got[i])) return INFINITY;
    se += (double)(got[i] - ref[i]) * (got[i] - ref[i]);
    sr += (double)ref[i] * ref[i];
  }
  return sr > 0 ? std::sqrt(se / sr) : std::sqrt(se);
}
#define CHECK_REL(got, ref, tol)                                                      \
  do {                                                                                \
    double _e = RelErr(got, ref);                                                     \
    if (!(_e <= (tol))) {                                                             \
      lm_test::Fail(__FILE__, __LINE__,                                               \
                    std::string(#got " vs " #ref ": rel err ") + std::to_string(_e)); \
    }                                                                                 \
  } while (0)

// Keys grow with their position, so that later tiles raise the running maximum
// and the online softmax's rescaling is exercised (random keys rarely do that).
// `misaligned` puts q, k and v one value past a 16-byte boundary, so that the
// tile copies take their one-value-a-load path instead of 16-byte loads.
void Attention(int B, int T, int H, int KVH, int hd, bool fused, bool misaligned = false) {
  const int64_t qd = (int64_t)H * hd, kvd = (int64_t)KVH * hd, row = qd + 2 * kvd;
  auto q = Randn((size_t)B * T * qd, 1.f, true), k = Randn((size_t)B * T * kvd, 1.f, true),
       v = Randn((size_t)B * T * kvd, 1.f, true);
  lm_test::GrowKeys(&k, B, T, kvd);
  std::vector<bf16> qkv, qb, kb, vb;
  lm::cuda::AttentionArgs a;
  a.B = B;
  a.Tq = a.Tk = T;
  a.heads = H;
  a.kv_heads = KVH;
  a.head_dim = hd;
  if (fused) {
    qkv = ToB(lm_test::PackQkv(q, k, v, (int64_t)B * T, qd, kvd));
    a.q = qkv.data();
    a.k = qkv.data() + qd;
    a.v = qkv.data() + qd + kvd;
    a.q_rstride = a.kv_rstride = row;
  } else {
    qb = ToB(q);
    kb = ToB(k);
    vb = ToB(v);
    int off = misaligned ? 1 : 0;
    for (std::vector<bf16>* x : {&qb, &kb, &vb})
      if (misaligned) x->insert(x->begin(), __float2bfloat16(0.f));
    a.q = qb.data() + off;
    a.k = kb.data() + off;
    a.v = vb.data() + off;
    a.q_rstride = qd;
    a.kv_rstride = kvd;
  }
  a.q_bstride = T * a.q_rstride;
  a.kv_bstride = T * a.kv_rstride;
  std::vector<bf16> out = PoisonB((size_t)B * T * qd);
  std::vector<float> lse2 = PoisonF((size_t)B * H * T);
  a.out = out.data();
  a.o_rstride = qd;
  a.o_bstride = T * qd;
  a.lse2 = lse2.data();
  std::vector<float> ro((size_t)B * T * qd), rl((size_t)B * H * T);
  lm::cpu::attention_forward(ro.data(), rl.data(), q.data(), k.data(), v.data(), B, T, H, KVH, hd);
  // Both forward implementations; the tensor-core one's results feed the backward.
  for (auto impl : {lm::cuda::AttnImpl::kScalar, lm::cuda::AttnImpl::kTensorCore}) {
    std::fill(out.begin(), out.end(), __float2bfloat16(NAN));
    std::fill(lse2.begin(), lse2.end(), NAN);
    CHECK_OK(lm::cuda::attention_forward(a, nullptr, impl));
    CHECK_REL(ToF(out), ro, 1e-2);
    std::vector<float> lse_nat = lse2;  // lse2 itself feeds the backward pass below
    for (auto& x : lse_nat) x *= 0.6931471805599453f;
    // The tensor-core path sums bf16-rounded probabilities (what P V uses).
    CHECK_REL(lse_nat, rl, impl == lm::cuda::AttnImpl::kScalar ? 1e-5 : 1e-3);
  }

  auto g = Randn((size_t)B * T * qd, 1.f, true);
  std::vector<bf16> gb = ToB(g);
  std::vector<float> rq((size_t)B * T * qd, 0.f), rk((size_t)B * T * kvd, 0.f),
      rv((size_t)B * T * kvd, 0.f);
  lm::cpu::attention_backward(rq.data(), rk.data(), rv.data(), g.data(), ro.data(), rl.data(),
                              q.data(), k.data(), v.data(), B, T, H, KVH, hd);
  for (auto impl : {lm::cuda::AttnImpl::kScalar, lm::cuda::AttnImpl::kTensorCore}) {
    std::vector<bf16> dqkv, dq, dk, dv;
    std::vector<float> delta = PoisonF((size_t)B * H * T);
    bf16 *pq, *pk, *pv;
    if (fused) {
      dqkv = PoisonB((size_t)B * T * row);
      pq = dqkv.data();
      pk = pq + qd;
      pv = pq + qd + kvd;
    } else {
      dq = PoisonB((size_t)B * T * qd);
      dk = PoisonB((size_t)B * T * kvd);
      dv = PoisonB((size_t)B * T * kvd);
      pq = dq.data();
      pk = dk.data();
      pv = dv.data();
    }
    CHECK_OK(lm::cuda::attention_backward(a, gb.data(), pq, pk, pv, delta.data(), nullptr, impl));
    std::vector<float> gq, gk, gv;
    if (fused) {
      std::vector<float> all = ToF(dqkv);
      gq.resize(rq.size());
      gk.resize(rk.size());
      gv.resize(rv.size());
      for (int64_t r = 0; r < (int64_t)B * T; r++) {
        memcpy(&gq[r * qd], &all[r * row], 4 * qd);
        memcpy(&gk[r * kvd], &all[r * row + qd], 4 * kvd);
        memcpy(&gv[r * kvd], &all[r * row + qd + kvd], 4 * kvd);
      }
    } else {
      gq = ToF(dq);
      gk = ToF(dk);
      gv = ToF(dv);
    }
    CHECK_REL(gq, rq, 1e-2);
    CHECK_REL(gk, rk, 1e-2);
    CHECK_REL(gv, rv, 1e-2);
  }
}

}  // namespace

TEST(attention_hd16_gqa) {
  Attention(1, 37, 2, 1, 16, false);
}
TEST(attention_hd32_two_tiles) {
  Attention(1, 70, 2, 2, 32, true);
}
TEST(attention_hd64_fused_qkv) {
  Attention(2, 67, 2, 1, 64, true);
}
TEST(attention_hd128) {
  Attention(1, 35, 2, 2, 128, false);
}
TEST(attention_misaligned_rows) {
  Attention(1, 70, 2, 1, 32, false, true);
}

TEST(attention_cached_decode) {
  const int Tq = 3, Tk = 41, H = 4, KVH = 2, hd = 32;
  const int64_t qd = H * hd, kvd = KVH * hd;
  auto q = Randn(Tq * qd, 1.f, true), kc = Randn(Tk * kvd, 1.f, true),
       vc = Randn(Tk * kvd, 1.f, true);
  lm_test::GrowKeys(&kc, 1, Tk, kvd);
  auto qb = ToB(q), kb = ToB(kc), vb = ToB(vc);
  std::vector<bf16> out = PoisonB(Tq * qd);
  std::vector<float> lse = PoisonF(H * Tq);
  lm::cuda::AttentionArgs a = lm_test::CachedAttentionArgs(Tq, Tk, H, KVH, hd, qb.data(), kb.data(),
                                                           vb.data(), out.data(), lse.data());
  std::vector<float> ref(Tq * qd);
  lm::cpu::attention_forward_cached(ref.data(), q.data(), kc.data(), vc.data(), Tq, Tk, H, KVH, hd);
  for (auto impl : {lm::cuda::AttnImpl::kScalar, lm::cuda::AttnImpl::kTensorCore}) {
    std::fill(out.begin(), out.end(), __float2bfloat16(NAN));
    CHECK_OK(lm::cuda::attention_forward(a, nullptr, impl));
    CHECK_REL(ToF(out), ref, 1e-2);
  }
}

// dim 70: one value a lane, 8 warps with a dw row each; 3000 (a multiple of
// 8): 16-byte accesses, 4 warps; 13001: dw rows in the global scratch. With
// accumulate off, dx and dw are written (their NaN start must not show).
void CheckRmsnorm(int C, bool accumulate) {
  const int N = C > 5000 ? 3 : 9;
  auto x = Randn((size_t)N * C, 2.f), w = Randn(C, 0.3f);
  for (auto& e : w) e += 1.f;
  std::vector<bf16> out = PoisonB((size_t)N * C);
  std::vector<float> rstd = PoisonF(N);
  CHECK_OK(
      lm::cuda::rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, 1e-5f, nullptr));
  std::vector<float> ro((size_t)N * C), rr(N);
  lm::cpu::rmsnorm_forward(ro.data(), rr.data(), x.data(), w.data(), N, C, 1e-5f);
  CHECK_REL(ToF(out), ro, 1e-2);
  CHECK_REL(rstd, rr, 1e-6);
  auto g = Randn((size_t)N * C), dx = Randn((size_t)N * C), dw = Randn(C);
  std::vector<float> rdx = dx, rdw = dw;
  if (!accumulate) {
    std::fill(rdx.begin(), rdx.end(), 0.f);
    std::fill(rdw.begin(), rdw.end(), 0.f);
    dx = PoisonF(dx.size());
    dw = PoisonF(dw.size());
  }
  std::vector<float> scratch = PoisonF(lm::cuda::rmsnorm_backward_scratch(C));
  std::vector<bf16> dx16 = PoisonB((size_t)N * C);
  lm::cuda::RmsnormBackward a(g.data(), x.data(), w.data(), rstd.data(), N, C, scratch.data());
  a.dx = dx.data();
  a.dx16 = dx16.data();
  a.dw = dw.data();
  a.accumulate_dx = a.accumulate_dw = accumulate;
  CHECK_OK(lm::cuda::rmsnorm_backward(a, nullptr));
  lm::cpu::rmsnorm_backward(rdx.data(), rdw.data(), g.data(), x.data(), w.data(), rstd.data(), N,
                            C);
  CHECK_REL(dx, rdx, 1e-5);
  CHECK_REL(dw, rdw, 1e-5);
  std::vector<float> dx_rounded(dx.size());
  for (size_t i = 0; i < dx.size(); i++) dx_rounded[i] = Rb(dx[i]);
  CHECK_REL(ToF(dx16), dx_rounded, 0.0);  // the bf16 copy of dx as it ended up
}

TEST(rmsnorm_forward_backward) {
  for (int C : {70, 3000, 13001})
    for (bool accumulate : {true, false}) CheckRmsnorm(C, accumulate);
}

// Two runs of the backward pass give the same bits: dw is summed without atomics.
TEST(rmsnorm_backward_is_deterministic) {
  const int N = 300, C = 64;
  auto x = Randn((size_t)N * C), w = Randn(C), g = Randn((size_t)N * C), rstd = Randn(N, 0.1f);
  std::vector<float> dw[2], dx[2];
  for (int run = 0; run < 2; run++) {
    dx[run].assign((size_t)N * C, 0.f);
    dw[run].assign(C, 0.f);
    std::vector<float> scratch(lm::cuda::rmsnorm_backward_scratch(C));
    lm::cuda::RmsnormBackward a(g.data(), x.data(), w.data(), rstd.data(), N, C, scratch.data());
    a.dx = dx[run].data();
    a.dw = dw[run].data();
    CHECK_OK(lm::cuda::rmsnorm_backward(a, nullptr));
  }
  CHECK(dw[0] == dw[1] && dx[0] == dx[1]);
}

// hd 16 (eight pairs a thread, 16-byte accesses) and hd 12 (one pair a thread).
void CheckRope(int hd) {
  const int B = 2, T = 5, nh = 3, pos0 = 4, extra = 2, maxp = 12;
  const int64_t stride = (nh + extra) * hd;
  auto x = Randn((size_t)B * T * stride, 1.f, true);
  std::vector<float> table((size_t)maxp * hd);
  lm::cuda::rope_table_host(hd, maxp, 10000.f, table.data());
  auto xb = ToB(x);
  CHECK_OK(lm::cuda::rope_apply(xb.data(), B, T, stride, nh, hd, pos0, table.data(), maxp, false,
                                nullptr));
  std::vector<float> q((size_t)B * T * nh * hd);
  for (int r = 0; r < B * T; r++) memcpy(&q[r * nh * hd], &x[r * stride], 4 * nh * hd);
  lm::cpu::rope_forward(q.data(), B, T, nh, hd, pos0, 10000.f);
  std::vector<float> ref = x;
  for (int r = 0; r < B * T; r++) memcpy(&ref[r * stride], &q[r * nh * hd], 4 * nh * hd);
  CHECK_REL(ToF(xb), ref, 1e-2);
  CHECK_OK(lm::cuda::rope_apply(xb.data(), B, T, stride, nh, hd, pos0, table.data(), maxp, true,
                                nullptr));
  CHECK_REL(ToF(xb), x, 2e-2);  // back to the start, up to two bf16 roundings
  CHECK(!lm::cuda::rope_apply(xb.data(), B, T, stride, nh, hd, 9, table.data(), maxp, false,
                              nullptr)
             .ok());  // positions past the table
}

TEST(rope_forward_inverse_strided) {
  CheckRope(16);
  CheckRope(12);
}

// F = 45: one column a thread; F = 48: eight with 16-byte accesses.
void CheckSwiglu(int N, int F) {
  auto gu = Randn((size_t)N * 2 * F, 2.f, true);
  std::vector<float> gate(N * F), up(N * F);
  for (int r = 0; r < N; r++)
    for (int c = 0; c < F; c++)
      gate[r * F + c] = gu[r * 2 * F + c], up[r * F + c] = gu[r * 2 * F + F + c];
  auto gub = ToB(gu);
  std::vector<bf16> h = PoisonB(N * F), dgu = PoisonB(N * 2 * F);
  CHECK_OK(lm::cuda::swiglu_forward(h.data(), gub.data(), N, F, nullptr));
  std::vector<float> rh(N * F);
  lm::cpu::swiglu_forward(rh.data(), gate.data(), up.data(), N, F);
  CHECK_REL(ToF(h), rh, 1e-2);
  auto d = Randn(N * F, 1.f, true);
  auto db = ToB(d);
  CHECK_OK(lm::cuda::swiglu_backward(dgu.data(), db.data(), gub.data(), N, F, nullptr));
  std::vector<float> dg(N * F, 0.f), du(N * F, 0.f), ref(N * 2 * F);
  lm::cpu::swiglu_backward(dg.data(), du.data(), d.data(), gate.data(), up.data(), N, F);
  for (int r = 0; r < N; r++)
    for (int c = 0; c < F; c++)
      ref[r * 2 * F + c] = dg[r * F + c], ref[r * 2 * F + F + c] = du[r * F + c];
  CHECK_REL(ToF(dgu), ref, 1e-2);
}

TEST(swiglu_forward_backward) {
  CheckSwiglu(7, 45);
  CheckSwiglu(5, 48);
}

// Evaluation's form, fp32 logits: Vp 384 reads eight values a load, Vp 383
// one at a time.
void CheckCrossEntropyF32(int Vp) {
  const int N = 4, V = 300;
  auto logits = Randn((size_t)N * Vp, 3.f);
  std::vector<int32_t> t = {5, -1, 299, 0};
  std::vector<float> losses = PoisonF(N), rl(N), rd((size_t)N * Vp);
  std::vector<bf16> d = PoisonB((size_t)N * Vp);
  CHECK_OK(lm::cuda::cross_entropy_forward_backward(losses.data(), d.data(), logits.data(),
                                                    t.data(), N, V, Vp, 0.25f, nullptr));
  lm::cpu::cross_entropy_forward_backward(rl.data(), rd.data(), logits.data(), t.data(), N, V, Vp,
                                          0.25f);
  CHECK_REL(losses, rl, 1e-6);
  CHECK_REL(ToF(d), rd, 1e-2);
  losses = PoisonF(N);  // without the gradient, as evaluation calls it
  CHECK_OK(lm::cuda::cross_entropy_forward_backward(losses.data(), nullptr, logits.data(), t.data(),
                                                    N, V, Vp, 0.f, nullptr));
  CHECK_REL(losses, rl, 1e-6);
}

TEST(cross_entropy_padded_ignored) {
  CheckCrossEntropyF32(384);
  CheckCrossEntropyF32(383);
}

// Training's form: bf16 logits, their gradient written over them. V = 1001 puts a
// real column and padding in one 8-value load; Vp = 1003 takes the scalar path.
void CheckCrossEntropyBf16(int N, int V, int Vp, bool in_place) {
  auto zf = Randn((size_t)N * Vp, 3.f, true);
  std::vector<int32_t> t(N);
  for (int i = 0; i < N; i++) t[i] = i % 4 == 1 ? -1 : (int32_t)((i * 7919 + 3) % V);
  t[0] = V - 1;
  std::vector<float> losses = PoisonF(N), rl(N), rd((size_t)N * Vp);
  std::vector<bf16> z = ToB(zf), d = PoisonB((size_t)N * Vp);
  bf16* out = in_place ? z.data() : d.data();
  CHECK_OK(lm::cuda::cross_entropy_forward_backward(losses.data(), out, z.data(), t.data(), N, V,
                                                    Vp, 0.25f, nullptr));
  lm::cpu::cross_entropy_forward_backward(rl.data(), rd.data(), zf.data(), t.data(), N, V, Vp,
                                          0.25f);
  CHECK_REL(losses, rl, 1e-6);
  CHECK_REL(ToF(in_place ? z : d), rd, 1e-2);
}

TEST(cross_entropy_bf16_in_place_vectorized) {
  CheckCrossEntropyBf16(9, 1001, 1024, true);
}
TEST(cross_entropy_bf16_separate_output) {
  CheckCrossEntropyBf16(5, 1001, 1024, false);
}
TEST(cross_entropy_bf16_odd_row_length) {
  CheckCrossEntropyBf16(7, 1000, 1003, true);
}

// C = 37 takes the one-value path, C = 64 the 16-byte one; `offset` puts the
// table and the output one value past a 16-byte boundary (the emulator stops
// at a misaligned 16-byte access, as a device faults on one).
void CheckEmbedding(int C, int offset) {
  const int N = 11, V = 6;
  auto table = Randn(V * C + offset);
  std::vector<int32_t> ids = {0, 5, 5, 1, 2, 5, 0, 3, 4, 4, 1};
  std::vector<float> out = PoisonF(N * C + offset), ref(N * C);
  const float* tab = table.data() + offset;
  CHECK_OK(lm::cuda::embedding_forward(out.data() + offset, ids.data(), tab, N, C, nullptr));
  lm::cpu::embedding_forward(ref.data(), ids.data(), tab, N, C);
  CHECK_REL(std::vector<float>(out.begin() + offset, out.end()), ref, 0.0);
  // The backward pass, through the plan: the rows of each id in row order.
  auto g = Randn(N * C + offset), dt = Randn(V * C + offset);
  std::vector<float> rdt(dt.begin() + offset, dt.end());
  std::vector<int32_t> plan(lm::cuda::embedding_backward_plan_size(N), -7);
  int distinct = 0;
  lm::cuda::embedding_backward_plan(ids.data(), N, plan.data(), &distinct);
  CHECK_EQ(distinct, 6);
  CHECK(std::vector<int32_t>(plan.begin(), plan.begin() + 6) ==
        std::vector<int32_t>({0, 1, 2, 3, 4, 5}));
  CHECK(std::vector<int32_t>(plan.begin() + N, plan.begin() + N + 7) ==
        std::vector<int32_t>({0, 2, 4, 5, 6, 8, 11}));
  CHECK(std::vector<int32_t>(plan.begin() + 2 * N + 1, plan.end()) ==
        std::vector<int32_t>({0, 6, 3, 10, 4, 7, 8, 9, 1, 2, 5}));
  CHECK_OK(lm::cuda::embedding_backward(dt.data() + offset, g.data() + offset, plan.data(), N,
                                        distinct, C, nullptr));
  lm::cpu::embedding_backward(rdt.data(), g.data() + offset, ids.data(), N, C);
  CHECK_REL(std::vector<float>(dt.begin() + offset, dt.end()), rdt, 1e-6);
}

TEST(embedding_forward_backward) {
  CheckEmbedding(37, 0);
  CheckEmbedding(64, 0);
}
TEST(embedding_misaligned_rows) {
  CheckEmbedding(64, 1);
}

TEST(adamw_and_sums) {
  // 3001: 750 groups of four and a tail; offset 1: one at a time throughout.
  for (int offset : {0, 1}) {
    const int64_t n = 3001;
    auto p = Randn(n + offset), g = Randn(n + offset, 0.1f), m = Randn(n + offset, 0.01f),
         v = Randn(n + offset, 0.01f);
    for (auto& x : v) x *= x;
    std::vector<double> partial(lm::cuda::sum_squares_scratch(), NAN);
    double s = NAN, acc = 2.0;
    CHECK_OK(lm::cuda::sum_squares(g.data() + offset, n, partial.data(), &s, nullptr));
    double rs = lm::cpu::sum_squares(g.data() + offset, n), sum = 0;
    CHECK_NEAR(s, rs, 1e-5 * rs);
    CHECK_OK(lm::cuda::sum_accumulate(g.data() + offset, n, 0.5, partial.data(), &acc, nullptr));
    for (int64_t i = 0; i < n; i++) sum += g[offset + i];
    CHECK_NEAR(acc, 2.0 + 0.5 * sum, 1e-5 * (2.0 + std::fabs(sum)));
    std::vector<float> rp(p.begin() + offset, p.end()), rm(m.begin() + offset, m.end()),
        rv(v.begin() + offset, v.end());
    std::vector<bf16> p16 = PoisonB(n + offset);
    CHECK_OK(lm::cuda::adamw_update(p.data() + offset, p16.data() + offset, g.data() + offset,
                                    m.data() + offset, v.data() + offset, n, 1e-3f, 0.9f, 0.95f,
                                    1e-8f, 0.1f, 7, 0.5f, nullptr));
    lm::cpu::adamw_update(rp.data(), g.data() + offset, rm.data(), rv.data(), n, 1e-3f, 0.9f, 0.95f,
                          1e-8f, 0.1f, 7, 0.5f);
    CHECK_REL(std::vector<float>(p.begin() + offset, p.end()), rp, 1e-7);
    CHECK_REL(std::vector<float>(m.begin() + offset, m.end()), rm, 1e-7);
    CHECK_REL(std::vector<float>(v.begin() + offset, v.end()), rv, 1e-7);
    CHECK_REL(ToF(std::vector<bf16>(p16.begin() + offset, p16.end())), rp, 1e-2);
  }
}

// The sum of squares is the same bits on every run (no atomics), and its
// blocks cover a long vector (a block count set by n alone).
TEST(sum_squares_is_deterministic) {
  auto x = Randn(200003);
  std::vector<double> partial(lm::cuda::sum_squares_scratch());
  double a = 0, b = 1;
  CHECK_OK(lm::cuda::sum_squares(x.data(), (int64_t)x.size(), partial.data(), &a, nullptr));
  CHECK_OK(lm::cuda::sum_squares(x.data(), (int64_t)x.size(), partial.data(), &b, nullptr));
  CHECK_EQ(a, b);
  double r = lm::cpu::sum_squares(x.data(), (int64_t)x.size());
  CHECK_NEAR(a, r, 1e-6 * r);
}

// Muon's three kernels against cpu/muon.h: the momentum (and the sum of
// squares the normalisation needs, in a fixed order), the normalisation into
// bf16, the update. Sizes of one block and of several.
TEST(muon_momentum_normalize_apply) {
  for (int64_t n : {3001, 70001})
    for (bool nesterov : {true, false}) {
      auto g = Randn(n, 0.1f), m = Randn(n, 0.01f), p = Randn(n);
      auto rm = m, m2 = m;
      std::vector<float> u = PoisonF(n), ru(n), u2(n);
      std::vector<double> partial(lm::cuda::sum_squares_scratch(), NAN);
      double ss = NAN, ss2 = NAN;
      CHECK_OK(lm::cuda::muon_momentum(u.data(), m.data(), g.data(), n, 0.95f, nesterov, 0.7f,
                                       partial.data(), &ss, nullptr));
      lm::cpu::muon_momentum(ru.data(), rm.data(), g.data(), n, 0.95f, nesterov, 0.7f);
      CHECK_REL(u, ru, 1e-7);
      CHECK_REL(m, rm, 1e-7);
      const double rs = lm::cpu::sum_squares(ru.data(), n);
      CHECK_NEAR(ss, rs, 1e-5 * rs);
      CHECK_OK(lm::cuda::muon_momentum(u2.data(), m2.data(), g.data(), n, 0.95f, nesterov, 0.7f,
                                       partial.data(), &ss2, nullptr));
      CHECK_EQ(ss2, ss);  // the same bits on every run
      std::vector<bf16> x = PoisonB(n);
      CHECK_OK(lm::cuda::ns_normalize(x.data(), u.data(), n, &ss, lm::cpu::kNsEps, nullptr));
      std::vector<float> rx(n);
      lm::cpu::ns_normalize(rx.data(), ru.data(), n);
      for (auto& v : rx) v = Rb(v);  // the kernel writes bf16
      CHECK_REL(ToF(x), rx, 1e-5);
      auto rp = p;
      std::vector<bf16> p16 = PoisonB(n);
      CHECK_OK(lm::cuda::muon_apply(p.data(), p16.data(), x.data(), n, 0.02f, 0.1f, 1.5f, nullptr));
      lm::cpu::muon_apply(rp.data(), ToF(x).data(), n, 0.02f, 0.1f, 1.5f);
      CHECK_REL(p, rp, 0.0);  // the same float arithmetic
      CHECK_REL(ToF(p16), rp, 1e-2);
    }
}

TEST(muon_kernels_refuse_bad_arguments_and_take_empty_ones) {
  std::vector<double> partial(lm::cuda::sum_squares_scratch());
  double ss = NAN;
  CHECK(!lm::cuda::muon_momentum(nullptr, nullptr, nullptr, 10, 1.0f, true, 1.f, partial.data(),
                                 &ss, nullptr)
             .ok());
  CHECK(!lm::cuda::muon_momentum(nullptr, nullptr, nullptr, -1, 0.9f, true, 1.f, partial.data(),
                                 &ss, nullptr)
             .ok());
  CHECK(!lm::cuda::muon_apply(nullptr, nullptr, nullptr, -1, 0.f, 0.f, 1.f, nullptr).ok());
  CHECK(!lm::cuda::ns_normalize(nullptr, nullptr, -1, &ss, 1e-7f, nullptr).ok());
  CHECK_OK(lm::cuda::muon_momentum(nullptr, nullptr, nullptr, 0, 0.9f, true, 1.f, partial.data(),
                                   &ss, nullptr));
  CHECK_EQ(ss, 0.0);  // an empty update's sum of squares
  std::vector<double> many(lm::cuda::sum_squares_scratch() + 1, 1.0);
  CHECK(!lm::cuda::sum_partials(many.data(), (int)many.size(), &ss, nullptr).ok());
  CHECK_OK(lm::cuda::sum_partials(many.data(), 3, &ss, nullptr));
  CHECK_EQ(ss, 3.0);
}

TEST(f32_to_bf16_rounds_like_the_host) {
  // 1003: eight a thread and a tail; offset 1: one at a time.
  for (int offset : {0, 1}) {
    auto x = Randn(1003 + offset, 5.f);
    std::vector<bf16> y = PoisonB(1003 + offset);
    CHECK_OK(lm::cuda::f32_to_bf16(x.data() + offset, y.data() + offset, 1003, nullptr));
    std::vector<float> ref(1003);
    for (int i = 0; i < 1003; i++) ref[i] = Rb(x[offset + i]);
    CHECK_REL(ToF(std::vector<bf16>(y.begin() + offset, y.end())), ref, 0.0);
  }
}

TEST(launchers_refuse_bad_shapes) {
  lm::cuda::AttentionArgs a;
  CHECK(!lm::cuda::attention_forward(a, nullptr).ok());
  a.B = 1;
  a.Tq = a.Tk = 4;
  a.heads = 3;
  a.kv_heads = 2;  // does not divide
  a.head_dim = 16;
  CHECK(!lm::cuda::attention_forward(a, nullptr).ok());
  a.kv_heads = 3;
  a.head_dim = 48;  // not built
  CHECK(!lm::cuda::attention_forward(a, nullptr).ok());
  CHECK(!lm::cuda::attention_supports(48));
  CHECK(lm::cuda::attention_supports(64));
  CHECK(!lm::cuda::cross_entropy_forward_backward(nullptr, nullptr, (const float*)nullptr, nullptr,
                                                  1, 10, 5, 0.f, nullptr)
             .ok());
}

TEST_MAIN()
