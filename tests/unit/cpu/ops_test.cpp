// ops_test.cpp: every CPU op (common/cpu/ops.h) against a plain reference for
// its forward pass and against central finite differences, in double
// precision, for its backward pass; the float instantiation against the double one.
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "../test.h"
#include "cpu/ops.h"
#include "cpu/vexp.h"

using namespace lm::cpu;
using Vec = std::vector<double>;

namespace {

Vec Randn(size_t n, uint32_t seed, double sd = 1.0) {
  std::mt19937 g(seed);
  std::normal_distribution<double> d(0.0, sd);
  Vec v(n);
  for (double& x : v) x = d(g);
  return v;
}

std::vector<float> ToFloat(const Vec& v) {
  return std::vector<float>(v.begin(), v.end());
}

double Dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); i++) s += a[i] * b[i];
  return s;
}

// Compares the analytic gradient `g` of f with respect to x against central
// differences at up to `samples` positions spread over x. f reads x.
void CheckGrad(const char* what, const std::function<double()>& f, Vec* x, const Vec& g,
               size_t samples = 60, double tol = 1e-7) {
  const double h = 1e-5;
  size_t n = x->size();
  size_t stride = n > samples ? n / samples : 1;
  int bad = 0;
  for (size_t i = 0; i < n; i += stride) {
    double saved = (*x)[i];
    (*x)[i] = saved + h;
    double fp = f();
    (*x)[i] = saved - h;
    double fm = f();
    (*x)[i] = saved;
    double fd = (fp - fm) / (2 * h);
    if (std::fabs(fd - g[i]) > tol * std::max(1.0, std::fabs(fd))) {
      if (bad++ < 3)
        lm_test::Fail(__FILE__, __LINE__,
                      std::string(what) + "[" + std::to_string(i) + "]: analytic " +
                          std::to_string(g[i]) + " vs finite difference " + std::to_string(fd));
    }
  }
}

double MaxAbsDiff(const float* a, const double* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = std::max(m, std::fabs((double)a[i] - b[i]));
  return m;
}

}  // namespace

TEST(embedding_forward_and_backward) {
  const int V = 7, C = 5, N = 9;
  std::vector<int32_t> ids = {3, 0, 6, 3, 3, 1, 6, 2, 0};
  Vec table = Randn(V * C, 1), R = Randn(N * C, 2), out(N * C);
  embedding_forward(out.data(), ids.data(), table.data(), N, C);
  for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++) CHECK_EQ(out[n * C + c], table[ids[n] * C + c]);
  Vec dtable(V * C, 0.0);
  embedding_backward(dtable.data(), R.data(), ids.data(), N, C);
  auto f = [&] {
    embedding_forward(out.data(), ids.data(), table.data(), N, C);
    return Dot(out, R);
  };
  CheckGrad("dtable", f, &table, dtable, 1000);
  // Backward adds: a second call doubles.
  Vec d2 = dtable;
  embedding_backward(d2.data(), R.data(), ids.data(), N, C);
  for (size_t i = 0; i < d2.size(); i++) CHECK_NEAR(d2[i], 2 * dtable[i], 1e-12);
}

TEST(rmsnorm_forward_and_backward) {
  const int N = 6, C = 37;
  const float eps = 1e-5f;
  Vec x = Randn(N * C, 3), w = Randn(C, 4), R = Randn(N * C, 5), out(N * C), rstd(N);
  rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, eps);
  for (int n = 0; n < N; n++) {
    double ms = 0;
    for (int c = 0; c < C; c++) ms += x[n * C + c] * x[n * C + c] / C;
    double r = 1 / std::sqrt(ms + (double)eps);
    CHECK_NEAR(rstd[n], r, 1e-12);
    for (int c = 0; c < C; c++) CHECK_NEAR(out[n * C + c], x[n * C + c] * r * w[c], 1e-12);
  }
  Vec dx(N * C, 0.0), dw(C, 0.0);
  rmsnorm_backward(dx.data(), dw.data(), R.data(), x.data(), w.data(), rstd.data(), N, C);
  auto f = [&] {
    rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, eps);
    return Dot(out, R);
  };
  CheckGrad("dx", f, &x, dx, 1000);
  CheckGrad("dw", f, &w, dw, 1000);
}

