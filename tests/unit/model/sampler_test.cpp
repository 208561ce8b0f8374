// sampler_test.cpp: the next-token sampler (model/sampler.h): the generator's
// known answers, greedy decoding, each filter's kept set, the draw's
// frequencies, the repeat penalty, and exact reproduction from a seed.
#include "model/sampler.h"

#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <vector>

#include "../test.h"

using lm::Sampler;
using lm::SamplerConfig;

namespace {

// Logits whose softmax at temperature 1 is exactly `probs`.
std::vector<float> LogitsOf(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(p > 0 ? (float)std::log(p) : -INFINITY);
  return l;
}

// Counts of each id over n draws.
std::map<int, int> Draw(Sampler* s, const std::vector<float>& logits, int n) {
  std::map<int, int> c;
  for (int i = 0; i < n; i++) {
    int32_t id = -1;
    CHECK_OK(s->Sample(logits.data(), nullptr, 0, &id));
    c[id]++;
  }
  return c;
}

std::set<int> Support(const std::map<int, int>& c) {
  std::set<int> s;
  for (auto& kv : c) s.insert(kv.first);
  return s;
}

SamplerConfig Cfg(float temperature) {
  SamplerConfig c;
  c.temperature = temperature;
  c.seed = 1234;
  return c;
}

}  // namespace

// Reference values from an independent Python transcription of SplitMix64 and
// xoshiro256** (Blackman & Vigna); they must never change, since seeds
// printed by lm-sample promise to reproduce their output.
TEST(rng_known_answers) {
  lm::Rng r0(0);
  CHECK_EQ(r0.Next(), 0x99ec5f36cb75f2b4ULL);
  CHECK_EQ(r0.Next(), 0xbf6e1f784956452aULL);
  CHECK_EQ(r0.Next(), 0x1a5f849d4933e6e0ULL);
  lm::Rng r42(42);
  CHECK_EQ(r42.Next(), 0x15780b2e0c2ec716ULL);
  CHECK_EQ(r42.Next(), 0x6104d9866d113a7eULL);
  CHECK_EQ(r42.Next(), 0xae17533239e499a1ULL);
}

TEST(rng_uniform_range) {
  lm::Rng r(7);
  double lo = 1, hi = 0, sum = 0;
  for (int i = 0; i < 100000; i++) {
    double u = r.Uniform();
    CHECK(u >= 0 && u < 1);
    lo = std::min(lo, u);
    hi = std::max(hi, u);
    sum += u;
  }
  CHECK(lo < 0.001 && hi > 0.999);
  CHECK_NEAR(sum / 100000, 0.5, 0.005);
}

TEST(greedy_picks_argmax_lowest_id_on_tie) {
  Sampler s(Cfg(0), 5);
  std::vector<float> l = {0.1f, 3.0f, -2.0f, 3.0f, 1.0f};
  int32_t id = -1;
  for (int i = 0; i < 5; i++) {
    CHECK_OK(s.Sample(l.data(), nullptr, 0, &id));
    CHECK_EQ(id, 1);
  }
  // Only the first vocab_size logits count (padded rows beyond are ignored).
  std::vector<float> padded = {0.0f, 1.0f, 9.0f};
  Sampler s2(Cfg(0), 2);
  CHECK_OK(s2.Sample(padded.data(), nullptr, 0, &id));
  CHECK_EQ(id, 1);
}

TEST(top_k_one_is_greedy) {
  SamplerConfig c = Cfg(1.5f);
  c.top_k = 1;
  Sampler s(c, 4);
  std::vector<float> l = {0.5f, 0.7f, 0.69f, -3.0f};
  auto counts = Draw(&s, l, 200);
  CHECK_EQ(counts.size(), (size_t)1);
  CHECK_EQ(counts[1], 200);
}

