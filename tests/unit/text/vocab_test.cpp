// vocab_test.cpp: the tok.bpe format (round trip, identity, every truncation
// and byte flip rejected, invariants) and the encoder (the three merge
// algorithms agree, round trips, special tokens), on vocabularies built here.
#include <random>
#include <string>
#include <vector>

#include "../test.h"
#include "format/vocab.h"
#include "text/train.h"
#include "text/vocab.h"
#include "util/hash.h"

using namespace lm;

namespace {

// Appends the merge of ids a and b; returns its id.
uint32_t AddMerge(VocabFile* f, uint32_t a, uint32_t b) {
  VocabToken t;
  t.kind = TokenKind::kMerge;
  t.left = a;
  t.right = b;
  t.bytes = f->tokens[a].bytes + f->tokens[b].bytes;
  f->tokens.push_back(t);
  return (uint32_t)f->tokens.size() - 1;
}

// 256 bytes, merges "ab", "abc", "  ", "    ", specials.
VocabFile SmallFile() {
  VocabFile f;
  f.pattern_kind = PatternKind::kGpt2;
  f.pattern = PatternRegex(PatternKind::kGpt2);
  f.tokens.resize(256);
  for (int b = 0; b < 256; b++) {
    f.tokens[b].kind = TokenKind::kByte;
    f.tokens[b].bytes.assign(1, (char)b);
  }
  auto merge = [&](uint32_t a, uint32_t b) { return AddMerge(&f, a, b); };
  uint32_t ab = merge('a', 'b');
  merge(ab, 'c');
  uint32_t sp = merge(' ', ' ');
  merge(sp, sp);
  VocabToken eot;
  eot.kind = TokenKind::kSpecial;
  eot.bytes = "<|endoftext|>";
  f.eot_id = (uint32_t)f.tokens.size();
  f.tokens.push_back(eot);
  VocabToken unused;
  f.tokens.push_back(unused);
  VocabToken pad;
  pad.kind = TokenKind::kSpecial;
  pad.bytes = "<|pad|>";
  f.tokens.push_back(pad);
  return f;
}

// A vocabulary trained on generated English-like text, for encoder tests.
Vocab TrainedVocab(PatternKind kind, uint32_t size) {
  std::mt19937_64 rng(42);
  static const char* kWords[] = {"the",  "of", "and",  "token", "izer",  "ing",
                                 "tion", "a",  "aa",   "aaa",   " ",     "  ",
                                 "\n",   "42", "1999", "don't", "naïve", "日本"};
  std::unique_ptr<Pretokenizer> pre;
  Pretokenizer::Create(kind, "", false, &pre);
  ChunkCounter counter(pre.get());
  std::string text;
  for (int i = 0; i < 20000; i++) {
    text += kWords[rng() % 18];
    if (rng() % 3) text += " ";
  }
  counter.Add(text.data(), text.size());
  TrainOptions opt;
  opt.vocab_size = size;
  opt.pattern_kind = kind;
  opt.pattern = PatternRegex(kind);
  VocabFile f;
  Status s = TrainBpe(counter.counts(), opt, &f);
  std::string data;
  uint64_t id = 0;
  if (s.ok()) s = EncodeVocabFile(f, &data, &id);
  Vocab v;
  if (s.ok()) s = Vocab::FromFile(f, id, &v);
  CHECK_OK(s);
  return v;
}

}  // namespace

TEST(format_round_trip_and_identity) {
  VocabFile f = SmallFile();
  std::string data;
  uint64_t id;
  CHECK_OK(EncodeVocabFile(f, &data, &id));
  CHECK_EQ(id, Hash64(data.data(), data.size() - 8));
  CHECK_EQ(data.substr(0, 4), std::string("LMBP"));
  VocabFile g;
  uint64_t id2;
  CHECK_OK(DecodeVocabFile((const uint8_t*)data.data(), data.size(), "x", &g, &id2));
  CHECK_EQ(id, id2);
  CHECK_EQ(g.tokens.size(), f.tokens.size());
  CHECK_EQ(g.tokens[257].bytes, std::string("abc"));
  CHECK_EQ(g.eot_id, f.eot_id);
  CHECK(g.tokens[g.eot_id + 1].kind == TokenKind::kUnused);
  std::string again;
  uint64_t id3;
  CHECK_OK(EncodeVocabFile(g, &again, &id3));
  CHECK(again == data);
}