TEST(matmul_forward_and_backward) {
  const int N = 5, IC = 7, OC = 3;
  Vec x = Randn(N * IC, 6), w = Randn(OC * IC, 7), R = Randn(N * OC, 8), out(N * OC);
  matmul_forward(out.data(), x.data(), w.data(), N, IC, OC);
  for (int n = 0; n < N; n++)
    for (int o = 0; o < OC; o++) {
      double s = 0;
      for (int i = 0; i < IC; i++) s += x[n * IC + i] * w[o * IC + i];
      CHECK_NEAR(out[n * OC + o], s, 1e-12);
    }
  Vec dx(N * IC, 0.0), dw(OC * IC, 0.0);
  matmul_backward(dx.data(), dw.data(), R.data(), x.data(), w.data(), N, IC, OC);
  auto f = [&] {
    matmul_forward(out.data(), x.data(), w.data(), N, IC, OC);
    return Dot(out, R);
  };
  CheckGrad("dx", f, &x, dx, 1000);
  CheckGrad("dw", f, &w, dw, 1000);
}

TEST(rope_matches_rotate_half_and_inverts) {
  const int B = 2, T = 5, nh = 3, hd = 8, pos0 = 11;
  const float theta = 10000.0f;
  Vec x = Randn(B * T * nh * hd, 9), y = x;
  rope_forward(y.data(), B, T, nh, hd, pos0, theta);
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      for (int h = 0; h < nh; h++) {
        const double* xi = &x[((b * T + t) * nh + h) * hd];
        const double* yi = &y[((b * T + t) * nh + h) * hd];
        for (int i = 0; i < hd / 2; i++) {
          double a = (pos0 + t) * std::pow((double)theta, -2.0 * i / hd);
          double r1 = xi[i] * std::cos(a) - xi[i + hd / 2] * std::sin(a);
          double r2 = xi[i + hd / 2] * std::cos(a) + xi[i] * std::sin(a);
          // The angle is formed in fp32 as transformers does: ~1e-6 off.
          CHECK_NEAR(yi[i], r1, 1e-4);
          CHECK_NEAR(yi[i + hd / 2], r2, 1e-4);
        }
      }
  // Position 0 is the identity.
  Vec z = x;
  rope_forward(z.data(), 1, 1, nh, hd, 0, theta);
  for (int i = 0; i < nh * hd; i++) CHECK_EQ(z[i], x[i]);
  // Backward is the exact inverse rotation and the gradient of sum(R . rope(x)).
  Vec R = Randn(x.size(), 10), g = R;
  rope_backward(g.data(), B, T, nh, hd, pos0, theta);
  auto f = [&] {
    Vec t2 = x;
    rope_forward(t2.data(), B, T, nh, hd, pos0, theta);
    return Dot(t2, R);
  };
  CheckGrad("dx", f, &x, g, 1000);
  Vec back = y;
  rope_backward(back.data(), B, T, nh, hd, pos0, theta);
  for (size_t i = 0; i < x.size(); i++) CHECK_NEAR(back[i], x[i], 1e-12);
}

// Naive attention for reference: q (B,T,H,hd), k, v (B,T,KVH,hd).
static Vec NaiveAttention(const Vec& q, const Vec& k, const Vec& v, int B, int T, int H, int KVH,
                          int hd) {
  Vec out(q.size(), 0.0);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++) {
      int g = h / (H / KVH);
      for (int t = 0; t < T; t++) {
        Vec s(t + 1);
        double mx = -1e300;
        for (int j = 0; j <= t; j++) {
          double d = 0;
          for (int c = 0; c < hd; c++)
            d += q[((b * T + t) * H + h) * hd + c] * k[((b * T + j) * KVH + g) * hd + c];
          s[j] = d / std::sqrt((double)hd);
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (int j = 0; j <= t; j++) sum += (s[j] = std::exp(s[j] - mx));
        for (int j = 0; j <= t; j++)
          for (int c = 0; c < hd; c++)
            out[((b * T + t) * H + h) * hd + c] += s[j] / sum * v[((b * T + j) * KVH + g) * hd + c];
      }
    }
  return out;
}

