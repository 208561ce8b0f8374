// muon_test.cpp: the Muon optimizer's CPU reference (common/cpu/muon.h) and
// the CPU backend's Muon step: Newton-Schulz against its exact action on the
// singular values (float64), orthogonality on random matrices of several
// shapes, the whole update against a plain loop transcription, the backend's
// step for every parameter group, thread-count independence, and a finite-
// difference check that the orthogonalised gradient is the descent direction
// the loss sees.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "../test.h"
#include "cpu/backend_cpu.h"
#include "cpu/model.h"
#include "cpu/muon.h"
#include "model/params.h"

using namespace lm;
using Mat = std::vector<double>;  // row-major

namespace {

Mat Randn(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<double> d(0.0, 1.0);
  Mat v(n);
  for (double& x : v) x = d(g);
  return v;
}

// k orthonormal columns of length n (n x k, row-major), by Gram-Schmidt twice.
Mat OrthonormalColumns(int n, int k, uint32_t seed) {
  Mat q = Randn((size_t)n * k, seed);
  for (int pass = 0; pass < 2; pass++)
    for (int j = 0; j < k; j++) {
      for (int i = 0; i < j; i++) {
        double d = 0;
        for (int r = 0; r < n; r++) d += q[(size_t)r * k + i] * q[(size_t)r * k + j];
        for (int r = 0; r < n; r++) q[(size_t)r * k + j] -= d * q[(size_t)r * k + i];
      }
      double s = 0;
      for (int r = 0; r < n; r++) s += q[(size_t)r * k + j] * q[(size_t)r * k + j];
      for (int r = 0; r < n; r++) q[(size_t)r * k + j] /= std::sqrt(s);
    }
  return q;
}

// U diag(s) V^T for U (rows,k), V (cols,k).
Mat Compose(const Mat& U, const std::vector<double>& s, const Mat& V, int rows, int cols) {
  const int k = (int)s.size();
  Mat out((size_t)rows * cols, 0.0);
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++)
      for (int l = 0; l < k; l++)
        out[(size_t)i * cols + j] += U[(size_t)i * k + l] * s[l] * V[(size_t)j * k + l];
  return out;
}

// The quintic applied `steps` times to one singular value.
double Quintic(double x, int steps) {
  const double a = cpu::kNsA, b = cpu::kNsB, c = cpu::kNsC;
  for (int i = 0; i < steps; i++) x = a * x + b * x * x * x + c * x * x * x * x * x;
  return x;
}

// Eigenvalues of a symmetric k x k matrix by cyclic Jacobi rotations.
std::vector<double> SymEigenvalues(Mat a, int k) {
  for (int sweep = 0; sweep < 100; sweep++) {
    double off = 0;
    for (int p = 0; p < k; p++)
      for (int q = p + 1; q < k; q++) off += a[(size_t)p * k + q] * a[(size_t)p * k + q];
    if (off < 1e-22) break;
    for (int p = 0; p < k; p++)
      for (int q = p + 1; q < k; q++) {
        const double apq = a[(size_t)p * k + q];
        if (std::fabs(apq) < 1e-300) continue;
        const double theta = (a[(size_t)q * k + q] - a[(size_t)p * k + p]) / (2 * apq);
        const double t = (theta >= 0 ? 1 : -1) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int r = 0; r < k; r++) {  // columns p, q
          const double x = a[(size_t)r * k + p], y = a[(size_t)r * k + q];
          a[(size_t)r * k + p] = c * x - s * y;
          a[(size_t)r * k + q] = s * x + c * y;
        }
        for (int r = 0; r < k; r++) {  // rows p, q
          const double x = a[(size_t)p * k + r], y = a[(size_t)q * k + r];
          a[(size_t)p * k + r] = c * x - s * y;
          a[(size_t)q * k + r] = s * x + c * y;
        }
      }
  }
  std::vector<double> ev(k);
  for (int i = 0; i < k; i++) ev[i] = a[(size_t)i * k + i];
  return ev;
}

// The Gram matrix of the shorter side: X X^T (rows <= cols) or X^T X.
Mat Gram(const Mat& x, int rows, int cols) {
  const int k = std::min(rows, cols);
  Mat g((size_t)k * k, 0.0);
  for (int i = 0; i < k; i++)
    for (int j = 0; j < k; j++) {
      double s = 0;
      if (rows <= cols)
        for (int l = 0; l < cols; l++) s += x[(size_t)i * cols + l] * x[(size_t)j * cols + l];
      else
        for (int l = 0; l < rows; l++) s += x[(size_t)l * cols + i] * x[(size_t)l * cols + j];
      g[(size_t)i * k + j] = s;
    }
  return g;
}

