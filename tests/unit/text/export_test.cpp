// export_test.cpp: the merge list that tokenizer.json and GGUF carry. A
// merge-list BPE (Hugging Face tokenizers', llama.cpp's) given MergeList's
// merges must encode exactly as tiktoken's rank-of-concatenation loop
// (Vocab::Encode), on vocabularies whose tokens have several cuts.
#include "text/export.h"

#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <unordered_map>

#include "../test.h"
#include "text/train.h"

using namespace lm;

namespace {

Vocab Make(VocabFile f) {
  std::string data;
  uint64_t id = 0;
  CHECK_OK(EncodeVocabFile(f, &data, &id));
  Vocab v;
  CHECK_OK(Vocab::FromFile(f, id, &v));
  return v;
}

VocabFile Bytes() {
  VocabFile f;
  f.pattern_kind = PatternKind::kNone;
  for (int b = 0; b < 256; b++) {
    VocabToken t;
    t.kind = TokenKind::kByte;
    t.bytes.assign(1, (char)b);
    f.tokens.push_back(t);
  }
  return f;
}

void Add(VocabFile* f, TokenKind kind, const std::string& bytes, uint32_t l = 0, uint32_t r = 0) {
  VocabToken t;
  t.kind = kind;
  t.bytes = bytes;
  t.left = l;
  t.right = r;
  f->tokens.push_back(t);
}

// The merge-list BPE of tokenizers (ignore_merges) and llama.cpp: a chunk
// that is a token is that token; otherwise join the listed pair of lowest
// rank, leftmost first, until none is adjacent.
std::vector<uint32_t> ListBpe(const Vocab& v, const std::vector<BpeMerge>& merges,
                              const std::string& s) {
  uint32_t whole = v.Lookup(s.data(), s.size());
  if (whole != Vocab::kNoId) return {whole};
  std::map<std::pair<uint32_t, uint32_t>, uint32_t> rank;
  for (const BpeMerge& m : merges) rank[{m.left, m.right}] = m.id;
  std::vector<uint32_t> t;
  for (char c : s) t.push_back(v.Lookup(&c, 1));
  while (true) {
    size_t best = t.size();
    uint32_t best_rank = Vocab::kNoId;
    for (size_t i = 0; i + 1 < t.size(); i++) {
      auto it = rank.find({t[i], t[i + 1]});
      if (it != rank.end() && it->second < best_rank) best_rank = it->second, best = i;
    }
    if (best == t.size()) return t;
    t[best] = best_rank;
    t.erase(t.begin() + best + 1);
  }
}

}  // namespace

// "abc" is recorded as ab + c, but "bc" has the lower id: the merge loop joins
// b and c first, so a + bc is the merge that makes it; "xyz" has no cut into
// two tokens, so no merge makes it.
TEST(last_merge_is_the_loops_not_the_recorded_one) {
  VocabFile f = Bytes();
  Add(&f, TokenKind::kMerge, "bc", 'b', 'c');     // 256
  Add(&f, TokenKind::kMerge, "ab", 'a', 'b');     // 257
  Add(&f, TokenKind::kMerge, "abc", 257, 'c');    // 258
  Add(&f, TokenKind::kLiteral, "xyz");            // 259
  Add(&f, TokenKind::kSpecial, "<|endoftext|>");  // 260
  f.eot_id = 260;
  Vocab v = Make(f);
  uint32_t a = 0, b = 0;
  CHECK(v.LastMerge(258, &a, &b));
  CHECK_EQ(a, (uint32_t)'a');
  CHECK_EQ(b, 256u);
  CHECK(!v.LastMerge(259, &a, &b));
  CHECK(!v.LastMerge(260, &a, &b));
  CHECK(!v.LastMerge('a', &a, &b));
  std::vector<BpeMerge> m;
  size_t whole_only = 0;
  MergeList(v, &m, &whole_only);
  CHECK_EQ(m.size(), 3u);
  CHECK_EQ(whole_only, 1u);
  // tokenizer.json: one "A B" string per merge, in rank order.
  std::string js;
  CHECK_OK(ExportHf(v, HfExportOptions(), &js));
  auto j = nlohmann::json::parse(js);
  CHECK_EQ(j["model"]["merges"].size(), 3u);
  CHECK_EQ(j["model"]["merges"][2].get<std::string>(), std::string("a bc"));
  CHECK(j["post_processor"].is_null());
  HfExportOptions bos;
  bos.start_of_text = true;
  CHECK_OK(ExportHf(v, bos, &js));
  j = nlohmann::json::parse(js);
  CHECK_EQ(j["post_processor"]["special_tokens"]["<|endoftext|>"]["ids"][0].get<int>(), 260);
}