static void AttentionCase(int B, int T, int H, int KVH, int hd, uint32_t seed) {
  const size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KVH * hd;
  Vec q = Randn(nq, seed), k = Randn(nk, seed + 1), v = Randn(nk, seed + 2);
  Vec R = Randn(nq, seed + 3), out(nq), lse((size_t)B * H * T);
  attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), B, T, H, KVH, hd);
  Vec ref = NaiveAttention(q, k, v, B, T, H, KVH, hd);
  for (size_t i = 0; i < nq; i++) CHECK_NEAR(out[i], ref[i], 1e-12);
  Vec dq(nq, 0.0), dk(nk, 0.0), dv(nk, 0.0);
  attention_backward(dq.data(), dk.data(), dv.data(), R.data(), out.data(), lse.data(), q.data(),
                     k.data(), v.data(), B, T, H, KVH, hd);
  Vec o2(nq), l2(lse.size());
  auto f = [&] {
    attention_forward(o2.data(), l2.data(), q.data(), k.data(), v.data(), B, T, H, KVH, hd);
    return Dot(o2, R);
  };
  CheckGrad("dq", f, &q, dq, 80);
  CheckGrad("dk", f, &k, dk, 80);
  CheckGrad("dv", f, &v, dv, 80);

  // The float twin agrees with the double one.
  std::vector<float> qf = ToFloat(q), kf = ToFloat(k), vf = ToFloat(v), Rf = ToFloat(R);
  std::vector<float> of(nq), lf(lse.size()), dqf(nq, 0), dkf(nk, 0), dvf(nk, 0);
  attention_forward(of.data(), lf.data(), qf.data(), kf.data(), vf.data(), B, T, H, KVH, hd);
  attention_backward(dqf.data(), dkf.data(), dvf.data(), Rf.data(), of.data(), lf.data(), qf.data(),
                     kf.data(), vf.data(), B, T, H, KVH, hd);
  CHECK(MaxAbsDiff(of.data(), out.data(), nq) < 1e-5);
  CHECK(MaxAbsDiff(dqf.data(), dq.data(), nq) < 1e-4);
  CHECK(MaxAbsDiff(dkf.data(), dk.data(), nk) < 1e-4);
  CHECK(MaxAbsDiff(dvf.data(), dv.data(), nk) < 1e-4);
}

TEST(attention_multi_head) {
  AttentionCase(2, 9, 3, 3, 4, 20);
}
TEST(attention_grouped_query_heads) {
  AttentionCase(2, 11, 4, 2, 6, 30);
}
TEST(attention_one_kv_head_across_query_blocks) {
  // T beyond one 64-row block exercises the block loop.
  AttentionCase(1, 70, 2, 1, 4, 40);
}

TEST(attention_cached_matches_full) {
  const int T = 75, H = 4, KVH = 2, hd = 8, Tq = 6;
  Vec q = Randn((size_t)T * H * hd, 50), k = Randn((size_t)T * KVH * hd, 51),
      v = Randn((size_t)T * KVH * hd, 52), out(q.size()), lse((size_t)H * T);
  attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), 1, T, H, KVH, hd);
  // The last Tq queries against the whole cache.
  Vec oc((size_t)Tq * H * hd);
  attention_forward_cached(oc.data(), q.data() + (size_t)(T - Tq) * H * hd, k.data(), v.data(), Tq,
                           T, H, KVH, hd);
  for (size_t i = 0; i < oc.size(); i++)
    CHECK_NEAR(oc[i], out[(size_t)(T - Tq) * H * hd + i], 1e-12);
}

TEST(swiglu_forward_and_backward) {
  const int N = 4, F = 9;
  Vec g = Randn(N * F, 60, 2.0), u = Randn(N * F, 61), R = Randn(N * F, 62), out(N * F);
  swiglu_forward(out.data(), g.data(), u.data(), N, F);
  for (int i = 0; i < N * F; i++) CHECK_NEAR(out[i], g[i] / (1 + std::exp(-g[i])) * u[i], 1e-12);
  Vec dg(N * F, 0.0), du(N * F, 0.0);
  swiglu_backward(dg.data(), du.data(), R.data(), g.data(), u.data(), N, F);
  auto f = [&] {
    swiglu_forward(out.data(), g.data(), u.data(), N, F);
    return Dot(out, R);
  };
  CheckGrad("dgate", f, &g, dg, 1000);
  CheckGrad("dup", f, &u, du, 1000);
}

