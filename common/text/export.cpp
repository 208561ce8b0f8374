// export.cpp: tokenizer.json, tokenizer_config.json and llama.cpp's tokenizer
// lists from a vocabulary (text/export.h).
#include "text/export.h"

#include <nlohmann/json.hpp>

#include <unordered_map>

#include "text/import.h"
#include "util/codec.h"

namespace lm {

using nlohmann::json;

namespace {

constexpr const char* kEot = "<|endoftext|>";

// The regex for tokenizers' Split. Its engine (Oniguruma) reads `{1,3}+` as a
// repeated group, not a possessive one, so the named patterns go out in their
// published, possessive-free spellings, which cut the same chunks.
const char* const kGpt2Published =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kCl100kPublished =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::string HfPattern(const VocabFile& f) {
  switch (f.pattern_kind) {
    case PatternKind::kGpt2:
      return kGpt2Published;
    case PatternKind::kCl100k:
      return kCl100kPublished;
    default:
      return f.pattern;
  }
}

json ByteLevel() {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", false},
          {"trim_offsets", false},
          {"use_regex", false}};
}

json PreTokenizer(const VocabFile& f) {
  if (f.pattern_kind == PatternKind::kNone) return ByteLevel();
  json split = {{"type", "Split"},
                {"pattern", {{"Regex", HfPattern(f)}}},
                {"behavior", "Isolated"},
                {"invert", false}};
  return {{"type", "Sequence"}, {"pretokenizers", json::array({split, ByteLevel()})}};
}

// <|endoftext|> before the text (single) and before each of a pair's texts.
json StartOfText(uint32_t eot) {
  auto special = [](int type_id) {
    return json{{"SpecialToken", {{"id", kEot}, {"type_id", type_id}}}};
  };
  auto seq = [](const char* id, int type_id) {
    return json{{"Sequence", {{"id", id}, {"type_id", type_id}}}};
  };
  return {{"type", "TemplateProcessing"},
          {"single", json::array({special(0), seq("A", 0)})},
          {"pair", json::array({special(0), seq("A", 0), special(1), seq("B", 1)})},
          {"special_tokens",
           {{kEot, {{"id", kEot}, {"ids", json::array({eot})}, {"tokens", json::array({kEot})}}}}}};
}

}  // namespace

void MergeList(const Vocab& v, std::vector<BpeMerge>* out, size_t* whole_only) {
  out->clear();
  size_t unmade = 0;
  for (uint32_t i = 0; i < v.size(); i++) {
    if (v.is_special(i) || v.is_unused(i) || v.token_bytes(i).size() < 2) continue;
    BpeMerge m{0, 0, i};
    if (v.LastMerge(i, &m.left, &m.right))
      out->push_back(m);
    else
      unmade++;
  }
  if (whole_only) *whole_only = unmade;
}

Status ByteLevelTexts(const Vocab& v, std::vector<std::string>* texts) {
  texts->assign(v.size(), std::string());
  std::unordered_map<std::string, uint32_t> ordinary;
  for (uint32_t i = 0; i < v.size(); i++) {
    if (v.is_special(i) || v.is_unused(i)) continue;
    for (unsigned char c : v.token_bytes(i)) (*texts)[i] += Gpt2ByteChar(c);
    ordinary.emplace((*texts)[i], i);
  }
  for (uint32_t i = 0; i < v.size(); i++) {
    if (!v.is_special(i)) continue;
    const std::string& text = v.token_bytes(i);
    if (!ValidUtf8(text.data(), text.size()))
      return Status::Invalid("special token " + std::to_string(i) +
                             " is not valid UTF-8, which tokenizer.json and GGUF cannot hold");
    auto same = ordinary.find(text);
    if (same != ordinary.end())
      return Status::Invalid("special token " + std::to_string(i) + " '" + text +
                             "' is spelled like token " + std::to_string(same->second) +
                             " of the byte-level vocabulary: tokenizers and llama.cpp would give "
                             "it that id");
    (*texts)[i] = text;
  }
  return Status::OK();
}

