// evaluate_test.cpp: lm-eval's windowing and sums (engine/evaluate.h), checked
// against a fake backend whose loss at a position is a known function of the
// exact context it was given, so that any target scored twice, missed, or
// predicted from the wrong tokens changes the answer.
#include "engine/evaluate.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "../test.h"

using lm::EvalOptions;
using lm::EvalSums;
using lm::EvalWindow;
using lm::Status;

namespace {

// Loss of target y after context c[0..n): a hash of both, in (0, 8).
float ContextLoss(const int32_t* c, int n, int32_t y) {
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](uint64_t v) { h = (h ^ v) * 1099511628211ULL; };
  mix((uint64_t)n);
  for (int i = 0; i < n; i++) mix((uint64_t)c[i]);
  mix((uint64_t)y + 1000003);
  return (float)((h >> 11) % 100000 + 1) * 8e-5f;
}

class FakeBackend : public lm::Backend {
 public:
  int calls = 0, max_rows = 0, bad_width = 0;
  int expect_width = -1;
  std::string Describe() const override { return "fake"; }
  double PeakFlops() const override { return 0; }
  Status Init(const lm::ModelConfig&, const lm::BackendOptions&) override { return Status::OK(); }
  Status SetParams(const float*) override { return Status::OK(); }
  Status GetParams(float*) override { return Status::OK(); }
  Status SetOptimizerState(const float*, const float*, int64_t) override { return Status::OK(); }
  Status GetOptimizerState(float*, float*, int64_t*) override { return Status::OK(); }
  Status ZeroGrad() override { return Status::OK(); }
  Status ForwardBackward(const int32_t*, const int32_t*, int, int, float, float*) override {
    return Status::Invalid("unused");
  }
  Status StepLoss(float*) override { return Status::Invalid("unused"); }
  Status OptimizerStep(const lm::AdamWConfig&, float*, bool*) override { return Status::OK(); }
  Status GetGrads(float*) override { return Status::OK(); }
  Status ForwardLoss(const int32_t* inputs, const int32_t* targets, int B, int T,
                     float* losses) override {
    calls++;
    max_rows = std::max(max_rows, B);
    if (expect_width >= 0 && T != expect_width) bad_width++;
    for (int b = 0; b < B; b++)
      for (int t = 0; t < T; t++) {
        int32_t y = targets[b * T + t];
        losses[b * T + t] = y < 0 ? 0.0f : ContextLoss(inputs + b * T, t + 1, y);
      }
    return Status::OK();
  }
  Status ForwardLogits(const int32_t*, int, int, float*) override {
    return Status::Invalid("unused");
  }
  Status ResetCache() override { return Status::OK(); }
  Status Decode(const int32_t*, int, float*) override { return Status::Invalid("unused"); }
  int CachePosition() const override { return 0; }
};

std::vector<int32_t> Tokens(int64_t n, int vocab, uint64_t seed) {
  std::vector<int32_t> t;
  uint64_t x = seed;
  for (int64_t i = 0; i < n; i++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    t.push_back((int32_t)((x >> 33) % (uint64_t)vocab));
  }
  return t;
}

lm::TokenReader ReaderOf(const std::vector<int32_t>& data) {
  return [&data](int64_t start, int64_t n, int32_t* out) {
    if (start < 0 || start + n > (int64_t)data.size()) return Status::Invalid("read out of range");
    std::memcpy(out, data.data() + start, (size_t)n * sizeof(int32_t));
    return Status::OK();
  };
}

// The first window holding target p, computed independently of PlanWindows:
// window k holds targets k*S+1 .. k*S+T, so k = max(0, ceil((p - T) / S)).
int64_t ContextStart(int64_t p, int T, int S) {
  int64_t k = p <= T ? 0 : (p - T + S - 1) / S;
  return k * S;
}

}  // namespace

TEST(plan_consecutive_windows) {
  std::vector<EvalWindow> w;
  CHECK_OK(lm::PlanWindows(10, 4, 4, &w));
  CHECK_EQ(w.size(), (size_t)3);
  CHECK_EQ(w[0].begin, 0);
  CHECK_EQ(w[0].targets, 4);
  CHECK_EQ(w[0].scored, 4);
  CHECK_EQ(w[1].begin, 4);
  CHECK_EQ(w[1].targets, 4);
  CHECK_EQ(w[1].scored, 4);
  CHECK_EQ(w[2].begin, 8);
  CHECK_EQ(w[2].targets, 1);
  CHECK_EQ(w[2].scored, 1);
  // N - 1 a multiple of T: no empty window at the end.
  CHECK_OK(lm::PlanWindows(9, 4, 4, &w));
  CHECK_EQ(w.size(), (size_t)2);
  CHECK_OK(lm::PlanWindows(2, 4, 4, &w));
  CHECK_EQ(w.size(), (size_t)1);
  CHECK_EQ(w[0].targets, 1);
}

