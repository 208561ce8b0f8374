// pack_test.cpp: the dataset writer (common/data/pack.h): short documents
// whole per split, long ones cut with their tail in val, the split recomputed
// independently from the rule in the spec, determinism, --val-docs, appends,
// refusals, and cleanup after failure.
#include <unistd.h>

#include <random>
#include <thread>

#include "../test.h"
#include "data/loader.h"
#include "data/pack.h"
#include "data/verify.h"
#include "fixtures.h"
#include "util/codec.h"
#include "util/file.h"
#include "util/hash.h"

using namespace lm;

static std::string TempDir() {
  return lm_test::TempDir("pack-test");
}
using lm_test::Vocab;

// Documents of random lengths, each ending with eot.
static std::vector<std::vector<uint32_t>> Docs(int n, uint32_t vocab, uint32_t seed,
                                               int max_len = 300) {
  std::mt19937 rng(seed);
  std::vector<std::vector<uint32_t>> docs(n);
  for (auto& d : docs) {
    int len = 1 + (int)(rng() % max_len);
    for (int i = 0; i < len; i++) d.push_back(rng() % (vocab - 1));
    d.push_back(vocab - 1);
  }
  return docs;
}

static std::vector<uint32_t> Flatten(const std::vector<std::vector<uint32_t>>& docs) {
  std::vector<uint32_t> all;
  for (auto& d : docs) all.insert(all.end(), d.begin(), d.end());
  return all;
}

// Feeds `all` in pieces of `piece` tokens.
static Status Pack(const PackOptions& o, const TokenStreamInfo& v, const std::vector<uint32_t>& all,
                   size_t piece, PackStats* st) {
  std::unique_ptr<DatasetWriter> w;
  LM_RETURN_IF_ERROR(DatasetWriter::Create(o, v, &w));
  for (size_t i = 0; i < all.size(); i += piece)
    LM_RETURN_IF_ERROR(w->Add(all.data() + i, std::min(piece, all.size() - i)));
  return w->Finish(st);
}

static std::vector<uint32_t> ReadSplit(Dataset* ds, Split s) {
  std::vector<uint32_t> out(ds->info().tokens[(int)s]);
  CHECK_OK(ds->Read(s, 0, out.size(), out.data()));
  return out;
}

using lm_test::ListDir;

// The split rule of docs/formats/manifest.md, written out again here.
static bool SpecIsVal(uint64_t seed, uint64_t index, const std::vector<uint32_t>& doc, double f) {
  std::string head;
  for (size_t i = 0; i < doc.size() && i < 64; i++) PutU32(&head, doc[i]);
  std::string b;
  PutU64(&b, seed);
  PutU64(&b, index);
  PutU64(&b, Hash64(head));
  return (double)(Hash64(b) >> 11) / 9007199254740992.0 < f;
}

TEST(whole_documents_go_to_the_split_the_spec_says) {
  std::string dir = TempDir();
  auto docs = Docs(300, 1000, 1);
  PackOptions o;
  o.dir = dir + "/ds";
  o.shard_tokens = 2000;
  o.block_tokens = 100;
  o.val_fraction = 0.2;
  o.seed = 42;
  o.threads = 2;
  PackStats st;
  CHECK_OK(Pack(o, Vocab(1000), Flatten(docs), 777, &st));
  std::vector<uint32_t> want[2];
  uint64_t ndocs[2] = {0, 0};
  for (size_t i = 0; i < docs.size(); i++) {
    int k = SpecIsVal(42, i, docs[i], 0.2) ? 1 : 0;
    want[k].insert(want[k].end(), docs[i].begin(), docs[i].end());
    ndocs[k]++;
  }
  CHECK(ndocs[1] > 30 && ndocs[1] < 90);
  std::unique_ptr<Dataset> ds;
  CHECK_OK(Dataset::Open(o.dir, &ds));
  CHECK(ReadSplit(ds.get(), Split::kTrain) == want[0]);
  CHECK(ReadSplit(ds.get(), Split::kVal) == want[1]);
  CHECK_EQ(ds->info().documents[0], ndocs[0]);
  CHECK_EQ(ds->info().documents[1], ndocs[1]);
  CHECK_EQ(st.documents, (uint64_t)docs.size());
  CHECK(st.shards[0] > 1);
  // Every document end is an eot, and every eot a document end.
  std::vector<uint64_t> ends;
  CHECK_OK(ds->DocumentEnds(Split::kTrain, 0, want[0].size(), &ends));
  CHECK_EQ(ends.size(), (size_t)ndocs[0]);
  for (uint64_t e : ends) CHECK_EQ(want[0][e - 1], 999u);
  RemoveAll(dir);
}