double MaxAbsDiff(const Mat& a, const Mat& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); i++) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

struct Shape {
  int rows, cols;
};
const Shape kShapes[] = {{16, 16}, {8, 24}, {24, 8}, {1, 12}, {12, 1}, {40, 64}, {64, 40}};

}  // namespace

// X = U diag(s) V^T goes to U diag(q(s / ||s||)) V^T, q the quintic 5 times:
// exactly in double, within float rounding in float.
TEST(newton_schulz_maps_singular_values_by_the_quintic) {
  uint32_t seed = 1;
  for (const Shape& sh : kShapes) {
    const int k = std::min(sh.rows, sh.cols);
    Mat U = OrthonormalColumns(sh.rows, k, seed++), V = OrthonormalColumns(sh.cols, k, seed++);
    std::vector<double> s(k), q(k);
    double norm = 0;
    for (int i = 0; i < k; i++) {
      s[i] = 3.0 * std::pow(0.02, k > 1 ? (double)i / (k - 1) : 0.0);  // 3 down to 0.06
      norm += s[i] * s[i];
    }
    norm = std::sqrt(norm);
    for (int i = 0; i < k; i++) q[i] = Quintic(s[i] / (norm + cpu::kNsEps), 5);
    const Mat g = Compose(U, s, V, sh.rows, sh.cols), want = Compose(U, q, V, sh.rows, sh.cols);
    Mat x(g.size()), scratch(cpu::newton_schulz_scratch(sh.rows, sh.cols));
    cpu::newton_schulz(x.data(), g.data(), sh.rows, sh.cols, 5, scratch.data());
    const double d64 = MaxAbsDiff(x, want);
    std::vector<float> gf(g.begin(), g.end()), xf(g.size()),
        sf(cpu::newton_schulz_scratch(sh.rows, sh.cols));
    cpu::newton_schulz(xf.data(), gf.data(), sh.rows, sh.cols, 5, sf.data());
    const double d32 = MaxAbsDiff(Mat(xf.begin(), xf.end()), want);
    if (!(d64 < 1e-12) || !(d32 < 2e-5))
      lm_test::Fail(__FILE__, __LINE__,
                    std::to_string(sh.rows) + "x" + std::to_string(sh.cols) + ": max difference " +
                        std::to_string(d64) + " (double), " + std::to_string(d32) + " (float)");
  }
}

// out may alias g (muon_update runs it in place).
TEST(newton_schulz_in_place_equals_out_of_place) {
  Mat g = Randn(12 * 20, 5), x(g.size()), s(cpu::newton_schulz_scratch(12, 20));
  cpu::newton_schulz(x.data(), g.data(), 12, 20, 5, s.data());
  cpu::newton_schulz(g.data(), g.data(), 12, 20, 5, s.data());
  CHECK(std::memcmp(x.data(), g.data(), g.size() * sizeof(double)) == 0);
}

// On Gaussian matrices with both sides unequal enough that no singular value
// is tiny, every singular value of the float result lies in the quintic's band
// [0.68, 1.16] (the published coefficients do not converge to exactly 1).
TEST(newton_schulz_orthogonalises_random_matrices) {
  const Shape shapes[] = {{32, 96}, {96, 32}, {24, 200}, {8, 64}};
  uint32_t seed = 11;
  for (const Shape& sh : shapes) {
    Mat g = Randn((size_t)sh.rows * sh.cols, seed++);
    std::vector<float> gf(g.begin(), g.end()), xf(g.size()),
        sf(cpu::newton_schulz_scratch(sh.rows, sh.cols));
    cpu::newton_schulz(xf.data(), gf.data(), sh.rows, sh.cols, 5, sf.data());
    const int k = std::min(sh.rows, sh.cols);
    std::vector<double> ev = SymEigenvalues(Gram(Mat(xf.begin(), xf.end()), sh.rows, sh.cols), k);
    const double lo = std::sqrt(*std::min_element(ev.begin(), ev.end()));
    const double hi = std::sqrt(*std::max_element(ev.begin(), ev.end()));
    if (!(lo > 0.67 && hi < 1.16))
      lm_test::Fail(__FILE__, __LINE__,
                    std::to_string(sh.rows) + "x" + std::to_string(sh.cols) +
                        ": singular values in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                        "]");
    // Without the iterations the spread is far wider: the test can fail.
    cpu::newton_schulz(xf.data(), gf.data(), sh.rows, sh.cols, 0, sf.data());
    ev = SymEigenvalues(Gram(Mat(xf.begin(), xf.end()), sh.rows, sh.cols), k);
    CHECK(std::sqrt(*std::max_element(ev.begin(), ev.end())) < 0.67);
  }
}

