// tokens_fuzz.cpp: the token stream (docs/formats/tokens.md) through
// TokenStreamReader, as lm-pack and lm-tokenize decode read it.
//
// Each input is read as given, then with every checksum it reaches (header,
// chunks, end frames) and every end frame's count recomputed, so that
// mutations reach what the checksums guard. An accepted input must be the
// same tokens of the same vocabulary when TokenStreamWriter writes them
// again (as one stream) and the reader reads that back, and writing is
// deterministic.
#include <cstdio>
#include <string>
#include <vector>

#include "format/tokens.h"
#include "tests/fuzz/fuzz.h"
#include "util/codec.h"
#include "util/hash.h"

namespace {

struct Stream {
  lm::TokenStreamInfo info;
  std::vector<uint32_t> ids;
};

// Reads all of data; false when the reader refuses it.
bool Read(const void* data, size_t size, Stream* out) {
  if (size == 0) return false;  // fmemopen wants a buffer; the reader's empty-input case is tested
  FILE* f = fmemopen(const_cast<void*>(data), size, "rb");
  FUZZ_CHECK(f != nullptr);
  lm::TokenStreamReader r(f, "fuzz.tok");
  bool ok = r.Begin().ok();
  std::vector<uint32_t> chunk;
  bool done = false;
  while (ok && !done) {
    ok = r.Next(&chunk, &done).ok();
    if (ok) {
      for (uint32_t t : chunk) FUZZ_CHECK(t < r.info().vocab_size);
      out->ids.insert(out->ids.end(), chunk.begin(), chunk.end());
    }
  }
  if (ok) FUZZ_CHECK(r.tokens_read() == out->ids.size());
  out->info = r.info();
  fclose(f);
  return ok;
}

std::string Write(const Stream& s) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  FUZZ_CHECK(f != nullptr);
  lm::TokenStreamWriter w(f, "again.tok");
  FUZZ_CHECK(w.Begin(s.info).ok());
  FUZZ_CHECK(w.Write(s.ids.data(), s.ids.size()).ok());
  FUZZ_CHECK(w.End().ok());
  fclose(f);
  std::string out(buf, len);
  free(buf);
  return out;
}

void Check(const uint8_t* data, size_t size) {
  Stream s;
  if (!Read(data, size, &s)) return;
  lm_fuzz::Accepted()++;
  std::string again = Write(s);
  Stream t;
  FUZZ_CHECK(Read(again.data(), again.size(), &t));
  FUZZ_CHECK(t.ids == s.ids);
  FUZZ_CHECK(t.info.vocab_size == s.info.vocab_size && t.info.eot_id == s.info.eot_id &&
             t.info.vocab_id == s.info.vocab_id);
  FUZZ_CHECK(Write(t) == again);
}

// Recomputes the checksums and end-frame counts that the layout reaches.
void FixChecksums(std::vector<uint8_t>* d) {
  uint8_t* p = d->data();
  size_t n = d->size(), pos = 0;
  while (pos + lm::kTokenStreamHeaderSize <= n) {
    lm::StoreU64(p + pos + 24, lm::Hash64(p + pos, 24));
    const size_t width = lm::LoadU32(p + pos + 8) <= 65536 ? 2 : 4;
    pos += lm::kTokenStreamHeaderSize;
    uint64_t total = 0;
    for (;;) {
      if (pos + 4 > n) return;
      uint64_t c = lm::LoadU32(p + pos);
      if (c == 0) {
        if (pos + 20 > n) return;
        lm::StoreU64(p + pos + 4, total);
        lm::StoreU64(p + pos + 12, lm::Hash64(p + pos, 12));
        pos += 20;
        break;
      }
      if (c > lm::kTokenStreamMaxChunk || pos + 4 + c * width + 8 > n) return;
      lm::StoreU64(p + pos + 4 + c * width, lm::Hash64(p + pos + 4, c * width));
      pos += 4 + c * width + 8;
      total += c;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lm_fuzz::AsGivenAndFixed(data, size, Check, FixChecksums);
  return 0;
}