TEST(residual_forward_and_backward) {
  Vec a = Randn(10, 70), b = Randn(10, 71), out(10), da(10, 1.0), db(10, 0.0), R = Randn(10, 72);
  residual_forward(out.data(), a.data(), b.data(), 10);
  for (int i = 0; i < 10; i++) CHECK_EQ(out[i], a[i] + b[i]);
  residual_backward(da.data(), db.data(), R.data(), 10);
  for (int i = 0; i < 10; i++) {
    CHECK_EQ(da[i], 1.0 + R[i]);
    CHECK_EQ(db[i], R[i]);
  }
}

TEST(cross_entropy_padded_vocab_and_ignored_targets) {
  const int N = 5, V = 11, Vp = 16;
  Vec logits = Randn(N * Vp, 80, 3.0);
  // Padding columns hold garbage that must never count.
  for (int n = 0; n < N; n++)
    for (int v = V; v < Vp; v++) logits[n * Vp + v] = 1000.0 + v;
  std::vector<int32_t> tg = {3, -1, 10, 0, 7};
  Vec losses(N), dl(N * Vp, 123.0);
  const double dloss = 0.25;
  cross_entropy_forward_backward(losses.data(), dl.data(), logits.data(), tg.data(), N, V, Vp,
                                 dloss);
  for (int n = 0; n < N; n++) {
    if (tg[n] < 0) {
      CHECK_EQ(losses[n], 0.0);
      for (int v = 0; v < Vp; v++) CHECK_EQ(dl[n * Vp + v], 0.0);
      continue;
    }
    double sum = 0;
    for (int v = 0; v < V; v++) sum += std::exp(logits[n * Vp + v]);
    CHECK_NEAR(losses[n], std::log(sum) - logits[n * Vp + tg[n]], 1e-12);
    for (int v = V; v < Vp; v++) CHECK_EQ(dl[n * Vp + v], 0.0);
  }
  auto f = [&] {
    Vec l(N);
    cross_entropy_forward_backward(l.data(), (double*)nullptr, logits.data(), tg.data(), N, V, Vp,
                                   0.0);
    double s = 0;
    for (double x : l) s += x * dloss;
    return s;
  };
  Vec dl_real = dl;
  for (int n = 0; n < N; n++)  // the padding's true gradient is 0 too: it never counts
    for (int v = V; v < Vp; v++) CHECK_EQ(dl_real[n * Vp + v], 0.0);
  CheckGrad("dlogits", f, &logits, dl_real, 1000);
  // In place (dlogits aliasing logits) gives the same.
  Vec inplace = logits, l2(N);
  cross_entropy_forward_backward(l2.data(), inplace.data(), inplace.data(), tg.data(), N, V, Vp,
                                 dloss);
  for (int i = 0; i < N * Vp; i++) CHECK_NEAR(inplace[i], dl[i], 1e-15);
  for (int n = 0; n < N; n++) CHECK_EQ(l2[n], losses[n]);
}

TEST(sum_squares_chunks_and_non_finite) {
  std::vector<float> x(200000);
  double ref = 0;
  for (size_t i = 0; i < x.size(); i++) {
    x[i] = (float)std::sin((double)i);
    ref += (double)x[i] * x[i];
  }
  CHECK_NEAR(sum_squares(x.data(), (int64_t)x.size()), ref, 1e-9 * ref);
  x[123456] = NAN;
  CHECK(!std::isfinite(sum_squares(x.data(), (int64_t)x.size())));
  x[123456] = INFINITY;
  CHECK(!std::isfinite(sum_squares(x.data(), (int64_t)x.size())));
  CHECK_EQ(sum_squares(x.data(), 0), 0.0);
}