TEST(temperature_one_matches_softmax) {
  std::vector<double> p = {0.5, 0.25, 0.125, 0.125};
  Sampler s(Cfg(1), 4);
  const int n = 40000;
  auto c = Draw(&s, LogitsOf(p), n);
  for (int i = 0; i < 4; i++) {
    double sd = std::sqrt(p[i] * (1 - p[i]) / n);
    CHECK_NEAR((double)c[i] / n, p[i], 5 * sd);
  }
}

TEST(temperature_sharpens_and_flattens) {
  // At temperature t the probabilities are p^(1/t) renormalised.
  std::vector<double> p = {0.6, 0.3, 0.1};
  for (double t : {0.5, 2.0}) {
    std::vector<double> q;
    double z = 0;
    for (double x : p) z += std::pow(x, 1 / t);
    for (double x : p) q.push_back(std::pow(x, 1 / t) / z);
    Sampler s(Cfg((float)t), 3);
    const int n = 40000;
    auto c = Draw(&s, LogitsOf(p), n);
    for (int i = 0; i < 3; i++) {
      double sd = std::sqrt(q[i] * (1 - q[i]) / n);
      CHECK_NEAR((double)c[i] / n, q[i], 5 * sd);
    }
  }
}

TEST(top_k_keeps_k_most_probable_in_proportion) {
  std::vector<double> p = {0.1, 0.4, 0.05, 0.3, 0.15};
  SamplerConfig c = Cfg(1);
  c.top_k = 2;
  Sampler s(c, 5);
  const int n = 20000;
  auto counts = Draw(&s, LogitsOf(p), n);
  CHECK((Support(counts) == std::set<int>{1, 3}));
  double want = 0.4 / 0.7, sd = std::sqrt(want * (1 - want) / n);
  CHECK_NEAR((double)counts[1] / n, want, 5 * sd);
}

TEST(top_p_keeps_smallest_nucleus) {
  std::vector<double> p = {0.5, 0.3, 0.15, 0.05};
  struct Case {
    float top_p;
    std::set<int> kept;
  } cases[] = {
      {0.5f, {0}}, {0.7f, {0, 1}}, {0.79f, {0, 1}}, {0.81f, {0, 1, 2}}, {1.0f, {0, 1, 2, 3}}};
  for (auto& k : cases) {
    SamplerConfig c = Cfg(1);
    c.top_p = k.top_p;
    Sampler s(c, 4);
    auto counts = Draw(&s, LogitsOf(p), 4000);
    if (Support(counts) != k.kept)
      lm_test::Fail(__FILE__, __LINE__, "top-p " + std::to_string(k.top_p));
  }
}

TEST(min_p_drops_below_fraction_of_best) {
  std::vector<double> p = {0.5, 0.3, 0.15, 0.05};
  SamplerConfig c = Cfg(1);
  c.min_p = 0.4f;  // keeps p >= 0.2
  Sampler s(c, 4);
  auto counts = Draw(&s, LogitsOf(p), 4000);
  CHECK((Support(counts) == std::set<int>{0, 1}));
  c.min_p = 1.0f;  // only the best
  Sampler s1(c, 4);
  counts = Draw(&s1, LogitsOf(p), 500);
  CHECK((Support(counts) == std::set<int>{0}));
}

TEST(filters_compose_in_order) {
  // top-k 3 leaves {0.4, 0.3, 0.2} (renormalised 4/9, 3/9, 2/9); top-p 0.7 then
  // keeps {0, 1} (4/9 < 0.7 <= 7/9).
  std::vector<double> p = {0.4, 0.3, 0.2, 0.1};
  SamplerConfig c = Cfg(1);
  c.top_k = 3;
  c.top_p = 0.7f;
  Sampler s(c, 4);
  CHECK((Support(Draw(&s, LogitsOf(p), 4000)) == std::set<int>{0, 1}));
}