TEST(plan_strided_windows_match_hugging_face) {
  // transformers' perplexity guide, max_length = T + 1 tokens, stride S:
  // begin = 0, S, 2S...; end = min(begin + T + 1, N); scored = end - prev_end.
  std::vector<EvalWindow> w;
  CHECK_OK(lm::PlanWindows(10, 4, 2, &w));
  CHECK_EQ(w.size(), (size_t)4);
  int64_t begins[] = {0, 2, 4, 6};
  int targets[] = {4, 4, 4, 3}, scored[] = {4, 2, 2, 1};
  for (int i = 0; i < 4; i++) {
    CHECK_EQ(w[i].begin, begins[i]);
    CHECK_EQ(w[i].targets, targets[i]);
    CHECK_EQ(w[i].scored, scored[i]);
  }
}

TEST(plan_every_target_once_with_enough_context) {
  for (int64_t N = 2; N <= 40; N++)
    for (int T = 1; T <= 9; T++)
      for (int S = 1; S <= T; S++) {
        std::vector<EvalWindow> w;
        CHECK_OK(lm::PlanWindows(N, T, S, &w));
        std::vector<int> seen((size_t)N, 0);
        for (size_t k = 0; k < w.size(); k++) {
          CHECK(w[k].targets >= 1 && w[k].targets <= T);
          CHECK(w[k].scored >= 1 && w[k].scored <= w[k].targets);
          CHECK(w[k].begin + w[k].targets < N);
          for (int i = w[k].targets - w[k].scored; i < w[k].targets; i++) {
            int64_t p = w[k].begin + i + 1;
            seen[(size_t)p]++;
            // After the first window, every scored target sees >= T - S + 1 tokens.
            if (k > 0) CHECK(i + 1 >= T - S + 1);
            CHECK_EQ(w[k].begin, ContextStart(p, T, S));
          }
        }
        CHECK_EQ(seen[0], 0);
        for (int64_t p = 1; p < N; p++)
          if (seen[(size_t)p] != 1)
            lm_test::Fail(__FILE__, __LINE__,
                          "N=" + std::to_string(N) + " T=" + std::to_string(T) +
                              " S=" + std::to_string(S) + ": target " + std::to_string(p) +
                              " scored " + std::to_string(seen[(size_t)p]) + " times");
      }
}

TEST(plan_rejects_bad_arguments) {
  std::vector<EvalWindow> w;
  Status s = lm::PlanWindows(1, 4, 4, &w);
  CHECK(s.code() == Status::kInvalid);
  CHECK(lm::PlanWindows(0, 4, 4, &w).code() == Status::kInvalid);
  CHECK(lm::PlanWindows(10, 4, 5, &w).code() == Status::kUsage);
  CHECK(lm::PlanWindows(10, 4, 0, &w).code() == Status::kUsage);
  CHECK(lm::PlanWindows(10, 0, 0, &w).code() == Status::kUsage);
}

TEST(evaluate_scores_each_target_from_its_window) {
  const int V = 50;
  std::vector<int32_t> bytes(V, 1);
  for (int64_t N : {2, 7, 33, 100}) {
    std::vector<int32_t> data = Tokens(N, V, (uint64_t)N);
    for (int T : {1, 4, 16}) {
      for (int S : {1, T / 2, T}) {
        if (S < 1) continue;
        FakeBackend be;
        std::vector<float> per;
        EvalSums sums;
        EvalOptions opt{T, S, 3};
        CHECK_OK(lm::Evaluate(&be, N, ReaderOf(data), bytes, opt, nullptr, &sums, &per));
        CHECK_EQ(sums.targets, N - 1);
        CHECK(std::isnan(per[0]));
        double total = 0;
        for (int64_t p = 1; p < N; p++) {
          int64_t c0 = ContextStart(p, T, S);
          float want = ContextLoss(data.data() + c0, (int)(p - c0), data[(size_t)p]);
          if (per[(size_t)p] != want)
            lm_test::Fail(__FILE__, __LINE__, "wrong loss at " + std::to_string(p));
          total += want;
        }
        CHECK_NEAR(sums.loss, total, 1e-9 * total);
      }
    }
  }
}

TEST(evaluate_independent_of_batch) {
  const int V = 300;
  std::vector<int32_t> bytes(V, 2);
  std::vector<int32_t> data = Tokens(1000, V, 5);
  EvalSums ref;
  std::vector<float> ref_per;
  for (int B : {1, 2, 3, 8, 64, 200}) {
    for (int S : {16, 5}) {
      FakeBackend be;
      be.expect_width = 16;
      EvalSums sums;
      std::vector<float> per;
      CHECK_OK(lm::Evaluate(&be, (int64_t)data.size(), ReaderOf(data), bytes, EvalOptions{16, S, B},
                            nullptr, &sums, &per));
      CHECK(be.max_rows <= B);
      CHECK_EQ(be.bad_width, 0);
      if (S != 16) continue;
      if (B == 1) {
        ref = sums;
        ref_per = per;
        continue;
      }
      CHECK_EQ(sums.targets, ref.targets);
      CHECK_EQ(sums.loss, ref.loss);  // same order of summation: bitwise equal
      CHECK_EQ(sums.run_m2, ref.run_m2);
      CHECK_EQ(sums.bytes, ref.bytes);
      CHECK(std::memcmp(per.data() + 1, ref_per.data() + 1, (per.size() - 1) * sizeof(float)) == 0);
    }
  }
}