namespace {

// Muon's step written out with loops, without muon.cpp's products or its
// transposed Gram matrix for tall shapes: X <- a X + (b A + c A A) X with
// A = X X^T whatever the shape.
Mat PlainMuon(Mat w, const Mat& grad, Mat* mom, int rows, int cols, const cpu::MuonStep& s) {
  const size_t n = (size_t)rows * cols;
  Mat u(n);
  double norm = 0;
  for (size_t i = 0; i < n; i++) {
    const double g = grad[i] * (double)s.grad_scale;
    (*mom)[i] = s.momentum * (*mom)[i] + (1 - (double)s.momentum) * g;
    u[i] = s.nesterov ? (1 - (double)s.momentum) * g + s.momentum * (*mom)[i] : (*mom)[i];
    norm += u[i] * u[i];
  }
  for (double& x : u) x /= std::sqrt(norm) + cpu::kNsEps;
  for (int it = 0; it < s.ns_steps; it++) {
    Mat a((size_t)rows * rows, 0.0), aa((size_t)rows * rows, 0.0), next(n, 0.0);
    for (int i = 0; i < rows; i++)
      for (int j = 0; j < rows; j++)
        for (int l = 0; l < cols; l++)
          a[(size_t)i * rows + j] += u[(size_t)i * cols + l] * u[(size_t)j * cols + l];
    for (int i = 0; i < rows; i++)
      for (int j = 0; j < rows; j++)
        for (int l = 0; l < rows; l++)
          aa[(size_t)i * rows + j] += a[(size_t)i * rows + l] * a[(size_t)l * rows + j];
    for (int i = 0; i < rows; i++)
      for (int j = 0; j < cols; j++) {
        double v = cpu::kNsA * u[(size_t)i * cols + j];
        for (int l = 0; l < rows; l++)
          v += (cpu::kNsB * a[(size_t)i * rows + l] + cpu::kNsC * aa[(size_t)i * rows + l]) *
               u[(size_t)l * cols + j];
        next[(size_t)i * cols + j] = v;
      }
    u = next;
  }
  const double scale = std::sqrt(std::max(1.0, (double)rows / cols));
  for (size_t i = 0; i < n; i++)
    w[i] = w[i] * (1 - (double)s.lr * s.weight_decay) - (double)s.lr * scale * u[i];
  return w;
}

}  // namespace

// The lerp form of the momentum differs from the plain one by the factor
// (1 - mu), which the normalisation removes; the loop transcription uses the
// plain products, muon.cpp the transposed Gram matrix for tall shapes.
TEST(muon_update_matches_a_plain_transcription) {
  uint32_t seed = 21;
  for (const Shape& sh : kShapes)
    for (bool nesterov : {true, false}) {
      const size_t n = (size_t)sh.rows * sh.cols;
      Mat w = Randn(n, seed++), g = Randn(n, seed++), m = Randn(n, seed++);
      cpu::MuonStep s;
      s.lr = 0.05f;
      s.momentum = 0.9f;
      s.nesterov = nesterov;
      s.weight_decay = 0.3f;
      s.grad_scale = 0.7f;
      Mat m_ref = m;
      // The plain transcription's momentum is mu m + (1 - mu) g: the lerp form.
      Mat want = PlainMuon(w, g, &m_ref, sh.rows, sh.cols, s);
      std::vector<float> wf(w.begin(), w.end()), gf(g.begin(), g.end()), mf(m.begin(), m.end()),
          sf(cpu::newton_schulz_scratch(sh.rows, sh.cols));
      cpu::muon_update(wf.data(), gf.data(), mf.data(), sh.rows, sh.cols, s, sf.data());
      const double dw = MaxAbsDiff(Mat(wf.begin(), wf.end()), want);
      const double dm = MaxAbsDiff(Mat(mf.begin(), mf.end()), m_ref);
      if (!(dw < 1e-5) || !(dm < 1e-6))
        lm_test::Fail(__FILE__, __LINE__,
                      std::to_string(sh.rows) + "x" + std::to_string(sh.cols) +
                          (nesterov ? " nesterov" : "") + ": weights differ by " +
                          std::to_string(dw) + ", momentum by " + std::to_string(dm));
    }
}