TEST(infinite_logits_never_drawn) {
  std::vector<float> l = {-INFINITY, 0.0f, -INFINITY, 0.0f};
  Sampler s(Cfg(1), 4);
  CHECK((Support(Draw(&s, l, 2000)) == std::set<int>{1, 3}));
}

TEST(repeat_penalty_positive_and_negative_logits) {
  SamplerConfig c = Cfg(0);
  c.repeat_penalty = 2.0f;
  c.repeat_last = 8;
  Sampler s(c, 3);
  int32_t id = -1;
  std::vector<float> l = {2.0f, 1.9f, -1.0f};
  std::vector<int32_t> hist = {0};
  CHECK_OK(s.Sample(l.data(), hist.data(), hist.size(), &id));
  CHECK_EQ(id, 1);  // 2.0 / 2 = 1.0 < 1.9
  std::vector<float> neg = {-1.0f, -1.5f, -9.0f};
  CHECK_OK(s.Sample(neg.data(), hist.data(), hist.size(), &id));
  CHECK_EQ(id, 1);  // -1.0 * 2 = -2.0 < -1.5
  // A token repeated several times is penalised once, not per occurrence.
  std::vector<float> l3 = {2.0f, 0.9f, -1.0f};
  std::vector<int32_t> rep = {0, 0, 0, 0};
  CHECK_OK(s.Sample(l3.data(), rep.data(), rep.size(), &id));
  CHECK_EQ(id, 0);  // 1.0 > 0.9
}

TEST(repeat_penalty_looks_only_at_last_n) {
  SamplerConfig c = Cfg(0);
  c.repeat_penalty = 4.0f;
  c.repeat_last = 2;
  Sampler s(c, 6);
  std::vector<float> l = {2.0f, 1.0f, 0, 0, 0, 0};
  std::vector<int32_t> hist = {0, 5, 5};  // 0 is three back: not penalised
  int32_t id = -1;
  CHECK_OK(s.Sample(l.data(), hist.data(), hist.size(), &id));
  CHECK_EQ(id, 0);
  hist = {5, 0, 5};
  CHECK_OK(s.Sample(l.data(), hist.data(), hist.size(), &id));
  CHECK_EQ(id, 1);
}

TEST(same_seed_same_sequence_and_reseed) {
  std::vector<float> l;
  for (int i = 0; i < 1000; i++) l.push_back((float)std::sin(i * 0.37) * 3);
  SamplerConfig c = Cfg(0.9f);
  c.top_p = 0.95f;
  c.seed = 99;
  Sampler a(c, 1000), b(c, 1000);
  std::vector<int32_t> sa, sb;
  for (int i = 0; i < 200; i++) {
    int32_t x, y;
    CHECK_OK(a.Sample(l.data(), nullptr, 0, &x));
    CHECK_OK(b.Sample(l.data(), nullptr, 0, &y));
    sa.push_back(x);
    sb.push_back(y);
  }
  CHECK(sa == sb);
  CHECK(std::set<int32_t>(sa.begin(), sa.end()).size() > 10);  // it did sample
  a.Reseed(99);
  for (int i = 0; i < 200; i++) {
    int32_t x;
    CHECK_OK(a.Sample(l.data(), nullptr, 0, &x));
    if (x != sa[i]) {
      lm_test::Fail(__FILE__, __LINE__, "reseeded sequence differs at " + std::to_string(i));
      break;
    }
  }
  c.seed = 100;
  Sampler d(c, 1000);
  int differ = 0;
  for (int i = 0; i < 200; i++) {
    int32_t x;
    CHECK_OK(d.Sample(l.data(), nullptr, 0, &x));
    differ += x != sa[i];
  }
  CHECK(differ > 100);
}

