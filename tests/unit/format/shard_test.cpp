// shard_test.cpp: the shard format (docs/formats/shard.md): round trips at
// both token widths and with and without compression, a shard built by hand
// from the spec, truncation at every length, and every single-bit flip.
#include <fcntl.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <random>

#include "../test.h"
#include "format/shard.h"
#include "util/codec.h"
#include "util/file.h"
#include "util/hash.h"

using namespace lm;

// Plain writes: a test writing thousands of corrupt copies must not fsync each.
static void PutFile(const std::string& path, const std::string& data) {
  FILE* f = fopen(path.c_str(), "wb");
  CHECK(f != nullptr);
  CHECK_EQ(fwrite(data.data(), 1, data.size(), f), data.size());
  fclose(f);
}

static std::string TempDir() {
  char tmpl[] = "/tmp/lm-shard-test.XXXXXX";
  return mkdtemp(tmpl);
}

struct Written {
  std::vector<uint32_t> ids;
  std::vector<uint64_t> docs;
  ShardSummary sum;
};

// Writes ids (documents end at eot) to path; returns what it wrote.
static Written WriteShard(const std::string& path, uint32_t vocab, size_t n, uint32_t block,
                          int level, int threads, uint32_t seed) {
  Written w;
  std::mt19937 rng(seed);
  ShardWriter::Options o;
  o.vocab_size = vocab;
  o.eot_id = vocab - 1;
  o.vocab_id = Hash64("vocab" + std::to_string(vocab));
  o.block_tokens = block;
  o.level = level;
  o.threads = threads;
  ShardWriter sw;
  CHECK_OK(sw.Open(path, o));
  for (size_t i = 0; i < n; i++) {
    // Skewed ids compress; an eot now and then ends a document.
    uint32_t t =
        (rng() % 50 == 0) ? vocab - 1 : (uint32_t)(rng() % (rng() % 8 == 0 ? vocab - 1 : 40));
    w.ids.push_back(t);
    CHECK_OK(sw.Add(&t, 1));
    if (t == vocab - 1) {
      sw.EndDocument(w.docs.size() * 3);
      w.docs.push_back(i + 1);
    }
  }
  if (w.ids.empty() || w.ids.back() != vocab - 1) {
    sw.EndDocument(w.docs.size() * 3);
    if (!w.ids.empty()) w.docs.push_back(w.ids.size());
  }
  CHECK_OK(sw.Finish(&w.sum));
  return w;
}

static Status ReadAllTokens(const ShardReader& r, std::vector<uint32_t>* out) {
  out->clear();
  std::string raw;
  for (uint32_t b = 0; b < r.header().block_count; b++) {
    LM_RETURN_IF_ERROR(r.ReadBlock(b, &raw));
    uint32_t n = r.block_tokens(b);
    size_t at = out->size();
    out->resize(at + n);
    DecodeTokens(reinterpret_cast<const uint8_t*>(raw.data()), r.header().token_width, n,
                 out->data() + at);
  }
  return Status::OK();
}

TEST(round_trip_widths_levels_blocks) {
  std::string dir = TempDir();
  for (uint32_t vocab : {300u, 65536u, 65537u, 1u << 20}) {
    for (int level : {0, 1, 3}) {
      for (uint32_t block : {1u, 7u, 1000u, 65536u}) {
        size_t n = block == 1 ? 300 : 5000;
        std::string path = dir + "/s.lms";
        Written w = WriteShard(path, vocab, n, block, level, 2, vocab + block);
        ShardReader r;
        CHECK_OK(r.Open(path));
        CHECK_EQ(r.header().token_width, vocab <= 65536 ? 2 : 4);
        CHECK_EQ(r.header().token_count, (uint64_t)n);
        CHECK_EQ(r.header().compressed(), level > 0);
        CHECK_EQ(r.header().block_count, (uint32_t)((n + block - 1) / block));
        CHECK(r.doc_ends() == w.docs);
        for (size_t i = 0; i < w.docs.size(); i++) CHECK_EQ(r.doc_numbers()[i], (uint64_t)i * 3);
        std::vector<uint32_t> got;
        CHECK_OK(ReadAllTokens(r, &got));
        CHECK(got == w.ids);
        CHECK_OK(r.VerifyAll());
        CHECK_EQ(w.sum.bytes, r.file_size());
        MappedFile m;
        CHECK_OK(m.Open(path));
        CHECK_EQ(w.sum.file_hash, Hash64(m.data(), m.size()));
      }
    }
  }
  RemoveAll(dir);
}

TEST(output_does_not_depend_on_threads) {
  std::string dir = TempDir();
  Written a = WriteShard(dir + "/a.lms", 1000, 50000, 1024, 3, 1, 5);
  Written b = WriteShard(dir + "/b.lms", 1000, 50000, 1024, 3, 4, 5);
  CHECK_EQ(a.sum.file_hash, b.sum.file_hash);
  RemoveAll(dir);
}

