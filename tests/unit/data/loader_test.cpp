// loader_test.cpp: the training/eval loader (common/data/loader.h): random
// access across shards and blocks against a reference, every single-bit flip
// of a shard caught at first read, missing and truncated shards, the batch
// sampler's permutation, rank independence and exact resume from a cursor,
// and readers on several threads.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <set>
#include <thread>

#include "../test.h"
#include "data/loader.h"
#include "data/pack.h"
#include "fixtures.h"
#include "util/file.h"
#include "util/hash.h"

using namespace lm;

static std::string TempDir() {
  return lm_test::TempDir("loader-test");
}
using lm_test::Vocab;

// Packs n tokens (a document every ~100) into dir; returns them.
static std::vector<uint32_t> Make(const std::string& dir, uint32_t vocab, size_t n,
                                  uint64_t shard_tokens, uint32_t block, int level,
                                  uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::vector<uint32_t> all(n);
  for (auto& t : all) t = rng() % 100 == 0 ? vocab - 1 : rng() % (vocab - 1);
  PackOptions o;
  o.dir = dir;
  o.shard_tokens = shard_tokens;
  o.block_tokens = block;
  o.level = level;
  std::unique_ptr<DatasetWriter> w;
  CHECK_OK(DatasetWriter::Create(o, Vocab(vocab), &w));
  CHECK_OK(w->Add(all.data(), all.size()));
  PackStats st;
  CHECK_OK(w->Finish(&st));
  return all;
}

TEST(random_access_matches_the_input) {
  for (int level : {0, 3}) {
    for (uint32_t vocab : {1000u, 70000u}) {
      std::string dir = TempDir();
      auto all = Make(dir, vocab, 20000, 3001, 128, level);
      std::unique_ptr<Dataset> ds;
      CHECK_OK(Dataset::Open(dir, &ds));
      ds->SetCacheBytes(1);  // every read past the last block decompresses again
      CHECK_EQ(ds->info().tokens[0], (uint64_t)all.size());
      std::mt19937 rng(2);
      std::vector<uint32_t> got;
      int bad = 0;
      for (int i = 0; i < 2000; i++) {
        size_t n = rng() % 7000;
        uint64_t start = rng() % (all.size() - n + 1);
        got.assign(n, 0);
        CHECK_OK(ds->Read(Split::kTrain, start, n, got.data()));
        if (!std::equal(got.begin(), got.end(), all.begin() + start)) bad++;
      }
      CHECK_EQ(bad, 0);
      got.resize(1);
      CHECK(!ds->Read(Split::kTrain, all.size(), 1, got.data()).ok());
      CHECK(!ds->Read(Split::kVal, 0, 1, got.data()).ok());
      RemoveAll(dir);
    }
  }
}

// The loader is shared by threads (its cache is locked): readers on four
// threads, with a cache of one block so that they evict each other's blocks,
// all get the input's tokens. ThreadSanitizer runs this in .ci/run.
TEST(concurrent_readers_get_the_input) {
  for (int level : {0, 3}) {
    std::string dir = TempDir();
    auto all = Make(dir, 1000, 20000, 3001, 128, level);
    std::unique_ptr<Dataset> ds;
    CHECK_OK(Dataset::Open(dir, &ds));
    ds->SetCacheBytes(1);
    std::atomic<int> bad{0}, failed{0};
    std::vector<std::thread> readers;
    for (int r = 0; r < 4; r++) {
      readers.emplace_back([&, r] {
        std::mt19937 rng(10 + r);
        std::vector<uint32_t> got;
        for (int i = 0; i < 300; i++) {
          size_t n = rng() % 2000;
          uint64_t start = rng() % (all.size() - n + 1);
          got.assign(n, 0);
          if (!ds->Read(Split::kTrain, start, n, got.data()).ok()) failed++;
          if (!std::equal(got.begin(), got.end(), all.begin() + start)) bad++;
          if (i % 50 == 0) ds->SetCacheBytes(i % 100 == 0 ? 1 : 1 << 20);
        }
      });
    }
    for (auto& t : readers) t.join();
    CHECK_EQ(failed.load(), 0);
    CHECK_EQ(bad.load(), 0);
    RemoveAll(dir);
  }
}