// A top-k at or above the vocabulary keeps everything: the same seed must then
// draw exactly what --top-k 0 draws.
TEST(top_k_not_cutting_is_off) {
  std::vector<float> l;
  for (int i = 0; i < 300; i++) l.push_back((float)std::cos(i * 0.71) * 2);
  SamplerConfig c = Cfg(1.0f);
  c.seed = 7;
  for (int k : {300, 301, 100000}) {
    SamplerConfig ck = c;
    ck.top_k = k;
    Sampler off(c, 300), big(ck, 300);
    for (int i = 0; i < 100; i++) {
      int32_t x, y;
      CHECK_OK(off.Sample(l.data(), nullptr, 0, &x));
      CHECK_OK(big.Sample(l.data(), nullptr, 0, &y));
      CHECK_EQ(x, y);
    }
  }
}

TEST(nan_and_all_infinite_logits_are_errors) {
  Sampler s(Cfg(1), 3);
  int32_t id;
  std::vector<float> nan = {0.0f, std::numeric_limits<float>::quiet_NaN(), 1.0f};
  lm::Status st = s.Sample(nan.data(), nullptr, 0, &id);
  CHECK(!st.ok());
  CHECK(st.code() == lm::Status::kInvalid);
  std::vector<float> inf = {-INFINITY, -INFINITY, -INFINITY};
  CHECK(!s.Sample(inf.data(), nullptr, 0, &id).ok());
}

TEST(config_validation) {
  CHECK_OK(SamplerConfig().Validate());
  auto bad = [](void (*f)(SamplerConfig*)) {
    SamplerConfig c;
    f(&c);
    lm::Status s = c.Validate();
    return !s.ok() && s.code() == lm::Status::kInvalid;
  };
  CHECK(bad([](SamplerConfig* c) { c->temperature = -0.1f; }));
  CHECK(bad([](SamplerConfig* c) { c->temperature = NAN; }));
  CHECK(bad([](SamplerConfig* c) { c->top_k = -1; }));
  CHECK(bad([](SamplerConfig* c) { c->top_p = 0; }));
  CHECK(bad([](SamplerConfig* c) { c->top_p = 1.5f; }));
  CHECK(bad([](SamplerConfig* c) { c->min_p = -0.5f; }));
  CHECK(bad([](SamplerConfig* c) { c->repeat_penalty = 0; }));
  CHECK(bad([](SamplerConfig* c) { c->repeat_last = -3; }));
}

TEST(config_describe) {
  SamplerConfig c;
  CHECK_EQ(c.Describe(), std::string("temperature 1"));
  c.temperature = 0.8f;
  c.top_k = 40;
  c.top_p = 0.95f;
  c.repeat_penalty = 1.1f;
  CHECK_EQ(c.Describe(),
           std::string("temperature 0.8, top-k 40, top-p 0.95, repeat penalty 1.1 over 64"));
  c.temperature = 0;
  CHECK_EQ(c.Describe(), std::string("greedy, repeat penalty 1.1 over 64"));
}

// Feeds pieces one at a time; returns everything printed, and whether it stopped.
std::string StreamAll(const std::vector<std::string>& stops, const std::vector<std::string>& pieces,
                      bool* stopped, std::vector<std::string>* outs = nullptr) {
  lm::TextStream ts(stops);
  std::string all, out;
  *stopped = false;
  for (const std::string& p : pieces) {
    bool st = ts.Append(p, &out);
    all += out;
    if (outs) outs->push_back(out);
    if (st) {
      *stopped = true;
      return all;
    }
  }
  ts.Finish(&out);
  all += out;
  if (outs) outs->push_back(out);
  return all;
}