// Several shards through one writer, each of many batches (the writer
// compresses one batch on its thread while the next fills), added in pieces
// of odd sizes: every token comes back, at every level and thread count.
TEST(one_writer_many_shards_of_many_batches) {
  std::string dir = TempDir();
  std::mt19937 rng(11);
  std::vector<uint32_t> ids(1500000);
  for (uint32_t& t : ids) t = rng() % 3 == 0 ? rng() % 50000 : rng() % 300;
  for (int level : {0, 3}) {
    for (int threads : {1, 3}) {
      ShardWriter::Options o;
      o.vocab_size = 50257;
      o.vocab_id = 7;
      o.block_tokens = 1000;  // 2 KB blocks: about 500 a batch
      o.level = level;
      o.threads = threads;
      ShardWriter sw;
      for (int k = 0; k < 3; k++) {
        std::string path = dir + "/s" + std::to_string(k) + ".lms";
        CHECK_OK(sw.Open(path, o));
        size_t n = ids.size() - (size_t)k * 300001;  // not a whole number of batches
        for (size_t at = 0; at < n;) {
          size_t take = std::min<size_t>(n - at, 1 + rng() % 70000);
          CHECK_OK(sw.Add(ids.data() + at, take));
          at += take;
        }
        ShardSummary sum;
        CHECK_OK(sw.Finish(&sum));
        ShardReader r;
        CHECK_OK(r.Open(path));
        std::vector<uint32_t> got;
        CHECK_OK(ReadAllTokens(r, &got));
        CHECK(got == std::vector<uint32_t>(ids.begin(), ids.begin() + n));
        CHECK_OK(r.VerifyAll());
      }
    }
  }
  RemoveAll(dir);
}

TEST(uncompressed_tokens_sit_in_place) {
  std::string dir = TempDir();
  Written w = WriteShard(dir + "/s.lms", 300, 1000, 64, 0, 1, 9);
  MappedFile m;
  CHECK_OK(m.Open(dir + "/s.lms"));
  // Raw 16-bit tokens start right after the 64-byte header, back to back.
  for (size_t i = 0; i < w.ids.size(); i++)
    CHECK_EQ((uint32_t)LoadU16(m.data() + 64 + 2 * i), w.ids[i]);
  RemoveAll(dir);
}

// A shard assembled byte by byte from docs/formats/shard.md, not by ShardWriter.
TEST(reads_a_shard_built_from_the_spec) {
  std::string dir = TempDir();
  const uint32_t vocab = 70000;  // 32-bit tokens
  std::vector<uint32_t> toks = {5, 69999, 7, 8, 69999, 1, 2, 3, 4};
  const uint32_t block = 4;
  std::vector<std::string> stored;
  std::vector<uint32_t> raw_sizes;
  for (size_t i = 0; i < toks.size(); i += block) {
    std::string raw;
    for (size_t j = i; j < toks.size() && j < i + block; j++) PutU32(&raw, toks[j]);
    std::string c(ZSTD_compressBound(raw.size()), '\0');
    c.resize(ZSTD_compress(&c[0], c.size(), raw.data(), raw.size(), 5));
    stored.push_back(c);
    raw_sizes.push_back((uint32_t)raw.size());
  }
  std::string body;
  std::string index;
  uint64_t off = 64;
  for (size_t b = 0; b < stored.size(); b++) {
    PutU64(&index, off);
    PutU32(&index, (uint32_t)stored[b].size());
    PutU32(&index, raw_sizes[b]);
    PutU64(&index, Hash64(stored[b]));
    body += stored[b];
    off += stored[b].size();
  }
  PutU64(&index, 2);  // documents end after each 69999 ...
  PutU64(&index, 5);
  PutU64(&index, 9);   // ... and at the end of the input
  PutU64(&index, 10);  // their numbers in the writer's input
  PutU64(&index, 12);
  PutU64(&index, 13);
  PutU64(&index, Hash64(index));
  std::string h = "LMSH";
  PutU16(&h, 1);
  h.push_back(4);  // width
  h.push_back(1);  // zstd
  PutU32(&h, vocab);
  PutU32(&h, 69999);
  PutU64(&h, 0x0123456789abcdefULL);
  PutU64(&h, toks.size());
  PutU64(&h, 3);
  PutU32(&h, block);
  PutU32(&h, 3);
  PutU64(&h, off);
  PutU64(&h, Hash64(h));
  PutFile(dir + "/spec.lms", h + body + index);
  ShardReader r;
  CHECK_OK(r.Open(dir + "/spec.lms"));
  std::vector<uint32_t> got;
  CHECK_OK(ReadAllTokens(r, &got));
  CHECK(got == toks);
  CHECK_EQ(r.doc_ends().size(), (size_t)3);
  CHECK(r.doc_numbers() == std::vector<uint64_t>({10, 12, 13}));
  CHECK_OK(r.VerifyAll());
  RemoveAll(dir);
}

static Status OpenAndVerify(const std::string& path) {
  ShardReader r;
  LM_RETURN_IF_ERROR(r.Open(path));
  return r.VerifyAll();
}