// Trained vocabularies (lm-train's dedup of cuts makes tokens with several
// cuts) and random text: the merge list gives tiktoken's ids, every time.
TEST(merge_list_encodes_as_tiktoken) {
  std::mt19937 rng(5);
  for (int round = 0; round < 4; round++) {
    std::unordered_map<std::string, uint64_t> counts;
    for (int i = 0; i < 400; i++) {
      std::string w;
      int n = (int)(rng() % 12) + 1;
      for (int k = 0; k < n; k++) w.push_back("aabbcd e"[rng() % 8]);
      counts[w] += rng() % 50 + 1;
    }
    TrainOptions opt;
    opt.vocab_size = 256 + 120 + 1;
    opt.pattern_kind = PatternKind::kNone;
    VocabFile f;
    CHECK_OK(TrainBpe(counts, opt, &f));
    Vocab v = Make(f);
    std::vector<BpeMerge> merges;
    MergeList(v, &merges);
    int differ = 0;
    for (int i = 0; i < 3000; i++) {
      std::string s;
      int n = (int)(rng() % 40) + 1;
      for (int k = 0; k < n; k++) s.push_back("aabbcd ex"[rng() % 9]);
      std::vector<uint32_t> want;
      CHECK_OK(v.Encode(s, false, &want));
      differ += ListBpe(v, merges, s) != want;
    }
    CHECK_EQ(differ, 0);
  }
}

// Specials keep their text; one spelled like a byte-level token is refused.
TEST(byte_level_texts) {
  VocabFile f = Bytes();
  Add(&f, TokenKind::kMerge, " x", ' ', 'x');
  Add(&f, TokenKind::kSpecial, "<|endoftext|>");
  f.eot_id = 257;
  Vocab v = Make(f);
  std::vector<std::string> t;
  CHECK_OK(ByteLevelTexts(v, &t));
  CHECK_EQ(t[256], std::string("\xc4\xa0x"));
  CHECK_EQ(t[257], std::string("<|endoftext|>"));
  Add(&f, TokenKind::kSpecial, "\xc4\xa0x");  // spells token 256's text
  CHECK_EQ(ByteLevelTexts(Make(f), &t).code(), Status::kInvalid);
}

TEST(llama_cpp_pretokenizer_names) {
  VocabFile f = Bytes();
  Add(&f, TokenKind::kSpecial, "<|endoftext|>");
  f.eot_id = 256;
  std::string name;
  const std::pair<PatternKind, const char*> named[] = {{PatternKind::kGpt2, "gpt-2"},
                                                       {PatternKind::kCl100k, "llama-bpe"},
                                                       {PatternKind::kO200k, "gpt-4o"}};
  for (const auto& k : named) {
    f.pattern_kind = k.first;
    f.pattern = PatternRegex(k.first);
    CHECK_OK(LlamaCppPretokenizer(Make(f), &name));
    CHECK_EQ(name, std::string(k.second));
    f.pattern_kind = PatternKind::kRegex;  // the same text as a custom regex
    CHECK_OK(LlamaCppPretokenizer(Make(f), &name));
    CHECK_EQ(name, std::string(k.second));
  }
  f.pattern = R"(\p{L}+|\s+|.)";
  Status s = LlamaCppPretokenizer(Make(f), &name);
  CHECK_EQ(s.code(), Status::kInvalid);
  CHECK(s.message().find("custom regex") != std::string::npos);
  f.pattern_kind = PatternKind::kNone;
  f.pattern.clear();
  CHECK_EQ(LlamaCppPretokenizer(Make(f), &name).code(), Status::kInvalid);
}

TEST_MAIN()