namespace {

ModelConfig Small(bool tied) {
  ModelConfig c;
  c.vocab_size = 50;
  c.dim = 16;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.ffn_dim = 40;  // down_proj is 16 x 40, gate/up 40 x 16: both aspect ratios
  c.context = 16;
  c.tied_embeddings = tied;
  c.Pad();
  return c;
}

std::vector<float> SmallParams(const ModelConfig& c, uint32_t seed) {
  ParamLayout L = MakeParamLayout(c);
  std::vector<float> p(L.total);
  InitParams(c, L, seed, p.data());
  return p;
}

std::unique_ptr<Backend> Cpu(const ModelConfig& c, int threads) {
  std::unique_ptr<Backend> b = NewCpuBackend();
  BackendOptions o;
  o.max_batch = 2;
  o.max_seq = 8;
  o.threads = threads;
  CHECK_OK(b->Init(c, o));
  return b;
}

AdamWConfig MixedConfig() {
  AdamWConfig o;
  o.lr = 0.01f;
  o.embed_lr = 0.02f;
  o.head_lr = 0.03f;
  o.norm_lr = 0.04f;
  o.weight_decay = 0.1f;
  o.grad_clip = 0.5f;
  o.muon.enabled = true;
  o.muon.lr = 0.05f;
  o.muon.momentum = 0.9f;
  o.muon.weight_decay = 0.2f;
  return o;
}

std::vector<int32_t> Ids(int n, uint32_t seed) {
  std::mt19937 g(seed);
  std::vector<int32_t> v(n);
  for (int32_t& x : v) x = (int32_t)(g() % 50);
  return v;
}

}  // namespace

// One step of the CPU backend with Muon: every hidden matrix moves by Muon's
// update, every other tensor by AdamW's with its group's learning rate; m
// holds the matrices' momentum and v stays zero there.
TEST(backend_step_gives_matrices_muon_and_the_rest_adamw) {
  const ModelConfig c = Small(false);
  const ParamLayout L = MakeParamLayout(c);
  auto b = Cpu(c, 1);
  std::vector<float> p0 = SmallParams(c, 3);
  CHECK_OK(b->SetParams(p0.data()));
  std::vector<int32_t> in = Ids(16, 4), tg = Ids(16, 5);
  float loss, norm;
  bool skipped;
  CHECK_OK(b->ZeroGrad());
  CHECK_OK(b->ForwardBackward(in.data(), tg.data(), 2, 8, 1.0f, &loss));
  std::vector<float> g(L.total), p1(L.total), m(L.total), v(L.total);
  CHECK_OK(b->GetGrads(g.data()));
  const AdamWConfig o = MixedConfig();
  CHECK_OK(b->OptimizerStep(o, &norm, &skipped));
  CHECK(!skipped && norm > o.grad_clip);  // clipping is exercised
  int64_t step;
  CHECK_OK(b->GetParams(p1.data()));
  CHECK_OK(b->GetOptimizerState(m.data(), v.data(), &step));
  const double clip = o.grad_clip / norm;
  for (const TensorInfo& t : L.tensors) {
    const size_t n = t.numel, off = t.offset;
    Mat w(p0.begin() + off, p0.begin() + off + n), gt(g.begin() + off, g.begin() + off + n), want;
    Mat mom(n, 0.0), vv(n, 0.0);
    if (t.group == ParamGroup::kMatrix) {
      cpu::MuonStep s;
      s.lr = o.muon.lr;
      s.momentum = o.muon.momentum;
      s.weight_decay = o.muon.weight_decay;
      s.grad_scale = (float)clip;
      want = PlainMuon(w, gt, &mom, (int)t.rows(), (int)t.cols(), s);
    } else {  // AdamW's first step
      const double lr = o.LrFor(t.group), wd = t.decay ? o.weight_decay : 0.0;
      want = w;
      for (size_t i = 0; i < n; i++) {
        const double gi = (double)(float)(gt[i] * (float)clip);
        mom[i] = (1 - (double)o.beta1) * gi;
        vv[i] = (1 - (double)o.beta2) * gi * gi;
        want[i] -= lr * wd * want[i];
        want[i] -= lr / (1 - (double)o.beta1) * mom[i] /
                   (std::sqrt(vv[i]) / std::sqrt(1 - (double)o.beta2) + o.eps);
      }
    }
    const double dp = MaxAbsDiff(Mat(p1.begin() + off, p1.begin() + off + n), want);
    const double dm = MaxAbsDiff(Mat(m.begin() + off, m.begin() + off + n), mom);
    const double dv = MaxAbsDiff(Mat(v.begin() + off, v.begin() + off + n), vv);
    if (!(dp < 2e-6) || !(dm < 1e-7) || !(dv < 1e-9))
      lm_test::Fail(__FILE__, __LINE__,
                    t.name + " (" + ParamGroupName(t.group) + "): weights differ by " +
                        std::to_string(dp) + ", m by " + std::to_string(dm) + ", v by " +
                        std::to_string(dv));
  }
}

