// shard_fuzz.cpp: a shard file (docs/formats/shard.md) through ShardReader,
// as the loader, lm-pack verify and lm-pack cat read it.
//
// Each input is read as given, then with its checksums recomputed (header,
// every block the seek table places, the index), so that mutations reach
// the index and the blocks. Open, then every block, then VerifyAll; a shard
// that VerifyAll accepts must have every block readable, and ShardWriter
// must write its tokens and documents again into a shard that reads back
// the same.
#include <stdlib.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "format/shard.h"
#include "tests/fuzz/fuzz.h"
#include "util/codec.h"
#include "util/hash.h"

namespace {

struct Content {
  lm::ShardHeader h;
  std::vector<uint32_t> ids;
  std::vector<uint64_t> ends, numbers;
};

// Reads every block; false when one is refused.
bool ReadAll(const lm::ShardReader& r, Content* c) {
  c->h = r.header();
  c->ends = r.doc_ends();
  c->numbers = r.doc_numbers();
  std::string raw;
  for (uint32_t b = 0; b < r.header().block_count; b++) {
    if (!r.ReadBlock(b, &raw).ok()) return false;
    uint32_t n = r.block_tokens(b);
    FUZZ_CHECK(raw.size() == (size_t)n * r.header().token_width);
    if (!r.CheckTokens(b, (const uint8_t*)raw.data(), n).ok()) return false;
    size_t at = c->ids.size();
    c->ids.resize(at + n);
    lm::DecodeTokens((const uint8_t*)raw.data(), r.header().token_width, n, &c->ids[at]);
  }
  FUZZ_CHECK(c->ids.size() == r.header().token_count);
  return true;
}

// The directory the round trip writes into: a temporary in /dev/shm (where
// the writer's fsync costs nothing) when there is one, removed at exit.
std::string g_dir;
const std::string& Dir() {
  if (g_dir.empty()) {
    std::string tmpl =
        access("/dev/shm", W_OK) == 0 ? "/dev/shm/shard-fuzz-XXXXXX" : "/tmp/shard-fuzz-XXXXXX";
    FUZZ_CHECK(mkdtemp(&tmpl[0]) != nullptr);
    g_dir = tmpl;
    atexit([] { rmdir(g_dir.c_str()); });
  }
  return g_dir;
}

void RoundTrip(const Content& c) {
  lm::ShardWriter::Options opt;
  opt.vocab_size = c.h.vocab_size;
  opt.eot_id = c.h.eot_id;
  opt.vocab_id = c.h.vocab_id;
  opt.block_tokens = c.h.block_tokens;
  opt.level = c.h.compressed() ? 1 : 0;
  const std::string path = Dir() + "/again.lms";
  lm::ShardWriter w;
  FUZZ_CHECK(w.Open(path, opt).ok());
  uint64_t done = 0;
  for (size_t d = 0; d <= c.ends.size(); d++) {
    uint64_t to = d < c.ends.size() ? c.ends[d] : c.ids.size();
    FUZZ_CHECK(w.Add(c.ids.data() + done, to - done).ok());
    done = to;
    if (d < c.ends.size()) w.EndDocument(c.numbers[d]);
  }
  lm::ShardSummary sum;
  FUZZ_CHECK(w.Finish(&sum).ok());
  lm::ShardReader r;
  FUZZ_CHECK(r.Open(path).ok());
  FUZZ_CHECK(r.VerifyAll().ok());
  Content back;
  FUZZ_CHECK(ReadAll(r, &back));
  unlink(path.c_str());
  FUZZ_CHECK(back.ids == c.ids && back.ends == c.ends && back.numbers == c.numbers);
  const lm::ShardHeader &a = back.h, &b = c.h;
  FUZZ_CHECK(a.token_width == b.token_width && a.flags == b.flags && a.vocab_size == b.vocab_size &&
             a.eot_id == b.eot_id && a.vocab_id == b.vocab_id && a.block_tokens == b.block_tokens &&
             a.block_count == b.block_count && a.doc_count == b.doc_count);
  FUZZ_CHECK(sum.tokens == c.ids.size() && sum.documents == c.ends.size());
}

void Check(const uint8_t* data, size_t size) {
  lm::ShardReader r;
  if (!r.OpenMemory(data, size, "fuzz.lms").ok()) return;
  Content c;
  bool blocks_ok = ReadAll(r, &c);
  if (!r.VerifyAll().ok()) return;
  lm_fuzz::Accepted()++;
  FUZZ_CHECK(blocks_ok);
  RoundTrip(c);
}

// Recomputes the header's checksum, then those of the blocks the seek table
// places inside the file, then the index's.
void FixChecksums(std::vector<uint8_t>* d) {
  uint8_t* p = d->data();
  const uint64_t n = d->size();
  if (n < lm::kShardHeaderSize) return;
  lm::StoreU64(p + 56, lm::Hash64(p, 56));
  const uint64_t docs = lm::LoadU64(p + 32), blocks = lm::LoadU32(p + 44),
                 index = lm::LoadU64(p + 48);
  if (docs > n / 16 || blocks > n / 24 || index > n || n - index != blocks * 24 + docs * 16 + 8)
    return;
  for (uint64_t b = 0; b < blocks; b++) {
    uint8_t* e = p + index + 24 * b;
    uint64_t off = lm::LoadU64(e), stored = lm::LoadU32(e + 8);
    if (off <= index && stored <= index - off) lm::StoreU64(e + 16, lm::Hash64(p + off, stored));
  }
  lm::StoreU64(p + n - 8, lm::Hash64(p + index, n - index - 8));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lm_fuzz::AsGivenAndFixed(data, size, Check, FixChecksums);
  return 0;
}