static Status ReadEverything(const std::string& dir) {
  std::unique_ptr<Dataset> ds;
  LM_RETURN_IF_ERROR(Dataset::Open(dir, &ds));
  std::vector<uint32_t> buf(ds->info().tokens[0]);
  return ds->Read(Split::kTrain, 0, buf.size(), buf.data());
}

TEST(every_single_bit_flip_is_caught_at_first_read) {
  for (int level : {0, 3}) {
    std::string dir = TempDir();
    Make(dir, 300, 250, 1000, 64, level);
    Manifest m;
    CHECK_OK(ReadManifest(dir, &m));
    CHECK_EQ(m.shards.size(), (size_t)1);
    std::string path = JoinPath(dir, m.shards[0].file);
    std::string good;
    CHECK_OK(ReadFile(path, &good));
    int fd = open(path.c_str(), O_RDWR);
    int missed = 0;
    for (size_t i = 0; i < good.size(); i++) {
      for (int bit = 0; bit < 8; bit++) {
        char c = (char)(good[i] ^ (1 << bit));
        CHECK_EQ(pwrite(fd, &c, 1, (off_t)i), (ssize_t)1);
        Status s = ReadEverything(dir);
        if (s.ok())
          missed++;
        else if (s.message().find(m.shards[0].file) == std::string::npos)
          missed++;  // must name the file
      }
      CHECK_EQ(pwrite(fd, &good[i], 1, (off_t)i), (ssize_t)1);
    }
    close(fd);
    CHECK_EQ(missed, 0);
    CHECK_OK(ReadEverything(dir));
    RemoveAll(dir);
  }
}

TEST(corrupt_block_error_names_shard_and_block) {
  std::string dir = TempDir();
  Make(dir, 300, 1000, 1000, 100, 3);
  Manifest m;
  CHECK_OK(ReadManifest(dir, &m));
  std::string path = JoinPath(dir, m.shards[0].file);
  ShardReader r;
  CHECK_OK(r.Open(path));
  uint64_t at = r.seek()[4].offset + 3;
  int fd = open(path.c_str(), O_RDWR);
  char c;
  CHECK_EQ(pread(fd, &c, 1, (off_t)at), (ssize_t)1);
  c ^= 0x10;
  CHECK_EQ(pwrite(fd, &c, 1, (off_t)at), (ssize_t)1);
  close(fd);
  std::unique_ptr<Dataset> ds;
  CHECK_OK(Dataset::Open(dir, &ds));
  std::vector<uint32_t> buf(100);
  CHECK_OK(ds->Read(Split::kTrain, 0, 100, buf.data()));  // block 0 is intact
  Status s = ds->Read(Split::kTrain, 400, 100, buf.data());
  CHECK(s.code() == Status::kCorruption);
  CHECK(s.message().find(path + ": block 4: checksum mismatch") != std::string::npos);
  RemoveAll(dir);
}

TEST(missing_and_truncated_shards_fail_at_open) {
  std::string dir = TempDir();
  Make(dir, 300, 5000, 1000, 100, 3);
  Manifest m;
  CHECK_OK(ReadManifest(dir, &m));
  std::string p1 = JoinPath(dir, m.shards[1].file), p3 = JoinPath(dir, m.shards[3].file);
  CHECK_EQ(truncate(p3.c_str(), (off_t)m.shards[3].bytes - 1), 0);
  std::unique_ptr<Dataset> ds;
  Status s = Dataset::Open(dir, &ds);
  CHECK(s.message().find(p3) != std::string::npos);
  CHECK(s.message().find("truncated") != std::string::npos);
  CHECK_EQ(unlink(p1.c_str()), 0);
  s = Dataset::Open(dir, &ds);
  CHECK(s.message().find(p1) != std::string::npos);
  CHECK(!Dataset::Open(dir + "/nope", &ds).ok());
  RemoveAll(dir);
}