// Matrices are spread over threads, each computed by one thread alone: the
// result is the same bits for any thread count.
TEST(backend_muon_steps_do_not_depend_on_the_thread_count) {
  const ModelConfig c = Small(true);
  std::vector<float> out[2];
  for (int k = 0; k < 2; k++) {
    auto b = Cpu(c, k + 1);
    std::vector<float> p = SmallParams(c, 9);
    CHECK_OK(b->SetParams(p.data()));
    for (int s = 0; s < 3; s++) {
      std::vector<int32_t> in = Ids(16, 10 + s), tg = Ids(16, 20 + s);
      float loss, norm;
      bool skipped;
      CHECK_OK(b->ZeroGrad());
      CHECK_OK(b->ForwardBackward(in.data(), tg.data(), 2, 8, 1.0f, &loss));
      CHECK_OK(b->OptimizerStep(MixedConfig(), &norm, &skipped));
    }
    out[k].resize(p.size());
    CHECK_OK(b->GetParams(out[k].data()));
  }
  CHECK(std::memcmp(out[0].data(), out[1].data(), out[0].size() * sizeof(float)) == 0);
}

// The orthogonalised gradient, scaled as Muon scales it, is a direction in
// which the loss falls at the rate <gradient, direction> predicts: central
// differences of the double model along it (every matrix at once) agree with
// the analytic inner product, which is negative.
TEST(muon_direction_descends_as_finite_differences_predict) {
  const ModelConfig c = Small(true);
  cpu::Model<double> m;
  const int B = 2, T = 8;
  CHECK_OK(m.Init(c, B, T, true));
  std::vector<float> pf = SmallParams(c, 31);
  for (size_t i = 0; i < pf.size(); i++) m.params()[i] = pf[i];
  std::vector<int32_t> in = Ids(B * T, 32), tg = Ids(B * T, 33);
  m.ZeroGrad();
  double loss;
  CHECK_OK(m.ForwardBackward(in.data(), tg.data(), B, T, 1.0, &loss));
  const ParamLayout& L = m.layout();
  Mat grad(m.grads(), m.grads() + L.total), dir(L.total, 0.0), p0(m.params(), m.params() + L.total);
  double predicted = 0;
  for (const TensorInfo& t : L.tensors) {
    if (t.group != ParamGroup::kMatrix) continue;
    Mat s(cpu::newton_schulz_scratch((int)t.rows(), (int)t.cols()));
    cpu::newton_schulz(dir.data() + t.offset, grad.data() + t.offset, (int)t.rows(), (int)t.cols(),
                       5, s.data());
    const double scale = cpu::muon_shape_scale(t.rows(), t.cols());
    for (size_t i = 0; i < t.numel; i++) {
      dir[t.offset + i] *= -scale;
      predicted += grad[t.offset + i] * dir[t.offset + i];
    }
  }
  auto loss_at = [&](double h) {
    for (size_t i = 0; i < L.total; i++) m.params()[i] = p0[i] + h * dir[i];
    std::vector<double> l(B * T);
    CHECK_OK(m.ForwardLoss(in.data(), tg.data(), B, T, l.data()));
    double sum = 0;
    for (double x : l) sum += x;
    return sum / (B * T);
  };
  const double h = 1e-5, fd = (loss_at(h) - loss_at(-h)) / (2 * h);
  CHECK(predicted < 0);
  if (!(std::fabs(fd - predicted) <= 1e-6 * std::max(1.0, std::fabs(predicted))))
    lm_test::Fail(
        __FILE__, __LINE__,
        "finite difference " + std::to_string(fd) + " vs predicted " + std::to_string(predicted));
}

TEST_MAIN()