// Flips bits in place (pwrite, no truncation): rewriting thousands of small
// files is slow on file systems that flush on truncate-and-rewrite.
TEST(every_single_bit_flip_is_detected) {
  std::string dir = TempDir();
  for (int level : {0, 3}) {
    std::string path = dir + "/s.lms";
    WriteShard(path, 300, 200, 64, level, 1, 3);
    std::string good;
    CHECK_OK(ReadFile(path, &good));
    int fd = open(path.c_str(), O_RDWR);
    CHECK(fd >= 0);
    int missed = 0;
    for (size_t i = 0; i < good.size(); i++) {
      for (int bit = 0; bit < 8; bit++) {
        char c = (char)(good[i] ^ (1 << bit));
        CHECK_EQ(pwrite(fd, &c, 1, (off_t)i), (ssize_t)1);
        if (OpenAndVerify(path).ok()) missed++;
      }
      CHECK_EQ(pwrite(fd, &good[i], 1, (off_t)i), (ssize_t)1);
    }
    close(fd);
    CHECK_OK(OpenAndVerify(path));
    CHECK_EQ(missed, 0);
  }
  RemoveAll(dir);
}

TEST(every_truncation_and_extension_is_detected) {
  std::string dir = TempDir();
  std::string path = dir + "/s.lms";
  WriteShard(path, 300, 300, 50, 3, 1, 4);
  std::string good;
  CHECK_OK(ReadFile(path, &good));
  PutFile(dir + "/t.lms", good + std::string(1, '\0'));
  CHECK(!OpenAndVerify(dir + "/t.lms").ok());
  int missed = 0;
  for (size_t len = good.size(); len-- > 0;) {
    CHECK_EQ(truncate(path.c_str(), (off_t)len), 0);
    if (OpenAndVerify(path).ok()) missed++;
  }
  CHECK_EQ(missed, 0);
  RemoveAll(dir);
}

// Random damage (several bytes at once, with truncation) is always detected
// and never crashes a reader (run under ASan/UBSan to check the latter).
TEST(random_damage_is_detected_and_never_crashes) {
  std::string dir = TempDir();
  std::string path = dir + "/s.lms";
  WriteShard(path, 70000, 500, 32, 3, 1, 8);
  std::string good;
  CHECK_OK(ReadFile(path, &good));
  std::mt19937 rng(11);
  int missed = 0;
  for (int iter = 0; iter < 400; iter++) {
    std::string bad = good;
    int hits = 1 + (int)(rng() % 8);
    for (int h = 0; h < hits; h++) bad[rng() % bad.size()] = (char)rng();
    if (rng() % 4 == 0) bad.resize(rng() % bad.size());
    if (bad == good) continue;
    PutFile(dir + "/bad.lms", bad);
    if (OpenAndVerify(dir + "/bad.lms").ok()) missed++;
  }
  CHECK_EQ(missed, 0);
  for (const char* tiny : {"", "L", "LMSH", "LMSH\x01\x00"}) {
    PutFile(dir + "/bad.lms", tiny);
    CHECK(!OpenAndVerify(dir + "/bad.lms").ok());
  }
  RemoveAll(dir);
}

TEST(wrong_magic_and_version_are_named) {
  std::string dir = TempDir();
  std::string path = dir + "/s.lms";
  WriteShard(path, 300, 100, 64, 3, 1, 4);
  std::string good;
  CHECK_OK(ReadFile(path, &good));
  std::string bad = good;
  bad[0] = 'X';
  PutFile(path, bad);
  ShardReader r;
  Status s = r.Open(path);
  CHECK(s.code() == Status::kInvalid);
  CHECK(s.message().find("bad magic") != std::string::npos);
  bad = good;
  StoreU16(reinterpret_cast<uint8_t*>(&bad[4]), 2);
  StoreU64(reinterpret_cast<uint8_t*>(&bad[56]), Hash64(bad.data(), 56));
  PutFile(path, bad);
  s = r.Open(path);
  CHECK(s.message().find("unsupported shard version 2") != std::string::npos);
  CHECK(s.message().find(path) != std::string::npos);
  RemoveAll(dir);
}

TEST(writer_refuses_out_of_vocabulary_ids_and_empty_shards) {
  std::string dir = TempDir();
  ShardWriter::Options o;
  o.vocab_size = 100;
  ShardWriter w;
  CHECK_OK(w.Open(dir + "/a.lms", o));
  uint32_t bad = 100;
  CHECK(!w.Add(&bad, 1).ok());
  ShardSummary sum;
  ShardWriter e;
  CHECK_OK(e.Open(dir + "/b.lms", o));
  CHECK(!e.Finish(&sum).ok());
  e.Abort();
  w.Abort();
  // Nothing is left behind: neither the shards nor their temporaries.
  CHECK(!PathExists(dir + "/a.lms"));
  CHECK(!PathExists(dir + "/b.lms"));
  CHECK_EQ(rmdir(dir.c_str()), 0);
}

TEST_MAIN()