TEST(format_rejects_every_truncation_and_byte_flip) {
  VocabFile f = SmallFile();
  std::string data;
  uint64_t id;
  CHECK_OK(EncodeVocabFile(f, &data, &id));
  int accepted = 0;
  for (size_t n = 0; n < data.size(); n++) {
    VocabFile g;
    uint64_t x;
    if (DecodeVocabFile((const uint8_t*)data.data(), n, "x", &g, &x).ok()) accepted++;
  }
  for (size_t i = 0; i < data.size(); i++) {
    std::string d = data;
    d[i] ^= (char)(1 + (i % 255));
    VocabFile g;
    uint64_t x;
    if (DecodeVocabFile((const uint8_t*)d.data(), d.size(), "x", &g, &x).ok()) accepted++;
  }
  CHECK_EQ(accepted, 0);
}

TEST(format_checks_invariants) {
  auto bad = [](VocabFile f) {
    std::string d;
    uint64_t id;
    return !EncodeVocabFile(f, &d, &id).ok();
  };
  VocabFile f = SmallFile();
  VocabFile g = f;
  g.tokens[5].bytes = "\x06";  // byte 6 twice, byte 5 missing
  CHECK(bad(g));
  g = f;
  g.tokens[256].left = 300;  // merge of a later id
  CHECK(bad(g));
  g = f;
  g.eot_id = 256;  // not a special
  CHECK(bad(g));
  g = f;
  g.tokens.back().bytes = "<|endoftext|>";  // special twice
  CHECK(bad(g));
  g = f;
  VocabToken dup;
  dup.kind = TokenKind::kLiteral;
  dup.bytes = "ab";  // same bytes as id 256
  g.tokens.push_back(dup);
  CHECK(bad(g));
  g = f;
  g.tokens.resize(200);
  CHECK(bad(g));
  // The pattern is UTF-8 for every kind (vocab.md), not only for a custom regex.
  for (PatternKind k : {PatternKind::kNone, PatternKind::kGpt2, PatternKind::kRegex}) {
    g = f;
    g.pattern_kind = k;
    g.pattern = "\xff|.";
    CHECK(bad(g));
    g.pattern = "\xc3\xa9|.";  // é
    CHECK(!bad(g));
  }
}

// A few thousand merges of 32 KiB tokens (each within the 64 KiB token limit)
// would expand a small file to more than the 64 MiB all tokens may total.
TEST(format_refuses_tokens_expanding_past_64_mib) {
  VocabFile f = SmallFile();
  f.tokens.resize(256);  // bytes only; specials appended below
  auto merge = [&](uint32_t a, uint32_t b) { return AddMerge(&f, a, b); };
  uint32_t big = 'a';
  for (int i = 0; i < 15; i++) big = merge(big, big);  // "a" x 32768
  for (int b = 0; b < 256 && f.tokens.size() < 256 + 15 + 2100; b++) {
    const uint32_t mid = merge(big, (uint32_t)b);
    for (int c = 0; c < 256; c++) merge(mid, (uint32_t)c);  // distinct 32770-byte tokens
  }
  VocabToken eot;
  eot.kind = TokenKind::kSpecial;
  eot.bytes = "<|endoftext|>";
  f.eot_id = (uint32_t)f.tokens.size();
  f.tokens.push_back(eot);
  std::string d;
  uint64_t id;
  Status s = EncodeVocabFile(f, &d, &id);
  CHECK(!s.ok());
  CHECK(s.ToString().find("64 MiB") != std::string::npos);
}