TEST(split_is_deterministic_for_seed_and_input) {
  std::string dir = TempDir();
  auto all = Flatten(Docs(100, 500, 2));
  PackOptions o;
  o.shard_tokens = 3000;
  o.val_fraction = 0.3;
  o.seed = 7;
  uint64_t ids[3];
  for (int i = 0; i < 3; i++) {
    o.dir = dir + "/d" + std::to_string(i);
    if (i == 2) o.seed = 8;
    PackStats st;
    // Different pieces and threads: the same data.
    o.threads = i + 1;
    CHECK_OK(Pack(o, Vocab(500), all, 1 + i * 1000, &st));
    std::unique_ptr<Dataset> ds;
    CHECK_OK(Dataset::Open(o.dir, &ds));
    ids[i] = ds->info().identity;
  }
  CHECK_EQ(ids[0], ids[1]);
  CHECK(ids[0] != ids[2]);
  RemoveAll(dir);
}

TEST(val_docs_takes_the_first_documents) {
  std::string dir = TempDir();
  auto docs = Docs(20, 300, 3);
  PackOptions o;
  o.dir = dir;
  o.val_docs = 5;
  PackStats st;
  CHECK_OK(Pack(o, Vocab(300), Flatten(docs), 100000, &st));
  std::vector<uint32_t> val;
  for (int i = 0; i < 5; i++) val.insert(val.end(), docs[i].begin(), docs[i].end());
  std::unique_ptr<Dataset> ds;
  CHECK_OK(Dataset::Open(dir, &ds));
  CHECK(ReadSplit(ds.get(), Split::kVal) == val);
  CHECK_EQ(ds->info().documents[1], 5u);
  CHECK_EQ(ds->info().documents[0], 15u);
  RemoveAll(dir);
}

TEST(a_last_document_without_eot_still_counts) {
  std::string dir = TempDir();
  std::vector<uint32_t> all = {1, 2, 99, 3, 4, 5};
  PackOptions o;
  o.dir = dir;
  PackStats st;
  CHECK_OK(Pack(o, Vocab(100), all, 2, &st));
  CHECK_EQ(st.documents, 2u);
  std::unique_ptr<Dataset> ds;
  CHECK_OK(Dataset::Open(dir, &ds));
  std::vector<uint64_t> ends;
  CHECK_OK(ds->DocumentEnds(Split::kTrain, 0, 6, &ends));
  CHECK(ends == std::vector<uint64_t>({3, 6}));
  RemoveAll(dir);
}

TEST(documents_longer_than_a_shard_span_shards) {
  std::string dir = TempDir();
  auto docs = Docs(10, 300, 4, 1000);
  PackOptions o;
  o.dir = dir;
  o.shard_tokens = 97;
  o.block_tokens = 10;
  o.level = 0;
  PackStats st;
  CHECK_OK(Pack(o, Vocab(300), Flatten(docs), 33, &st));
  std::unique_ptr<Dataset> ds;
  CHECK_OK(Dataset::Open(dir, &ds));
  CHECK(ReadSplit(ds.get(), Split::kTrain) == Flatten(docs));
  CHECK_EQ(ds->info().documents[0], 10u);
  RemoveAll(dir);
}

TEST(empty_input_leaves_nothing) {
  std::string dir = TempDir();
  PackOptions o;
  o.dir = dir;
  PackStats st;
  Status s = Pack(o, Vocab(100), {}, 1, &st);
  CHECK(!s.ok());
  CHECK(s.message().find("empty input") != std::string::npos);
  CHECK(ListDir(dir).empty());
  RemoveAll(dir);
}

TEST(an_abandoned_writer_removes_its_shards) {
  std::string dir = TempDir();
  auto all = Flatten(Docs(50, 300, 5));
  {
    PackOptions o;
    o.dir = dir;
    o.shard_tokens = 500;
    std::unique_ptr<DatasetWriter> w;
    CHECK_OK(DatasetWriter::Create(o, Vocab(300), &w));
    CHECK_OK(w->Add(all.data(), all.size()));
    CHECK(ListDir(dir).size() > 2);  // finished shards and one in progress
  }
  CHECK(ListDir(dir).empty());
  RemoveAll(dir);
}

TEST(append_adds_and_refuses_another_vocabulary) {
  std::string dir = TempDir();
  auto a = Flatten(Docs(10, 300, 6)), b = Flatten(Docs(10, 300, 7));
  PackOptions o;
  o.dir = dir;
  PackStats st;
  CHECK_OK(Pack(o, Vocab(300), a, 1000, &st));
  // Without --append an existing dataset is refused.
  Status s = Pack(o, Vocab(300), b, 1000, &st);
  CHECK(s.message().find("already holds a dataset") != std::string::npos);
  o.append = true;
  s = Pack(o, Vocab(301), b, 1000, &st);
  CHECK(s.message().find("vocabulary") != std::string::npos);
  CHECK_OK(Pack(o, Vocab(300), b, 1000, &st));
  std::unique_ptr<Dataset> ds;
  CHECK_OK(Dataset::Open(dir, &ds));
  std::vector<uint32_t> ab = a;
  ab.insert(ab.end(), b.begin(), b.end());
  CHECK(ReadSplit(ds.get(), Split::kTrain) == ab);
  // Only the manifest, the lock and the two writers' shards.
  CHECK_EQ(ListDir(dir).size(), (size_t)4);
  RemoveAll(dir);
}