// Counts no shard of its size could hold fail at open, naming the manifest,
// before any caller sizes its work by them; counts that are possible but
// wrong fail when CheckShards reads the headers.
TEST(impossible_manifest_counts_fail_at_open) {
  std::string dir = TempDir();
  Make(dir, 300, 5000, 1000, 100, 3);
  Manifest good;
  CHECK_OK(ReadManifest(dir, &good));
  std::string mpath = JoinPath(dir, kManifestName);
  const uint64_t lies[] = {1ULL << 63, 1ULL << 62, ~0ULL, 100ULL * 4194304ULL};
  for (uint64_t t : lies) {
    Manifest m = good;
    m.shards[1].tokens = t;
    CHECK_OK(WriteManifest(dir, m));
    std::unique_ptr<Dataset> ds;
    Status s = Dataset::Open(dir, &ds);
    CHECK(!s.ok() && s.code() == Status::kCorruption);
    CHECK(s.message().find(mpath + ": " + m.shards[1].file) == 0);
  }
  Manifest m = good;
  m.shards[0].blocks = 0;
  CHECK_OK(WriteManifest(dir, m));
  std::unique_ptr<Dataset> ds;
  CHECK(!Dataset::Open(dir, &ds).ok());
  m = good;
  m.shards[0].documents = m.shards[0].tokens + 1;
  CHECK_OK(WriteManifest(dir, m));
  CHECK(!Dataset::Open(dir, &ds).ok());
  // Possible but wrong: caught by the header check.
  m = good;
  m.shards[2].tokens += 1;
  CHECK_OK(WriteManifest(dir, m));
  CHECK_OK(Dataset::Open(dir, &ds));
  CHECK_OK(ds->CheckShards(Split::kTrain, good.shards[0].tokens + good.shards[1].tokens));
  Status s = ds->CheckShards(Split::kTrain, UINT64_MAX);
  CHECK(!s.ok() && s.message().find(m.shards[2].file) != std::string::npos);
  CHECK(s.message().find("does not match its manifest entry") != std::string::npos);
  RemoveAll(dir);
}

// A shard's document numbers are positions in its writer's input: a number
// at or past the writer's "documents" is corruption at first read; a writer
// entry without "documents" is not checked.
TEST(document_numbers_below_the_writers_count) {
  std::string dir = TempDir();
  Make(dir, 300, 5000, 1000, 100, 3);
  Manifest m;
  CHECK_OK(ReadManifest(dir, &m));
  CHECK(m.writers.size() == 1 && m.writers[0].documents_known);
  m.writers[0].documents -= 1;  // the last document's number is now too large
  CHECK_OK(WriteManifest(dir, m));
  std::unique_ptr<Dataset> ds;
  CHECK_OK(Dataset::Open(dir, &ds));
  Status s = ds->CheckShards(Split::kTrain, UINT64_MAX);
  CHECK(!s.ok() && s.code() == Status::kCorruption);
  CHECK(s.message().find(m.shards.back().file + ": document number " +
                         std::to_string(m.writers[0].documents) + " is not below the " +
                         std::to_string(m.writers[0].documents) + " documents of its writer") !=
        std::string::npos);
  m.writers[0].documents_known = false;
  CHECK_OK(WriteManifest(dir, m));
  CHECK_OK(Dataset::Open(dir, &ds));
  CHECK_OK(ds->CheckShards(Split::kTrain, UINT64_MAX));
  RemoveAll(dir);
}

// The manifest carries no checksum of its own, but no single changed byte in
// it may make the loader return other tokens than the ones packed: each one
// either fails (bad JSON, missing file, mismatch with the shard header) or is
// harmless (the file hash, which lm-pack verify checks, the writer fields).
TEST(no_manifest_byte_change_gives_wrong_tokens) {
  std::string dir = TempDir();
  auto all = Make(dir, 300, 3000, 2000, 256, 3);
  std::string path = JoinPath(dir, kManifestName);
  std::string good;
  CHECK_OK(ReadFile(path, &good));
  int fd = open(path.c_str(), O_RDWR);
  int wrong = 0, failed = 0;
  for (size_t i = 0; i < good.size(); i++) {
    char c = (char)(good[i] ^ 1);
    CHECK_EQ(pwrite(fd, &c, 1, (off_t)i), (ssize_t)1);
    std::unique_ptr<Dataset> ds;
    Status s = Dataset::Open(dir, &ds);
    if (s.ok()) {
      std::vector<uint32_t> got(ds->info().tokens[0]);
      s = ds->Read(Split::kTrain, 0, got.size(), got.data());
      if (s.ok() && (got != all || ds->info().tokens[1] != 0)) wrong++;
    }
    if (!s.ok()) failed++;
    CHECK_EQ(pwrite(fd, &good[i], 1, (off_t)i), (ssize_t)1);
  }
  close(fd);
  CHECK_EQ(wrong, 0);
  CHECK(failed > (int)good.size() / 4);
  RemoveAll(dir);
}