TEST(adamw_matches_reference) {
  const int n = 33;
  Vec p0 = Randn(n, 90), gr = Randn(n, 91);
  std::vector<float> p = ToFloat(p0), m(n, 0), v(n, 0), g = ToFloat(gr);
  Vec pr(p.begin(), p.end()), mr(n, 0), vr(n, 0);
  const float lr = 0.01f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f, gs = 0.5f;
  for (int t = 1; t <= 5; t++) {
    adamw_update(p.data(), g.data(), m.data(), v.data(), n, lr, b1, b2, eps, wd, t, gs);
    for (int i = 0; i < n; i++) {  // torch.optim.AdamW, written out
      double gi = (double)g[i] * gs;
      pr[i] *= 1 - (double)lr * wd;
      mr[i] = b1 * mr[i] + (1 - (double)b1) * gi;
      vr[i] = b2 * vr[i] + (1 - (double)b2) * gi * gi;
      double mh = mr[i] / (1 - std::pow((double)b1, t)), vh = vr[i] / (1 - std::pow((double)b2, t));
      pr[i] -= lr * mh / (std::sqrt(vh) + eps);
    }
  }
  CHECK(MaxAbsDiff(p.data(), pr.data(), n) < 1e-6);
  CHECK(MaxAbsDiff(m.data(), mr.data(), n) < 1e-6);
  CHECK(MaxAbsDiff(v.data(), vr.data(), n) < 1e-6);
}

TEST(float_ops_match_double) {
  const int N = 8, C = 24, F = 40;
  Vec x = Randn(N * C, 100), w = Randn(C, 101), W = Randn(F * C, 102, 0.2);
  std::vector<float> xf = ToFloat(x), wf = ToFloat(w), Wf = ToFloat(W);
  Vec out(N * C), rstd(N), mm(N * F);
  std::vector<float> outf(N * C), rstdf(N), mmf(N * F);
  rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, 1e-5f);
  rmsnorm_forward(outf.data(), rstdf.data(), xf.data(), wf.data(), N, C, 1e-5f);
  CHECK(MaxAbsDiff(outf.data(), out.data(), out.size()) < 1e-5);
  matmul_forward(mm.data(), x.data(), W.data(), N, C, F);
  matmul_forward(mmf.data(), xf.data(), Wf.data(), N, C, F);
  CHECK(MaxAbsDiff(mmf.data(), mm.data(), mm.size()) < 1e-4);
}

