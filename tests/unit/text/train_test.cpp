// train_test.cpp: BPE training against a naive reference that recounts every
// pair before each merge (same tie rule), plus determinism, --min-frequency,
// specials and the size check.
#include <map>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "../test.h"
#include "text/train.h"

using namespace lm;

namespace {

// The textbook algorithm: recount all pairs, merge the best (highest count,
// then smallest left*2^32+right), repeat. Returns the merged token bytes in order.
std::vector<std::string> NaiveMerges(const std::unordered_map<std::string, uint64_t>& counts,
                                     size_t merges) {
  std::vector<std::string> bytes(256);
  std::map<std::string, uint32_t> index;
  for (int b = 0; b < 256; b++) bytes[b].assign(1, (char)b), index[bytes[b]] = (uint32_t)b;
  std::vector<std::pair<std::vector<uint32_t>, uint64_t>> words;
  for (auto& kv : counts) {
    std::vector<uint32_t> w;
    for (unsigned char c : kv.first) w.push_back(c);
    words.push_back({w, kv.second});
  }
  std::vector<std::string> out;
  while (out.size() < merges) {
    std::map<uint64_t, uint64_t> pc;
    for (auto& w : words)
      for (size_t i = 0; i + 1 < w.first.size(); i++)
        pc[((uint64_t)w.first[i] << 32) | w.first[i + 1]] += w.second;
    uint64_t best = 0, bestc = 0;
    for (auto& kv : pc)
      if (kv.second > bestc)
        best = kv.first, bestc = kv.second;  // map order: smallest key wins ties
    if (bestc == 0) break;
    uint32_t a = (uint32_t)(best >> 32), b = (uint32_t)best;
    std::string nb = bytes[a] + bytes[b];
    uint32_t t;
    if (index.count(nb)) {
      t = index[nb];
    } else {
      t = (uint32_t)bytes.size();
      bytes.push_back(nb);
      index[nb] = t;
      out.push_back(nb);
    }
    for (auto& w : words) {
      std::vector<uint32_t> m;
      for (size_t i = 0; i < w.first.size(); i++) {
        if (i + 1 < w.first.size() && w.first[i] == a && w.first[i + 1] == b)
          m.push_back(t), i++;
        else
          m.push_back(w.first[i]);
      }
      w.first = m;
    }
  }
  return out;
}

std::unordered_map<std::string, uint64_t> RandomCounts(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::unordered_map<std::string, uint64_t> c;
  for (int i = 0; i < 300; i++) {
    std::string w;
    int n = (int)(rng() % 12) + 1;
    for (int j = 0; j < n; j++) w.push_back("aabbcd e"[rng() % 8]);
    c[w] += rng() % 50 + 1;
  }
  return c;
}

}  // namespace

TEST(incremental_training_matches_naive_recount) {
  for (uint64_t seed = 1; seed <= 5; seed++) {
    auto counts = RandomCounts(seed);
    TrainOptions opt;
    opt.vocab_size = 256 + 60 + 1;
    opt.pattern_kind = PatternKind::kNone;
    VocabFile f;
    CHECK_OK(TrainBpe(counts, opt, &f));
    std::vector<std::string> got;
    for (size_t i = 256; i < f.tokens.size(); i++)
      if (f.tokens[i].kind == TokenKind::kMerge) got.push_back(f.tokens[i].bytes);
    std::vector<std::string> want = NaiveMerges(counts, 60);
    CHECK_EQ(got.size(), want.size());
    CHECK(got == want);
  }
}

TEST(training_is_deterministic_and_lays_out_ids) {
  auto counts = RandomCounts(9);
  TrainOptions opt;
  opt.vocab_size = 300;
  opt.pattern_kind = PatternKind::kGpt2;
  opt.specials = {"<|pad|>", "<|endoftext|>"};
  VocabFile a, b;
  CHECK_OK(TrainBpe(counts, opt, &a));
  std::unordered_map<std::string, uint64_t> copy;
  for (auto& kv : counts) copy.insert(kv);  // another insertion order
  CHECK_OK(TrainBpe(copy, opt, &b));
  CHECK_EQ(a.tokens.size(), (size_t)300);
  CHECK_EQ(a.eot_id, 298u);
  CHECK_EQ(a.tokens[299].bytes, std::string("<|pad|>"));
  for (int i = 0; i < 256; i++) CHECK_EQ((int)(unsigned char)a.tokens[i].bytes[0], i);
  bool same = a.tokens.size() == b.tokens.size();
  for (size_t i = 0; same && i < a.tokens.size(); i++)
    same = a.tokens[i].bytes == b.tokens[i].bytes;
  CHECK(same);
}

TEST(min_frequency_stops_early) {
  std::unordered_map<std::string, uint64_t> counts = {{"abab", 10}, {"cd", 2}};
  TrainOptions opt;
  opt.vocab_size = 1000;
  opt.min_frequency = 5;
  VocabFile f;
  CHECK_OK(TrainBpe(counts, opt, &f));
  // "ab" (20), then "abab" (10); "cd" (2) is below 5.
  CHECK_EQ(f.tokens.size(), (size_t)(256 + 2 + 1));
  CHECK_EQ(f.tokens[256].bytes, std::string("ab"));
  CHECK_EQ(f.tokens[257].bytes, std::string("abab"));
}

TEST(vocab_size_below_bytes_and_specials_is_refused) {
  std::unordered_map<std::string, uint64_t> counts = {{"ab", 1}};
  TrainOptions opt;
  opt.vocab_size = 257;
  opt.specials = {"<|x|>"};
  VocabFile f;
  CHECK(!TrainBpe(counts, opt, &f).ok());
  opt.specials.clear();
  CHECK_OK(TrainBpe(counts, opt, &f));
  CHECK_EQ(f.tokens.size(), (size_t)257);
}

TEST_MAIN()