TEST(thousands_of_shards_open_without_reading_them) {
  std::string dir = TempDir();
  auto all = Make(dir, 300, 500, 1000, 64, 3);
  Manifest m;
  CHECK_OK(ReadManifest(dir, &m));
  ManifestShard one = m.shards[0];
  // Hard links: thousands of names, one file.
  m.shards.clear();
  for (int i = 0; i < 3000; i++) {
    ManifestShard s = one;
    s.file = "s" + std::to_string(i) + ".lms";
    CHECK_EQ(link(JoinPath(dir, one.file).c_str(), JoinPath(dir, s.file).c_str()), 0);
    m.shards.push_back(s);
  }
  CHECK_OK(WriteManifest(dir, m));
  std::unique_ptr<Dataset> ds;
  CHECK_OK(Dataset::Open(dir, &ds));
  CHECK_EQ(ds->info().tokens[0], 3000u * all.size());
  std::vector<uint32_t> got(all.size() + 10);
  CHECK_OK(ds->Read(Split::kTrain, 2999u * all.size() - 10, got.size(), got.data()));
  CHECK(std::equal(all.begin(), all.end(), got.begin() + 10));
  RemoveAll(dir);
}

TEST(each_epoch_visits_every_window_once) {
  std::string dir = TempDir();
  const int T = 16;
  auto all = Make(dir, 300, 16 * 97 + 1, 500, 64, 3);
  std::unique_ptr<Dataset> ds;
  CHECK_OK(Dataset::Open(dir, &ds));
  std::unique_ptr<BatchSampler> bs;
  CHECK_OK(BatchSampler::Create(ds.get(), Split::kTrain, T, 5, &bs));
  CHECK_EQ(bs->windows_per_epoch(), 97u);
  std::vector<uint32_t> row(T + 1);
  std::vector<std::vector<uint64_t>> epochs(2);
  for (int e = 0; e < 2; e++) {
    for (int i = 0; i < 97; i++) {
      CHECK_OK(bs->Next(1, 0, 1, row.data()));
      // Find which window this is: windows start every T tokens.
      uint64_t found = 1000;
      for (uint64_t w = 0; w < 97; w++)
        if (std::equal(row.begin(), row.end(), all.begin() + w * T)) found = w;
      epochs[e].push_back(found);
    }
    std::set<uint64_t> seen(epochs[e].begin(), epochs[e].end());
    CHECK_EQ(seen.size(), (size_t)97);
    CHECK(!seen.count(1000));
  }
  CHECK(epochs[0] != epochs[1]);
  CHECK_EQ(bs->cursor().epoch, 2u);
  CHECK_EQ(bs->cursor().index, 0u);
  RemoveAll(dir);
}