// Sizes large enough that the ops run on several threads (the small cases
// above stay on one), against plain double loops.
TEST(parallel_paths_match_plain_loops) {
  for (int N : {3, 300}) {  // few rows: columns split; many rows: rows split
    const int IC = 96, OC = 1000;
    Vec x = Randn((size_t)N * IC, 110), w = Randn((size_t)OC * IC, 111),
        R = Randn((size_t)N * OC, 112);
    Vec out((size_t)N * OC), dx((size_t)N * IC, 0.0), dw((size_t)OC * IC, 0.0);
    matmul_forward(out.data(), x.data(), w.data(), N, IC, OC);
    matmul_backward(dx.data(), dw.data(), R.data(), x.data(), w.data(), N, IC, OC);
    double e1 = 0, e2 = 0, e3 = 0;
    for (int n = 0; n < N; n++)
      for (int o = 0; o < OC; o++) {
        double s = 0;
        for (int i = 0; i < IC; i++) s += x[(size_t)n * IC + i] * w[(size_t)o * IC + i];
        e1 = std::max(e1, std::fabs(s - out[(size_t)n * OC + o]));
      }
    for (int n = 0; n < N; n++)
      for (int i = 0; i < IC; i++) {
        double s = 0;
        for (int o = 0; o < OC; o++) s += R[(size_t)n * OC + o] * w[(size_t)o * IC + i];
        e2 = std::max(e2, std::fabs(s - dx[(size_t)n * IC + i]));
      }
    for (int o = 0; o < OC; o += 7)
      for (int i = 0; i < IC; i++) {
        double s = 0;
        for (int n = 0; n < N; n++) s += R[(size_t)n * OC + o] * x[(size_t)n * IC + i];
        e3 = std::max(e3, std::fabs(s - dw[(size_t)o * IC + i]));
      }
    CHECK(e1 < 1e-10);
    CHECK(e2 < 1e-10);
    CHECK(e3 < 1e-10);
  }
  const int N = 700, C = 100, V = 50;
  Vec x = Randn((size_t)N * C, 120), w = Randn(C, 121), R = Randn((size_t)N * C, 122);
  Vec out((size_t)N * C), rstd(N), dx((size_t)N * C, 0.0), dw(C, 0.0), dt((size_t)V * C, 0.0);
  rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, 1e-5f);
  rmsnorm_backward(dx.data(), dw.data(), R.data(), x.data(), w.data(), rstd.data(), N, C);
  std::vector<int32_t> ids(N);
  for (int n = 0; n < N; n++) ids[n] = (n * 37) % V;
  embedding_backward(dt.data(), R.data(), ids.data(), N, C);
  Vec dw_ref(C, 0.0), dt_ref((size_t)V * C, 0.0);
  for (int n = 0; n < N; n++) {
    double ms = 0, dot = 0;
    for (int c = 0; c < C; c++) ms += x[(size_t)n * C + c] * x[(size_t)n * C + c] / C;
    const double r = 1 / std::sqrt(ms + 1e-5);
    for (int c = 0; c < C; c++) dot += R[(size_t)n * C + c] * w[c] * x[(size_t)n * C + c];
    for (int c = 0; c < C; c++) {
      const size_t i = (size_t)n * C + c;
      CHECK_NEAR(out[i], x[i] * r * w[c], 1e-12);
      CHECK_NEAR(dx[i], r * w[c] * R[i] - x[i] * r * r * r * dot / C, 1e-10);
      dw_ref[c] += R[i] * x[i] * r;
      dt_ref[(size_t)ids[n] * C + c] += R[i];
    }
  }
  for (int c = 0; c < C; c++) CHECK_NEAR(dw[c], dw_ref[c], 1e-9);
  for (size_t i = 0; i < dt.size(); i++) CHECK_NEAR(dt[i], dt_ref[i], 1e-10);
  // RoPE over enough rows to run on every thread equals one row at a time (serial).
  const int RB = 2, RT = 600, nh = 4, hd = 16;
  Vec yd = Randn((size_t)RB * RT * nh * hd, 123);
  std::vector<float> y(yd.begin(), yd.end()), y1 = y;
  rope_forward(y.data(), RB, RT, nh, hd, 5, 10000.0f);
  for (int b = 0; b < RB; b++)
    for (int t = 0; t < RT; t++)
      rope_forward(y1.data() + ((size_t)b * RT + t) * nh * hd, 1, 1, nh, hd, 5 + t, 10000.0f);
  CHECK(y == y1);
  rope_backward(y.data(), RB, RT, nh, hd, 5, 10000.0f);
  for (int b = 0; b < RB; b++)
    for (int t = 0; t < RT; t++)
      rope_backward(y1.data() + ((size_t)b * RT + t) * nh * hd, 1, 1, nh, hd, 5 + t, 10000.0f);
  CHECK(y == y1);
}

TEST(vexp_accuracy_and_edges) {
  double worst = 0;
  for (int i = 0; i <= 2000000; i++) {
    const float x = -87.0f + 175.0f * (float)i / 2000000.0f;
    const double want = std::exp((double)x);
    worst = std::max(worst, std::fabs((double)vexp(x) - want) / want);
  }
  CHECK(worst < 3e-7);  // about 2.5 ulp
  CHECK_EQ(vexp(0.0f), 1.0f);
  CHECK_EQ(vexp(-200.0f), 0.0f);
  CHECK_EQ(vexp(-1e30f), 0.0f);
  CHECK(std::isinf(vexp(200.0f)));
  CHECK(std::isinf(vexp(1e30f)));
  CHECK(std::isnan(vexp(NAN)));
  // The vectorised loops agree with the scalar function.
  std::vector<float> x(1003), out(1003);
  for (size_t i = 0; i < x.size(); i++) x[i] = -20.0f + 0.02f * (float)i;
  double s = exp_sum(out.data(), x.data(), (int)x.size(), 1.5f), ref = 0;
  for (size_t i = 0; i < x.size(); i++) {
    CHECK_EQ(out[i], vexp(x[i] - 1.5f));
    ref += std::exp((double)x[i] - 1.5);
  }
  CHECK_NEAR(s, ref, 1e-6 * ref);
  CHECK_EQ(max_of(x.data(), (int)x.size()), x.back());
}

TEST_MAIN()