// Fuzz finding (vocab_fuzz): a 40-byte file whose header claims 2^24 ids
// made the reader allocate the whole table (800 MB) before it found the body
// too short. The count is now checked against the body first.
TEST(format_refuses_a_count_the_body_cannot_hold_before_allocating) {
  std::string d;
  uint64_t id;
  CHECK_OK(EncodeVocabFile(SmallFile(), &d, &id));
  std::string tiny = d.substr(0, 32);
  tiny[8] = 0, tiny[9] = 0, tiny[10] = 0, tiny[11] = 1;  // n_ids = 2^24
  const uint64_t body = 1;
  for (int i = 0; i < 8; i++) tiny[16 + i] = (char)(body >> (8 * i));
  tiny += std::string(1, (char)1);  // pattern kind gpt2, then nothing
  const uint64_t sum = Hash64(tiny.data(), tiny.size());
  for (int i = 0; i < 8; i++) tiny += (char)(sum >> (8 * i));
  VocabFile g;
  Status s = DecodeVocabFile((const uint8_t*)tiny.data(), tiny.size(), "x", &g, &id);
  CHECK_EQ(s.code(), Status::kCorruption);
  CHECK(s.message() == "x: corrupt vocabulary body (1 bytes cannot hold 16777216 ids)");
}

TEST(encode_small_vocab) {
  VocabFile f = SmallFile();
  std::string data;
  uint64_t id;
  CHECK_OK(EncodeVocabFile(f, &data, &id));
  Vocab v;
  CHECK_OK(Vocab::FromFile(f, id, &v));
  std::vector<uint32_t> ids;
  CHECK_OK(v.Encode("abcab", false, &ids));
  CHECK((ids == std::vector<uint32_t>{256 + 1, 256}));  // "abcab" is one chunk: abc + ab
  ids.clear();
  CHECK_OK(v.Encode("x<|endoftext|>", false, &ids));
  CHECK(ids.size() > 3);
  ids.clear();
  CHECK_OK(v.Encode("x<|endoftext|><|pad|>", true, &ids));
  CHECK((ids == std::vector<uint32_t>{'x', v.eot_id(), v.eot_id() + 2}));
  std::string back;
  CHECK_OK(v.Decode(ids.data(), ids.size(), &back));
  CHECK_EQ(back, std::string("x<|endoftext|><|pad|>"));
  uint32_t unused = v.eot_id() + 1;
  CHECK(!v.Decode(&unused, 1, &back).ok());
  uint32_t outside = v.size();
  CHECK(!v.Decode(&outside, 1, &back).ok());
}

TEST(merge_algorithms_agree) {
  for (PatternKind k : {PatternKind::kGpt2, PatternKind::kNone}) {
    Vocab v = TrainedVocab(k, 700);
    std::mt19937_64 rng(7);
    const char* alpha[] = {"a", "the", " ", "ing", "tion", "x", "42", "\n", "日本", "\xff"};
    for (int it = 0; it < 300; it++) {
      std::string s;
      int n = (int)(rng() % 60) + 2;
      for (int i = 0; i < n; i++) s += alpha[rng() % 10];
      if (it % 50 == 0) s = std::string(3000 + it, 'a');
      std::vector<uint32_t> a, b, c;
      if (s.size() <= 256) v.EncodeChunkForTest(s.data(), s.size(), 0, &a);
      v.EncodeChunkForTest(s.data(), s.size(), 1, &b);
      v.EncodeChunkForTest(s.data(), s.size(), 2, &c);
      if (s.size() <= 256) CHECK(a == b);
      CHECK(b == c);
      std::string back;
      CHECK_OK(v.Decode(c.data(), c.size(), &back));
      CHECK(back == s);
    }
  }
}

TEST(encode_round_trips_random_bytes) {
  Vocab v = TrainedVocab(PatternKind::kO200k, 600);
  std::mt19937_64 rng(11);
  for (int it = 0; it < 200; it++) {
    std::string s((size_t)(rng() % 500), '\0');
    for (auto& c : s) c = (char)(rng() % 4 == 0 ? 'a' + rng() % 3 : rng());
    std::vector<uint32_t> ids;
    CHECK_OK(v.Encode(s, false, &ids));
    std::string back;
    CHECK_OK(v.Decode(ids.data(), ids.size(), &back));
    CHECK(back == s);
    for (uint32_t id : ids) CHECK(!v.is_special(id));
  }
}

TEST_MAIN()
