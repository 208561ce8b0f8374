// split_test.cpp: the train/val split (common/data/split.h) against the rule
// of docs/formats/manifest.md written out again here: short documents whole
// by hash, long ones cut with their tail in val; the same routing whatever
// the chunking; the share of the tokens on heavy-tailed inputs; and the
// spool that holds a long document's tail, in memory and past it.

#include <algorithm>
#include <cmath>
#include <random>

#include "../test.h"
#include "data/split.h"
#include "data/spool.h"
#include "fixtures.h"
#include "util/codec.h"
#include "util/file.h"
#include "util/hash.h"

using namespace lm;

namespace {

using Doc = std::vector<uint32_t>;
constexpr uint32_t kEot = 999;

// A document of n tokens, the last one end-of-text.
Doc MakeDoc(std::mt19937* rng, size_t n) {
  Doc d(n);
  for (auto& t : d) t = (*rng)() % kEot;
  d.back() = kEot;
  return d;
}

// manifest.md's rule, from the spec's words.
void SpecSplit(const std::vector<Doc>& docs, double f, uint64_t seed, uint64_t cut, Doc out[2]) {
  for (size_t i = 0; i < docs.size(); i++) {
    const Doc& d = docs[i];
    if (d.size() <= cut) {
      std::string head;
      for (size_t k = 0; k < d.size() && k < 64; k++) PutU32(&head, d[k]);
      std::string b;
      PutU64(&b, seed);
      PutU64(&b, i);
      PutU64(&b, Hash64(head));
      bool val = (double)(Hash64(b) >> 11) / 9007199254740992.0 < f;
      out[val].insert(out[val].end(), d.begin(), d.end());
    } else {
      size_t v = std::min<size_t>(d.size(), (size_t)std::floor(f * (double)d.size() + 0.5));
      out[0].insert(out[0].end(), d.begin(), d.end() - v);
      out[1].insert(out[1].end(), d.end() - v, d.end());
    }
  }
}

struct Routed {
  Doc tokens[2];
  std::vector<uint64_t> ends[2];  // document numbers, as the parts end
};

// Feeds the documents through a router in chunks of `chunk` tokens.
Status Route(const std::vector<Doc>& docs, const SplitRule& rule, size_t chunk, Routed* r,
             uint64_t* cut, size_t memory = TokenSpool::kDefaultMemoryTokens) {
  std::string dir = lm_test::TempDir("split-test");
  SplitRouter router(
      rule, dir,
      [r](int k, const uint32_t* ids, size_t n) {
        r->tokens[k].insert(r->tokens[k].end(), ids, ids + n);
        return Status::OK();
      },
      [r](int k, uint64_t number) { r->ends[k].push_back(number); }, memory);
  for (const Doc& d : docs) {
    for (size_t i = 0; i < d.size(); i += chunk)
      LM_RETURN_IF_ERROR(router.Add(d.data() + i, std::min(chunk, d.size() - i)));
    LM_RETURN_IF_ERROR(router.EndDocument());
  }
  *cut = router.cut();
  RemoveAll(dir);
  return Status::OK();
}

// Heavy-tailed: `big` documents of big_len tokens, at seeded places among
// `small` of 50..250 tokens.
std::vector<Doc> HeavyTailed(uint32_t seed, int small, int big, size_t big_len) {
  std::mt19937 rng(seed);
  std::vector<bool> is_big(small + big, false);
  std::fill(is_big.begin(), is_big.begin() + big, true);
  std::shuffle(is_big.begin(), is_big.end(), rng);
  std::vector<Doc> docs;
  for (bool b : is_big) docs.push_back(MakeDoc(&rng, b ? big_len : 50 + rng() % 201));
  return docs;
}

}  // namespace

TEST(val_tail_rounds_half_up_and_stays_in_the_document) {
  CHECK_EQ(ValTailTokens(1025, 0.05), (uint64_t)51);  // 51.25
  CHECK_EQ(ValTailTokens(1030, 0.05), (uint64_t)52);  // 51.5
  CHECK_EQ(ValTailTokens(3, 0.5), (uint64_t)2);       // 1.5
  CHECK_EQ(ValTailTokens(5000, 0.0), (uint64_t)0);
  CHECK_EQ(ValTailTokens(5000, 1.0), (uint64_t)5000);
  CHECK_EQ(ValTailTokens(9, 0.01), (uint64_t)0);
}

TEST(routing_follows_the_spec_for_any_chunking) {
  auto docs = HeavyTailed(1, 300, 12, 5000);
  for (uint64_t seed : {0ull, 7ull, 123456789ull}) {
    SplitRule rule;
    rule.val_fraction = 0.1;
    rule.seed = seed;
    Doc want[2];
    SpecSplit(docs, 0.1, seed, kValCutTokens, want);
    for (size_t chunk : {1ul, 7ul, 64ul, 1000ul, 100000ul}) {
      Routed r;
      uint64_t cut = 0;
      CHECK_OK(Route(docs, rule, chunk, &r, &cut));
      CHECK(r.tokens[0] == want[0]);
      CHECK(r.tokens[1] == want[1]);
      CHECK_EQ(cut, (uint64_t)12);
    }
  }
}