TEST(ranks_together_see_the_single_process_batch) {
  std::string dir = TempDir();
  const int T = 8, G = 12;
  Make(dir, 300, 3000, 700, 64, 3);
  std::unique_ptr<Dataset> ds;
  CHECK_OK(Dataset::Open(dir, &ds));
  std::unique_ptr<BatchSampler> one;
  CHECK_OK(BatchSampler::Create(ds.get(), Split::kTrain, T, 9, &one));
  std::vector<uint32_t> full(G * (T + 1));
  for (int W : {2, 3, 4}) {
    std::vector<std::unique_ptr<BatchSampler>> ranks(W);
    for (auto& r : ranks) CHECK_OK(BatchSampler::Create(ds.get(), Split::kTrain, T, 9, &r));
    CHECK_OK(one->Seek(BatchCursor{9, 0, 0}));
    for (int step = 0; step < 50; step++) {  // crosses epochs (374 windows)
      CHECK_OK(one->Next(G, 0, G, full.data()));
      std::vector<uint32_t> joined;
      for (int r = 0; r < W; r++) {
        int b = r * G / W, e = (r + 1) * G / W;
        std::vector<uint32_t> part((e - b) * (T + 1));
        CHECK_OK(ranks[r]->Next(G, b, e - b, part.data()));
        joined.insert(joined.end(), part.begin(), part.end());
      }
      CHECK(joined == full);
    }
  }
  RemoveAll(dir);
}

TEST(resume_from_a_cursor_is_exact) {
  std::string dir = TempDir();
  const int T = 8, G = 5;
  Make(dir, 300, 2000, 700, 64, 3);
  std::unique_ptr<Dataset> ds;
  CHECK_OK(Dataset::Open(dir, &ds));
  std::unique_ptr<BatchSampler> a, b;
  CHECK_OK(BatchSampler::Create(ds.get(), Split::kTrain, T, 3, &a));
  std::vector<uint32_t> x(G * (T + 1)), y(G * (T + 1));
  for (int i = 0; i < 70; i++) CHECK_OK(a->Next(G, 0, G, x.data()));
  std::string saved = a->cursor().ToJson();
  BatchCursor c;
  CHECK_OK(BatchCursor::FromJson(saved, &c));
  CHECK_EQ(c.ToJson(), saved);
  // A sampler created with another seed resumes the saved one's sequence.
  CHECK_OK(BatchSampler::Create(ds.get(), Split::kTrain, T, 99, &b));
  CHECK_OK(b->Seek(c));
  for (int i = 0; i < 100; i++) {
    CHECK_OK(a->Next(G, 0, G, x.data()));
    CHECK_OK(b->Next(G, 0, G, y.data()));
    CHECK(x == y);
  }
  CHECK(!BatchCursor::FromJson("", &c).ok());
  CHECK(!BatchCursor::FromJson("{\"seed\":1,\"epoch\":-1,\"index\":0}", &c).ok());
  CHECK(!BatchCursor::FromJson("{\"seed\":1,\"epoch\":0}", &c).ok());
  CHECK_OK(BatchCursor::FromJson("{\"seed\":18446744073709551615,\"epoch\":2,\"index\":3}", &c));
  CHECK_EQ(c.seed, 18446744073709551615ULL);
  RemoveAll(dir);
}

TEST(sampler_needs_a_whole_window) {
  std::string dir = TempDir();
  Make(dir, 300, 10, 700, 64, 3);
  std::unique_ptr<Dataset> ds;
  CHECK_OK(Dataset::Open(dir, &ds));
  std::unique_ptr<BatchSampler> bs;
  CHECK(!BatchSampler::Create(ds.get(), Split::kTrain, 10, 1, &bs).ok());
  CHECK_OK(BatchSampler::Create(ds.get(), Split::kTrain, 9, 1, &bs));
  CHECK_EQ(bs->windows_per_epoch(), 1u);
  CHECK(!BatchSampler::Create(ds.get(), Split::kVal, 1, 1, &bs).ok());
  RemoveAll(dir);
}

TEST(sequential_reader_visits_every_token_once) {
  std::string dir = TempDir();
  auto all = Make(dir, 300, 5000, 700, 64, 3);
  std::unique_ptr<Dataset> ds;
  CHECK_OK(Dataset::Open(dir, &ds));
  SequentialReader r(ds.get(), Split::kTrain);
  std::vector<uint32_t> got, buf(333);
  size_t n;
  do {
    CHECK_OK(r.Next(buf.size(), buf.data(), &n));
    got.insert(got.end(), buf.begin(), buf.begin() + n);
  } while (n > 0);
  CHECK(got == all);
  CHECK_OK(r.Seek(10));
  CHECK(!r.Seek(all.size() + 1).ok());
  RemoveAll(dir);
}

TEST_MAIN()