TEST(concurrent_appenders_lose_nothing) {
  std::string dir = TempDir();
  const int kWriters = 8;
  std::vector<std::vector<uint32_t>> inputs;
  for (int i = 0; i < kWriters; i++) inputs.push_back(Flatten(Docs(20, 300, 100 + i)));
  std::vector<Status> results(kWriters);
  std::vector<std::thread> threads;
  for (int i = 0; i < kWriters; i++) {
    threads.emplace_back([&, i] {
      PackOptions o;
      o.dir = dir;
      o.append = true;
      o.shard_tokens = 1000;
      PackStats st;
      results[i] = Pack(o, Vocab(300), inputs[i], 500, &st);
    });
  }
  for (auto& t : threads) t.join();
  uint64_t want = 0;
  for (int i = 0; i < kWriters; i++) {
    CHECK_OK(results[i]);
    want += inputs[i].size();
  }
  Manifest m;
  CHECK_OK(ReadManifest(dir, &m));
  CHECK_EQ(m.writers.size(), (size_t)kWriters);
  std::unique_ptr<Dataset> ds;
  CHECK_OK(Dataset::Open(dir, &ds));
  CHECK_EQ(ds->info().tokens[0], want);
  RemoveAll(dir);
}

TEST(a_long_document_gives_its_tail_to_val_and_verifies) {
  std::string dir = TempDir();
  auto docs = Docs(3, 1000, 9, 100);
  std::mt19937 rng(9);
  std::vector<uint32_t> long_doc(5000), last(3000);  // the last one without end-of-text
  for (auto& t : long_doc) t = rng() % 999;
  long_doc.back() = 999;
  for (auto& t : last) t = rng() % 999;
  docs.insert(docs.begin() + 1, long_doc);
  docs.push_back(last);
  PackOptions o;
  o.dir = dir + "/ds";
  o.shard_tokens = 1000;  // the head spans shards
  o.block_tokens = 100;
  o.val_fraction = 0.1;
  PackStats st;
  CHECK_OK(Pack(o, Vocab(1000), Flatten(docs), 333, &st));
  CHECK_EQ(st.cut, (uint64_t)2);
  CHECK_EQ(st.documents, (uint64_t)5);
  std::unique_ptr<Dataset> ds;
  CHECK_OK(Dataset::Open(o.dir, &ds));
  std::vector<uint32_t> want;
  for (size_t i = 0; i < docs.size(); i++) {
    const auto& d = docs[i];
    if (d.size() > kValCutTokens)
      want.insert(want.end(), d.end() - d.size() / 10, d.end());  // 500 and 300 tokens
    else if (SpecIsVal(0, i, d, 0.1))
      want.insert(want.end(), d.begin(), d.end());
  }
  CHECK(ReadSplit(ds.get(), Split::kVal) == want);
  // The head of document 1 ends in train without end-of-text: an entry there.
  std::vector<uint64_t> ends;
  CHECK_OK(ds->DocumentEnds(Split::kTrain, 0, ds->info().tokens[0], &ends));
  std::vector<uint32_t> train = ReadSplit(ds.get(), Split::kTrain);
  int open = 0;
  for (uint64_t e : ends) open += train[e - 1] != 999;
  CHECK_EQ(open, 2);
  VerifyReport rep;
  CHECK_OK(VerifyDataset(o.dir, &rep));
  Manifest m;
  CHECK_OK(ReadManifest(o.dir, &m));
  CHECK_EQ(m.writers[0].val_cut, kValCutTokens);
  // Without its val shards, the head of document 1 has no tail: corrupt.
  Manifest cut = m;
  cut.shards.clear();
  for (const ManifestShard& e : m.shards)
    if (e.split == "train") cut.shards.push_back(e);
  CHECK_OK(WriteManifest(o.dir, cut));
  Status s = VerifyDataset(o.dir, &rep);
  CHECK(s.code() == Status::kCorruption);
  CHECK(s.message().find("no tail of its document 1") != std::string::npos);
  RemoveAll(dir);
}

TEST(val_decision_is_independent_of_position_for_parallel_writers) {
  // Writers that each see one document at index 0 must not all decide alike.
  int val = 0;
  for (uint32_t i = 0; i < 1000; i++) {
    std::vector<uint32_t> doc = {i, i + 1, 7};
    val += SpecIsVal(1, 0, doc, 0.1);
  }
  CHECK(val > 50 && val < 150);
  std::string head;
  for (uint32_t t : {5u, 6u, 7u}) PutU32(&head, t);
  CHECK_EQ(IsValDocument(1, 0, Hash64(head), 0.1), SpecIsVal(1, 0, {5, 6, 7}, 0.1));
}

TEST_MAIN()