TEST(evaluate_bits_per_byte_leaves_out_special_targets) {
  // Vocabulary of 4: ids 0..2 are 1, 2 and 3 bytes long; id 3 is special.
  std::vector<int32_t> bytes = {1, 2, 3, -1};
  std::vector<int32_t> data = {3, 0, 1, 2, 3, 2, 2, 3, 0};
  FakeBackend be;
  EvalSums sums;
  std::vector<float> per;
  CHECK_OK(lm::Evaluate(&be, (int64_t)data.size(), ReaderOf(data), bytes, EvalOptions{3, 3, 2},
                        nullptr, &sums, &per));
  double all = 0, text = 0;
  int64_t nbytes = 0, ntext = 0;
  for (size_t p = 1; p < data.size(); p++) {
    all += per[p];
    if (data[p] == 3) continue;
    text += per[p];
    nbytes += bytes[(size_t)data[p]];
    ntext++;
  }
  CHECK_EQ(sums.targets, (int64_t)data.size() - 1);
  CHECK_EQ(sums.text_targets, ntext);
  CHECK_EQ(sums.bytes, nbytes);
  CHECK_EQ(nbytes, 1 + 2 + 3 + 3 + 3 + 1);
  CHECK_NEAR(sums.loss, all, 1e-6);
  CHECK_NEAR(sums.bits_per_byte(), text / std::log(2.0) / (double)nbytes, 1e-12);
  CHECK_NEAR(sums.mean_loss(), all / 8, 1e-7);
  CHECK_NEAR(sums.perplexity(), std::exp(all / 8), 1e-6);
}

TEST(sums_known_answers) {
  EvalSums s;
  for (double x : {1.0, 2.0, 3.0, 4.0}) s.Add(x, false, 2);
  CHECK_NEAR(s.mean_loss(), 2.5, 1e-15);
  // Sample variance 5/3; standard error sqrt(5/3 / 4).
  CHECK_NEAR(s.std_error(), std::sqrt(5.0 / 12.0), 1e-12);
  CHECK_NEAR(s.bits_per_byte(), 10.0 / std::log(2.0) / 8.0, 1e-12);
  CHECK_NEAR(s.perplexity(), std::exp(2.5), 1e-12);
  EvalSums one;
  one.Add(3.0, false, 1);
  CHECK_EQ(one.std_error(), 0.0);
  // Losses close together far from 0: sum(x^2) - n mean^2 cancels to noise
  // (it gave 0 or a wrong digit); the running deviations keep the variance.
  EvalSums close;
  const int n = 1000000;
  for (int i = 0; i < n; i++) close.Add(1e4 + ((i % 2) ? 1e-4 : -1e-4), false, 1);
  // Sample variance 1e-8 * n / (n - 1); standard error sqrt(var / n).
  CHECK_NEAR(close.std_error() / std::sqrt(1e-8 / (n - 1)), 1.0, 1e-6);
  EvalSums special_only;
  special_only.Add(1.0, true, 5);
  CHECK_EQ(special_only.bytes, 0);
  CHECK(std::isnan(special_only.bits_per_byte()));
}

TEST(evaluate_rejects_ids_outside_vocabulary) {
  std::vector<int32_t> bytes(10, 1);
  std::vector<int32_t> data = {1, 2, 3, 10, 4};
  FakeBackend be;
  EvalSums sums;
  Status s =
      lm::Evaluate(&be, 5, ReaderOf(data), bytes, EvalOptions{4, 4, 1}, nullptr, &sums, nullptr);
  CHECK(s.code() == Status::kInvalid);
  CHECK(s.message().find("position 3") != std::string::npos);
}

TEST(evaluate_reports_progress_and_passes_read_errors) {
  std::vector<int32_t> bytes(10, 1);
  std::vector<int32_t> data = Tokens(50, 10, 3);
  FakeBackend be;
  EvalSums sums;
  std::vector<int64_t> seen;
  CHECK_OK(lm::Evaluate(
      &be, 50, ReaderOf(data), bytes, EvalOptions{8, 8, 2},
      [&seen](int64_t n) { seen.push_back(n); }, &sums, nullptr));
  CHECK_EQ(seen.size(), (size_t)4);  // 7 windows, 2 per batch
  CHECK_EQ(seen.back(), 49);
  auto failing = [](int64_t, int64_t, int32_t*) {
    return Status::Corruption("shard 3: bad block");
  };
  Status s = lm::Evaluate(&be, 50, failing, bytes, EvalOptions{8, 8, 2}, nullptr, &sums, nullptr);
  CHECK(s.code() == Status::kCorruption);
}

TEST_MAIN()
