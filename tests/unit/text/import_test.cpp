// import_test.cpp: GPT-2's byte alphabet, importing tiny GPT-2 and tiktoken
// vocabularies written here, --special parsing, and export --hf's JSON shape.
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../test.h"
#include "text/export.h"
#include "text/import.h"
#include "util/file.h"

using namespace lm;

namespace {

std::string TempDir() {
  char t[] = "/tmp/lm-import-test-XXXXXX";
  return mkdtemp(t) ? std::string(t) : std::string("/tmp");
}

}  // namespace

TEST(gpt2_byte_alphabet_known_answers) {
  CHECK_EQ(Gpt2ByteChar('a'), std::string("a"));
  CHECK_EQ(Gpt2ByteChar('!'), std::string("!"));
  CHECK_EQ(Gpt2ByteChar(' '), std::string("\xc4\xa0"));   // U+0120 'Ġ'
  CHECK_EQ(Gpt2ByteChar('\n'), std::string("\xc4\x8a"));  // U+010A 'Ċ'
  CHECK_EQ(Gpt2ByteChar(0), std::string("\xc4\x80"));     // U+0100 'Ā'
  CHECK_EQ(Gpt2ByteChar(0xAD), std::string("\xc5\x83"));  // U+0143 'Ń'
  CHECK_EQ(Gpt2ByteChar(0xFF), std::string("\xc3\xbf"));  // U+00FF, printable
}

TEST(special_args) {
  SpecialArg a;
  CHECK_OK(ParseSpecialArg("<|endoftext|>=100257", &a));
  CHECK_EQ(a.text, std::string("<|endoftext|>"));
  CHECK_EQ(a.id, 100257u);
  CHECK_OK(ParseSpecialArg("<|pad|>", &a));
  CHECK_EQ(a.id, Vocab::kNoId);
  CHECK_OK(ParseSpecialArg("a=b", &a));  // not a number: all of it is the token
  CHECK_EQ(a.text, std::string("a=b"));
  CHECK(!ParseSpecialArg("", &a).ok());
  // Something that starts like an id after the last '=' must be one.
  for (const char* bad : {"<|endoftext|>=4294967296", "<|endoftext|>=4294967295", "=-1",
                          "<|pad|>=12x", "<|endoftext|>= 257", "<|x|>=+3", "=5"})
    CHECK(ParseSpecialArg(bad, &a).code() == Status::kUsage);
  // Past the largest id a vocabulary holds (2^24 - 1), or an id left out.
  for (const char* bad : {"<|x|>=4294967294", "<|x|>=16777216", "<|endoftext|>="})
    CHECK(ParseSpecialArg(bad, &a).code() == Status::kUsage);
  CHECK_OK(ParseSpecialArg("<|x|>=16777215", &a));
  CHECK_EQ(a.id, 16777215u);
}

TEST(import_tiny_gpt2) {
  std::string dir = TempDir();
  // ids in GPT-2's order: the byte alphabet in byte order, then "Ġt", then eot.
  nlohmann::json enc = nlohmann::json::object();
  for (int b = 0; b < 256; b++) enc[Gpt2ByteChar((uint8_t)b)] = b;
  enc["\xc4\xa0t"] = 256;
  enc["<|endoftext|>"] = 257;
  CHECK_OK(WriteFileAtomic(dir + "/encoder.json", enc.dump()));
  CHECK_OK(WriteFileAtomic(dir + "/vocab.bpe", "#version: 0.2\n\xc4\xa0 t\n"));
  VocabFile f;
  CHECK_OK(ImportGpt2(dir + "/encoder.json", dir + "/vocab.bpe", PatternKind::kGpt2, "", {}, &f));
  CHECK_EQ(f.tokens.size(), (size_t)258);
  CHECK_EQ(f.tokens[256].bytes, std::string(" t"));
  CHECK(f.tokens[256].kind == TokenKind::kMerge);
  CHECK_EQ(f.eot_id, 257u);
  // A merge naming a token encoder.json lacks is refused.
  CHECK_OK(WriteFileAtomic(dir + "/bad.bpe", "#version: 0.2\nx yz\n"));
  CHECK(!ImportGpt2(dir + "/encoder.json", dir + "/bad.bpe", PatternKind::kGpt2, "", {}, &f).ok());
  RemoveAll(dir);
}

TEST(import_tiktoken_errors_name_the_line) {
  std::string dir = TempDir();
  CHECK_OK(WriteFileAtomic(dir + "/a.tiktoken", "YQ== 0\n!!! 1\n"));
  VocabFile f;
  Status s = ImportTiktoken(dir + "/a.tiktoken", PatternKind::kGpt2, "", {}, &f);
  CHECK(!s.ok());
  CHECK(s.message().find("a.tiktoken:2") != std::string::npos);
  // Missing byte tokens: not a byte-level vocabulary.
  CHECK_OK(WriteFileAtomic(dir + "/b.tiktoken", "YQ== 0\nYg== 1\n"));
  VocabFile g;
  uint64_t id;
  std::string data;
  Status t = ImportTiktoken(dir + "/b.tiktoken", PatternKind::kGpt2, "", {}, &g);
  if (t.ok()) t = EncodeVocabFile(g, &data, &id);
  CHECK(!t.ok());
  RemoveAll(dir);
}

TEST(export_hf_shape) {
  VocabFile f;
  f.pattern_kind = PatternKind::kCl100k;
  f.pattern = PatternRegex(PatternKind::kCl100k);
  for (int b = 0; b < 256; b++) {
    VocabToken t;
    t.kind = TokenKind::kByte;
    t.bytes.assign(1, (char)b);
    f.tokens.push_back(t);
  }
  VocabToken m;
  m.kind = TokenKind::kMerge;
  m.left = ' ';
  m.right = 'x';
  m.bytes = " x";
  f.tokens.push_back(m);
  VocabToken e;
  e.kind = TokenKind::kSpecial;
  e.bytes = "<|endoftext|>";
  f.eot_id = 257;
  f.tokens.push_back(e);
  std::string data, js;
  uint64_t id;
  CHECK_OK(EncodeVocabFile(f, &data, &id));
  Vocab v;
  CHECK_OK(Vocab::FromFile(f, id, &v));
  CHECK_OK(ExportHf(v, HfExportOptions(), &js));
  auto j = nlohmann::json::parse(js);
  // 257 tokens, and <|endoftext|> at its own id (tokenizers takes a special's
  // id from the model's vocabulary, not from added_tokens).
  CHECK_EQ(j["model"]["vocab"].size(), (size_t)258);
  CHECK_EQ(j["model"]["vocab"]["<|endoftext|>"].get<int>(), 257);
  CHECK_EQ(j["model"]["vocab"]["\xc4\xa0x"].get<int>(), 256);
  CHECK_EQ(j["model"]["merges"].size(), (size_t)1);
  CHECK_EQ(j["added_tokens"][0]["id"].get<int>(), 257);
  // The possessive-free spelling of cl100k for tokenizers' regex engine.
  std::string re = j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"];
  CHECK(re.find("{1,3}+") == std::string::npos);
}

TEST_MAIN()