TEST(a_cut_document_ends_in_both_splits_under_its_number) {
  std::mt19937 rng(2);
  std::vector<Doc> docs = {MakeDoc(&rng, 100), MakeDoc(&rng, 3000), MakeDoc(&rng, 100)};
  SplitRule rule;
  rule.val_fraction = 0.25;
  Routed r;
  uint64_t cut = 0;
  CHECK_OK(Route(docs, rule, 333, &r, &cut));
  CHECK_EQ(cut, (uint64_t)1);
  // Document 1's head ends in train, its tail (750 tokens) in val.
  CHECK(std::count(r.ends[0].begin(), r.ends[0].end(), 1u) == 1);
  CHECK(std::count(r.ends[1].begin(), r.ends[1].end(), 1u) == 1);
  CHECK_EQ(r.ends[0].size() + r.ends[1].size(), (size_t)4);
  CHECK(r.tokens[1].size() >= 750);
}

TEST(val_docs_and_the_ends_of_the_fraction_range_keep_documents_whole) {
  auto docs = HeavyTailed(3, 50, 3, 4000);
  uint64_t total = 0;
  for (auto& d : docs) total += d.size();
  for (double f : {0.0, 1.0}) {
    SplitRule rule;
    rule.val_fraction = f;
    Routed r;
    uint64_t cut = 0;
    CHECK_OK(Route(docs, rule, 100, &r, &cut));
    CHECK_EQ(r.tokens[f > 0].size(), (size_t)total);
    CHECK_EQ(cut, (uint64_t)0);
  }
  SplitRule rule;
  rule.val_docs = 5;
  Routed r;
  uint64_t cut = 0;
  CHECK_OK(Route(docs, rule, 100, &r, &cut));
  Doc first;
  for (int i = 0; i < 5; i++) first.insert(first.end(), docs[i].begin(), docs[i].end());
  CHECK(r.tokens[1] == first);
  CHECK_EQ(r.ends[1].size(), (size_t)5);
}

// The documented tolerance: |share - F| <= 4 sqrt(F (1 - F) S) / N + K / (2 N).
TEST(the_val_share_of_tokens_stays_within_the_documented_tolerance) {
  for (uint32_t seed = 1; seed <= 8; seed++) {
    auto docs = HeavyTailed(seed, 2000, 20, 25000);  // the big ones: 2/3 of the tokens
    double n = 0, s = 0, k = 0;
    for (auto& d : docs) {
      n += (double)d.size();
      if (d.size() <= kValCutTokens)
        s += (double)d.size() * (double)d.size();
      else
        k++;
    }
    SplitRule rule;
    rule.val_fraction = 0.05;
    rule.seed = seed;
    Routed r;
    uint64_t cut = 0;
    CHECK_OK(Route(docs, rule, 4096, &r, &cut));
    double share = (double)r.tokens[1].size() / n;
    double tol = 4 * std::sqrt(0.05 * 0.95 * s) / n + k / (2 * n);
    CHECK(std::fabs(share - 0.05) <= tol);
    CHECK(tol < 0.01);  // whole documents (no cut) miss it for 7 of these 8 seeds
    if (seed == 1) printf("# seed 1: val share %.5f, tolerance %.5f\n", share, tol);
  }
}

TEST(a_tail_longer_than_the_memory_goes_through_the_spool_file) {
  std::mt19937 rng(4);
  std::vector<Doc> docs = {MakeDoc(&rng, 200), MakeDoc(&rng, 200000), MakeDoc(&rng, 300)};
  SplitRule rule;
  rule.val_fraction = 0.3;
  Doc want[2];
  SpecSplit(docs, 0.3, 0, kValCutTokens, want);
  Routed r;
  uint64_t cut = 0;
  CHECK_OK(Route(docs, rule, 777, &r, &cut, /*memory=*/1000));
  CHECK(r.tokens[0] == want[0]);
  CHECK(r.tokens[1] == want[1]);
}

TEST(the_spool_is_first_in_first_out_across_memory_and_file) {
  std::string dir = lm_test::TempDir("spool-test");
  TokenSpool spool(dir, 16);
  std::mt19937 rng(5);
  uint32_t next_in = 0, next_out = 0;
  bool in_order = true;
  for (int step = 0; step < 2000; step++) {
    std::vector<uint32_t> ids(rng() % 40);
    for (auto& t : ids) t = next_in++;
    CHECK_OK(spool.Push(ids.data(), ids.size()));
    uint64_t n = rng() % (spool.size() + 1);
    if (step % 50 == 0) n = 0;  // let it grow now and then
    CHECK_OK(spool.Pop(n, [&](const uint32_t* p, size_t k) {
      for (size_t i = 0; i < k; i++) in_order &= p[i] == next_out++;
      return Status::OK();
    }));
  }
  CHECK(in_order);
  CHECK_EQ(spool.size(), (uint64_t)(next_in - next_out));
  CHECK(spool.spilled() > 0);
  CHECK(!spool.Pop(spool.size() + 1, [](const uint32_t*, size_t) { return Status::OK(); }).ok());
  // The file has no name: the directory holds nothing.
  CHECK(lm_test::ListDir(dir).empty());
  RemoveAll(dir);
}

TEST_MAIN()
