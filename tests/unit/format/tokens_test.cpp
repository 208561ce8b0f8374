// tokens_test.cpp: the token stream format (docs/formats/tokens.md): round
// trip, concatenation, truncation at every byte, and every single-bit flip.
#include <cstdio>
#include <random>

#include "../test.h"
#include "format/tokens.h"
#include "util/hash.h"

using namespace lm;

static std::string WriteStream(const TokenStreamInfo& info, const std::vector<uint32_t>& ids,
                               size_t flush_every) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  TokenStreamWriter w(f, "<mem>");
  CHECK_OK(w.Begin(info));
  for (size_t i = 0; i < ids.size(); i++) {
    CHECK_OK(w.Write(&ids[i], 1));
    if (flush_every && (i + 1) % flush_every == 0) CHECK_OK(w.Flush());
  }
  CHECK_OK(w.End());
  fclose(f);
  std::string s(buf, len);
  free(buf);
  return s;
}

static Status ReadAll(const std::string& bytes, std::vector<uint32_t>* out, TokenStreamInfo* info) {
  FILE* f = fmemopen((void*)bytes.data(), bytes.size(), "rb");
  if (bytes.empty()) f = fopen("/dev/null", "rb");
  TokenStreamReader r(f, "<mem>");
  Status s = r.Begin();
  out->clear();
  if (s.ok()) {
    *info = r.info();
    std::vector<uint32_t> chunk;
    bool done = false;
    while (s.ok() && !done) {
      s = r.Next(&chunk, &done);
      out->insert(out->end(), chunk.begin(), chunk.end());
    }
  }
  fclose(f);
  return s;
}

static TokenStreamInfo Info(uint32_t vs) {
  TokenStreamInfo i;
  i.vocab_size = vs;
  i.eot_id = vs - 1;
  i.vocab_id = Hash64(std::to_string(vs));
  return i;
}

TEST(round_trip_16_and_32_bit) {
  std::mt19937 rng(1);
  for (uint32_t vs : {300u, 65536u, 65537u, 200000u}) {
    std::vector<uint32_t> ids(100000);
    for (auto& x : ids) x = rng() % vs;
    std::string s = WriteStream(Info(vs), ids, 0);
    std::vector<uint32_t> back;
    TokenStreamInfo info;
    CHECK_OK(ReadAll(s, &back, &info));
    CHECK(back == ids);
    CHECK_EQ(info.vocab_size, vs);
    CHECK_EQ(info.width(), vs <= 65536 ? 2 : 4);
  }
}

TEST(concatenation_is_valid) {
  std::vector<uint32_t> a = {1, 2, 3}, b = {4, 5};
  std::string s = WriteStream(Info(1000), a, 1) + WriteStream(Info(1000), b, 0);
  std::vector<uint32_t> back;
  TokenStreamInfo info;
  CHECK_OK(ReadAll(s, &back, &info));
  CHECK((back == std::vector<uint32_t>{1, 2, 3, 4, 5}));
  // Another vocabulary after the first stream is refused.
  std::string mixed = WriteStream(Info(1000), a, 0) + WriteStream(Info(999), b, 0);
  Status st = ReadAll(mixed, &back, &info);
  CHECK(!st.ok());
  CHECK(st.message().find("different vocabularies") != std::string::npos);
  // The same identity with another size, or another end-of-text id: the
  // message shows what differs, and where the second stream begins.
  TokenStreamInfo bigger = Info(1000);
  bigger.vocab_size = 1001;
  std::string first = WriteStream(Info(1000), a, 0);
  st = ReadAll(first + WriteStream(bigger, b, 0), &back, &info);
  std::string at = ", at byte " + std::to_string(first.size()) + ")";
  CHECK_EQ(st.message(), "<mem>: concatenated token streams of different vocabularies (" +
                             HashHex(bigger.vocab_id) + " of size 1000 then " +
                             HashHex(bigger.vocab_id) + " of size 1001" + at);
  TokenStreamInfo no_eot = Info(1000);
  no_eot.eot_id = kNoToken;
  st = ReadAll(first + WriteStream(no_eot, b, 0), &back, &info);
  CHECK_EQ(st.message(),
           "<mem>: concatenated token streams with different end-of-text ids (999 then none" + at);
}

TEST(bytes_after_a_complete_stream_are_named_with_their_offset) {
  std::string s = WriteStream(Info(300), {1, 2, 3}, 0);
  std::vector<uint32_t> back;
  TokenStreamInfo info;
  std::string at = " after the end of the token stream at byte " + std::to_string(s.size());
  Status st = ReadAll(s + "abc", &back, &info);
  CHECK_EQ(st.message(),
           "<mem>: 3 trailing bytes" + at + " (too few for another stream's 32-byte header)");
  st = ReadAll(s + s.substr(0, 10), &back, &info);
  CHECK_EQ(st.message(),
           "<mem>: 10 trailing bytes" + at + " (too few for another stream's 32-byte header)");
  st = ReadAll(s + "not a stream", &back, &info);
  CHECK_EQ(st.message(), "<mem>: 12 trailing bytes" + at + " (not another stream: bad magic)");
  st = ReadAll(s + std::string(40, 'x'), &back, &info);
  CHECK_EQ(st.message(), "<mem>: unexpected bytes" + at + " (not another stream: bad magic)");
  // A partial first header is still a truncated stream.
  st = ReadAll(s.substr(0, 3), &back, &info);
  CHECK(st.message().find("truncated token stream (header is 3 of 32 bytes)") != std::string::npos);
}

TEST(empty_stream_and_empty_input) {
  std::vector<uint32_t> back;
  TokenStreamInfo info;
  CHECK_OK(ReadAll(WriteStream(Info(500), {}, 0), &back, &info));
  CHECK(back.empty());
  Status s = ReadAll("", &back, &info);
  CHECK(!s.ok());
  CHECK(s.message().find("empty input") != std::string::npos);
}

TEST(every_truncation_is_detected) {
  std::vector<uint32_t> ids = {7, 8, 9, 10, 11};
  std::string s = WriteStream(Info(300), ids, 2);
  std::vector<uint32_t> back;
  TokenStreamInfo info;
  for (size_t n = 0; n < s.size(); n++) CHECK(!ReadAll(s.substr(0, n), &back, &info).ok());
}

TEST(every_bit_flip_is_detected) {
  std::vector<uint32_t> ids = {7, 8, 9, 10, 11, 299};
  std::string s = WriteStream(Info(300), ids, 4);
  std::vector<uint32_t> back;
  TokenStreamInfo info;
  for (size_t bit = 0; bit < s.size() * 8; bit++) {
    std::string c = s;
    c[bit / 8] ^= (char)(1 << (bit % 8));
    if (ReadAll(c, &back, &info).ok()) {
      printf("# undetected flip at bit %zu\n", bit);
      CHECK(false);
    }
  }
}

TEST(writer_refuses_out_of_range_ids) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  TokenStreamWriter w(f, "<mem>");
  CHECK_OK(w.Begin(Info(300)));
  uint32_t bad = 300;
  CHECK(!w.Write(&bad, 1).ok());
  fclose(f);
  free(buf);
}

TEST_MAIN()