TEST(utf8_complete_prefix) {
  CHECK_EQ(lm::Utf8CompletePrefix("abc", 0, 3), (size_t)3);
  CHECK_EQ(lm::Utf8CompletePrefix("a\xc3", 0, 2), (size_t)1);
  CHECK_EQ(lm::Utf8CompletePrefix("a\xc3\xa9", 0, 3), (size_t)3);
  CHECK_EQ(lm::Utf8CompletePrefix("\xe2\x82", 0, 2), (size_t)0);
  CHECK_EQ(lm::Utf8CompletePrefix("\xe2\x82\xac", 0, 3), (size_t)3);
  CHECK_EQ(lm::Utf8CompletePrefix("x\xf0\x9f\x98", 0, 4), (size_t)1);
  CHECK_EQ(lm::Utf8CompletePrefix("x\xf0\x9f\x98\x80", 0, 5), (size_t)5);
  // Stray continuation bytes and bytes that never start a character pass through.
  CHECK_EQ(lm::Utf8CompletePrefix("\x80\x80", 0, 2), (size_t)2);
  CHECK_EQ(lm::Utf8CompletePrefix("a\xff", 0, 2), (size_t)2);
}

TEST(stream_never_splits_utf8) {
  // "héllo €😀" fed one byte at a time: every piece printed is whole UTF-8.
  std::string text = "h\xc3\xa9llo \xe2\x82\xac\xf0\x9f\x98\x80!";
  std::vector<std::string> bytes;
  for (char c : text) bytes.push_back(std::string(1, c));
  bool stopped;
  std::vector<std::string> outs;
  std::string all = StreamAll({}, bytes, &stopped, &outs);
  CHECK_EQ(all, text);
  CHECK(!stopped);
  for (const std::string& o : outs) CHECK_EQ(lm::Utf8CompletePrefix(o, 0, o.size()), o.size());
  // The euro sign comes out in one piece, with its third byte.
  CHECK_EQ(outs[8], std::string(""));
  CHECK_EQ(outs[9], std::string("\xe2\x82\xac"));
}

TEST(stream_stop_string_not_printed) {
  bool stopped;
  CHECK_EQ(StreamAll({"\n\n"}, {"Hello", " world", "\n", "\n", "more"}, &stopped),
           std::string("Hello world"));
  CHECK(stopped);
  // Inside one piece, with text after it.
  CHECK_EQ(StreamAll({"END"}, {"abcENDdef"}, &stopped), std::string("abc"));
  CHECK(stopped);
  // The earliest of several stop strings wins.
  CHECK_EQ(StreamAll({"cd", "b"}, {"abcd"}, &stopped), std::string("a"));
  // Across several pieces, split mid-string.
  CHECK_EQ(StreamAll({"STOP"}, {"xxS", "T", "O", "Pyy"}, &stopped), std::string("xx"));
  CHECK(stopped);
}

TEST(stream_holds_back_possible_prefix) {
  std::vector<std::string> outs;
  bool stopped;
  std::string all = StreamAll({"<end>"}, {"ab<", "e", "x", "yz"}, &stopped, &outs);
  CHECK(!stopped);
  CHECK_EQ(all, std::string("ab<exyz"));
  CHECK_EQ(outs[0], std::string("ab"));   // "<" might start "<end>"
  CHECK_EQ(outs[1], std::string(""));     // "<e" still might
  CHECK_EQ(outs[2], std::string("<ex"));  // no longer
  // At the end, a held-back prefix that never completed is printed.
  CHECK_EQ(StreamAll({"<end>"}, {"ab", "<en"}, &stopped), std::string("ab<en"));
  CHECK(!stopped);
  // A repeated first letter: "aab" with stop "ab" must stop after one "a".
  CHECK_EQ(StreamAll({"ab"}, {"a", "a", "b"}, &stopped), std::string("a"));
  CHECK(stopped);
}

TEST(stream_stop_mid_utf8_and_empty_stop_ignored) {
  bool stopped;
  // The stop string is a multi-byte character arriving byte by byte.
  CHECK_EQ(StreamAll({"\xc3\xa9"}, {"caf", "\xc3", "\xa9", "!"}, &stopped), std::string("caf"));
  CHECK(stopped);
  CHECK_EQ(StreamAll({""}, {"abc"}, &stopped), std::string("abc"));
  CHECK(!stopped);
}

TEST_MAIN()