Status ExportHf(const Vocab& v, const HfExportOptions& opt, std::string* out) {
  const VocabFile& f = v.file();
  std::vector<std::string> texts;
  LM_RETURN_IF_ERROR(ByteLevelTexts(v, &texts));
  if (!ValidUtf8(f.pattern.data(), f.pattern.size()))
    return Status::Invalid("the pattern is not valid UTF-8, which tokenizer.json cannot hold");
  // tokenizers ignores an added token's "id" when it reads the file: it takes
  // the model's id for that text, else the next id after the model's vocabulary
  // (so an imported vocabulary's unused ids, e.g. cl100k's 100256, would shift
  // every special). Each special therefore goes into the model's vocabulary
  // too, under its own text.
  json vocab = json::object(), added = json::array();
  for (uint32_t i = 0; i < v.size(); i++) {
    if (v.is_unused(i)) continue;
    vocab[texts[i]] = i;
    if (!v.is_special(i)) continue;
    added.push_back({{"id", i},
                     {"content", texts[i]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  std::vector<BpeMerge> merges;
  MergeList(v, &merges);
  json jm = json::array();
  for (const BpeMerge& m : merges) jm.push_back(texts[m.left] + " " + texts[m.right]);
  json j = {{"version", "1.0"},
            {"truncation", nullptr},
            {"padding", nullptr},
            {"added_tokens", added},
            {"normalizer", nullptr},
            {"pre_tokenizer", PreTokenizer(f)},
            {"post_processor", opt.start_of_text ? StartOfText(v.eot_id()) : json(nullptr)},
            {"decoder", ByteLevel()},
            {"model",
             {{"type", "BPE"},
              {"dropout", nullptr},
              {"unk_token", nullptr},
              {"continuing_subword_prefix", nullptr},
              {"end_of_word_suffix", nullptr},
              {"fuse_unk", false},
              {"byte_fallback", false},
              {"ignore_merges", true}}}};
  // Moved in, not copied: cl100k's vocabulary is 100,000 members.
  j["model"]["vocab"] = std::move(vocab);
  j["model"]["merges"] = std::move(jm);
  *out = j.dump(1) + "\n";
  return Status::OK();
}

Status HfTokenizerFiles(const Vocab& v, int context,
                        std::vector<std::pair<std::string, std::string>>* files) {
  std::string tokenizer;
  HfExportOptions opt;
  opt.start_of_text = true;
  LM_RETURN_IF_ERROR(ExportHf(v, opt, &tokenizer));
  // PreTrainedTokenizerFast takes tokenizer.json as it is; without a class,
  // transformers picks the Llama tokenizer of config.json's model_type, which
  // adds <s>, </s> and <unk> past the vocabulary. Decoding keeps spaces as
  // the tokens spell them (the clean-up would drop the one before "'s").
  json config = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                 {"bos_token", kEot},
                 {"eos_token", kEot},
                 {"model_max_length", context},
                 {"clean_up_tokenization_spaces", false}};
  files->push_back({"tokenizer.json", tokenizer});
  files->push_back({"tokenizer_config.json", config.dump(2) + "\n"});
  return Status::OK();
}

Status LlamaCppPretokenizer(const Vocab& v, std::string* name) {
  PatternKind kind = v.pattern_kind();
  if (kind == PatternKind::kRegex) {
    // A custom regex that spells a named pattern cuts the same chunks.
    for (PatternKind k : {PatternKind::kGpt2, PatternKind::kCl100k, PatternKind::kO200k})
      if (v.pattern() == PatternRegex(k)) kind = k;
    if (v.pattern() == kGpt2Published) kind = PatternKind::kGpt2;
    if (v.pattern() == kCl100kPublished) kind = PatternKind::kCl100k;
  }
  switch (kind) {
    case PatternKind::kGpt2:
      *name = "gpt-2";
      return Status::OK();
    case PatternKind::kCl100k:
      *name = "llama-bpe";
      return Status::OK();
    case PatternKind::kO200k:
      *name = "gpt-4o";
      return Status::OK();
    case PatternKind::kNone:
      return Status::Invalid(
          "the vocabulary has no pre-tokenizer pattern (none), and llama.cpp has no BPE "
          "pre-tokenizer that leaves text uncut: it would encode text differently");
    default:
      return Status::Invalid("the vocabulary's pre-tokenizer is a custom regex ('" + v.pattern() +
                             "'), and llama.cpp has no pre-tokenizer known to cut text the same "
                             "way (it has twins for gpt2, cl100k and o200k)");
  }
}

}  // namespace lm
