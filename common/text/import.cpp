// import.cpp: tiktoken and GPT-2 vocabularies in (the way out: export.cpp).
#include "text/import.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <map>
#include <unordered_map>

#include "text/unicode.h"
#include "util/file.h"
#include "util/json.h"

namespace lm {

using nlohmann::json;

Status ParseSpecialArg(const std::string& s, SpecialArg* out) {
  size_t eq = s.rfind('=');
  out->id = Vocab::kNoId;
  out->text = s;
  const std::string quoted = "'" + s + "'";
  // What follows the last '=' is an id when it starts like a number; it must
  // then be one, rather than silently becoming part of the token's text.
  if (eq != std::string::npos && eq + 1 < s.size() && strchr("0123456789+- \t", s[eq + 1])) {
    const std::string tail = s.substr(eq + 1);
    if (tail.find_first_not_of("0123456789") != std::string::npos || tail.size() > 10 ||
        std::stoull(tail) >= Vocab::kNoId)
      return Status::Usage(quoted + ": bad id '" + tail +
                           "' (TOKEN=ID takes a decimal ID below 4294967295)");
    out->text = s.substr(0, eq);
    out->id = (uint32_t)std::stoull(tail);
  }
  if (out->text.empty()) return Status::Usage(quoted + ": empty special token");
  // A trailing '=' is an id left out, not part of the token.
  if (out->id == Vocab::kNoId && eq != std::string::npos && eq + 1 == s.size())
    return Status::Usage(quoted + ": no id after '=' (TOKEN=ID, or TOKEN alone)");
  if (out->id != Vocab::kNoId && out->id >= kVocabMaxTokens)
    return Status::Usage(quoted + ": id " + std::to_string(out->id) +
                         " is past the largest a vocabulary holds (" +
                         std::to_string(kVocabMaxTokens - 1) + ")");
  return Status::OK();
}

namespace {

int B64(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool DecodeBase64(const std::string& s, std::string* out) {
  out->clear();
  uint32_t acc = 0;
  int bits = 0;
  size_t i = 0;
  for (; i < s.size() && s[i] != '='; i++) {
    int v = B64(s[i]);
    if (v < 0) return false;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back((char)((acc >> bits) & 0xff));
    }
  }
  for (; i < s.size(); i++)
    if (s[i] != '=') return false;
  return true;
}

// A BPE table's ids are its ranks, dense but for a few removed tokens. A file
// whose ids are more than half unused is refused before its table is built:
// a few bytes could otherwise ask for millions of ids (and gigabytes).
constexpr const char* kSparse = "more unused ids than tokens (a BPE vocabulary's ids are dense)";

// Fills kinds from bytes: a single byte is kByte; otherwise kMerge with the
// first cut into two earlier tokens, else kLiteral. Then adds the specials.
Status Finish(std::vector<std::string>& bytes, std::vector<bool>& used, PatternKind kind,
              const std::string& regex, std::vector<SpecialArg> specials, const std::string& name,
              VocabFile* out) {
  const size_t n_used = (size_t)std::count(used.begin(), used.end(), true);
  if (bytes.size() > 2 * n_used)
    return Status::Invalid(name + ": " + std::to_string(n_used) + " tokens with ids up to " +
                           std::to_string(bytes.size() - 1) + ": " + kSparse);
  std::unordered_map<std::string, uint32_t> index;
  index.reserve(bytes.size() * 2);
  for (size_t i = 0; i < bytes.size(); i++)
    if (used[i] && !index.emplace(bytes[i], (uint32_t)i).second)
      return Status::Invalid(name + ": two ids for the same bytes (id " + std::to_string(i) + ")");
  // tiktoken's own special tokens for its encodings, when none are given and
  // the ranks are exactly that encoding's count.
  if (specials.empty()) {
    if (kind == PatternKind::kGpt2 && bytes.size() == 50256) {
      specials = {{"<|endoftext|>", 50256}};
    } else if (kind == PatternKind::kCl100k && bytes.size() == 100256) {
      specials = {{"<|endoftext|>", 100257},
                  {"<|fim_prefix|>", 100258},
                  {"<|fim_middle|>", 100259},
                  {"<|fim_suffix|>", 100260},
                  {"<|endofprompt|>", 100276}};
    } else if (kind == PatternKind::kO200k && bytes.size() == 199998) {
      specials = {{"<|endoftext|>", 199999}, {"<|endofprompt|>", 200018}};
    }
  }
  bool has_eot = false;
  for (auto& s : specials) has_eot |= s.text == "<|endoftext|>";
  if (!has_eot) specials.push_back({"<|endoftext|>", Vocab::kNoId});
  uint32_t next = (uint32_t)bytes.size();
  for (auto& s : specials)
    if (s.id != Vocab::kNoId) next = std::max(next, s.id + 1);
  VocabFile v;
  v.pattern_kind = kind;
  v.pattern = kind == PatternKind::kRegex ? regex : PatternRegex(kind);
  size_t total = next;
  for (auto& s : specials)
    if (s.id == Vocab::kNoId) total++;
  if (total > kVocabMaxTokens) return Status::Invalid(name + ": too many ids");
  v.tokens.resize(total);
  for (size_t i = 0; i < bytes.size(); i++) {
    if (!used[i]) continue;
    VocabToken& t = v.tokens[i];
    t.bytes = bytes[i];
    if (t.bytes.size() == 1) {
      t.kind = TokenKind::kByte;
      continue;
    }
    t.kind = TokenKind::kLiteral;
    for (size_t cut = 1; cut < t.bytes.size(); cut++) {
      auto a = index.find(t.bytes.substr(0, cut));
      if (a == index.end() || a->second >= i) continue;
      auto b = index.find(t.bytes.substr(cut));
      if (b == index.end() || b->second >= i) continue;
      t.kind = TokenKind::kMerge;
      t.left = a->second;
      t.right = b->second;
      break;
    }
  }
  for (auto& s : specials) {
    uint32_t id = s.id == Vocab::kNoId ? next++ : s.id;
    if (id < bytes.size() && used[id])
      return Status::Usage("special token " + s.text + ": id " + std::to_string(id) +
                           " is already a token of " + name);
    if (v.tokens[id].kind == TokenKind::kSpecial)
      return Status::Usage("two special tokens with id " + std::to_string(id));
    v.tokens[id].kind = TokenKind::kSpecial;
    v.tokens[id].bytes = s.text;
    if (s.text == "<|endoftext|>") v.eot_id = id;
  }
  *out = std::move(v);
  return Status::OK();
}

}  // namespace

Status ImportTiktoken(const std::string& path, PatternKind kind, const std::string& regex,
                      const std::vector<SpecialArg>& specials, VocabFile* out) {
  std::string data;
  LM_RETURN_IF_ERROR(ReadFile(path, &data));
  if (data.empty())
    return Status::Invalid(path + ": empty file (expected tiktoken's 'BASE64 RANK' lines)");
  std::vector<std::string> bytes;
  std::vector<bool> used;
  const size_t lines = (size_t)std::count(data.begin(), data.end(), '\n') + 1;
  size_t pos = 0, line = 0;
  while (pos < data.size()) {
    size_t nl = data.find('\n', pos);
    if (nl == std::string::npos) nl = data.size();
    std::string l = data.substr(pos, nl - pos);
    pos = nl + 1;
    line++;
    if (!l.empty() && l.back() == '\r') l.pop_back();
    if (l.empty()) continue;
    size_t sp = l.find(' ');
    std::string b;
    std::string where = path + ":" + std::to_string(line);
    if (sp == std::string::npos || !DecodeBase64(l.substr(0, sp), &b) || b.empty())
      return Status::Invalid(where + ": not a 'BASE64 RANK' line");
    std::string r = l.substr(sp + 1);
    if (r.empty() || r.size() > 9 || r.find_first_not_of("0123456789") != std::string::npos)
      return Status::Invalid(where + ": bad rank '" + r + "'");
    uint32_t rank = (uint32_t)std::stoul(r);
    if (rank >= kVocabMaxTokens) return Status::Invalid(where + ": rank too large");
    if (rank >= 2 * lines)
      return Status::Invalid(where + ": rank " + r + " in a file of " + std::to_string(lines) +
                             " lines: " + kSparse);
    if (rank >= bytes.size()) {
      bytes.resize(rank + 1);
      used.resize(rank + 1, false);
    }
    if (used[rank]) return Status::Invalid(where + ": rank " + r + " appears twice");
    bytes[rank] = b;
    used[rank] = true;
  }
  return Finish(bytes, used, kind, regex, specials, path, out);
}

const std::string& Gpt2ByteChar(uint8_t b) {
  static std::vector<std::string>* table = [] {
    auto* t = new std::vector<std::string>(256);
    int n = 0;
    for (int c = 0; c < 256; c++) {
      bool printable =
          (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF);
      uint32_t cp = printable ? (uint32_t)c : (uint32_t)(256 + n++);
      char buf[4];
      int len;
      unicode::Append(cp, buf, &len);
      (*t)[c].assign(buf, len);
    }
    return t;
  }();
  return (*table)[b];
}

namespace {
// GPT-2 printable string -> bytes; false when a character is not in the alphabet.
bool Gpt2Bytes(const std::string& s, const std::unordered_map<std::string, uint8_t>& inv,
               std::string* out) {
  out->clear();
  const uint8_t* p = (const uint8_t*)s.data();
  const uint8_t* e = p + s.size();
  while (p < e) {
    uint32_t cp;
    int n = unicode::Decode(p, e, &cp);
    if (!n) return false;
    auto it = inv.find(std::string((const char*)p, n));
    if (it == inv.end()) return false;
    out->push_back((char)it->second);
    p += n;
  }
  return true;
}
}  // namespace

Status ImportGpt2(const std::string& encoder_json, const std::string& vocab_bpe, PatternKind kind,
                  const std::string& regex, const std::vector<SpecialArg>& specials0,
                  VocabFile* out) {
  std::string ej, vb;
  LM_RETURN_IF_ERROR(ReadFile(encoder_json, &ej));
  LM_RETURN_IF_ERROR(ReadFile(vocab_bpe, &vb));
  if (ej.empty()) return Status::Invalid(encoder_json + ": empty file");
  if (vb.empty()) return Status::Invalid(vocab_bpe + ": empty file");
  json enc;
  Status parsed = ParseJsonText(ej, &enc);
  if (!parsed.ok()) return Status::Invalid(encoder_json + ": " + parsed.message());
  if (!enc.is_object()) return Status::Invalid(encoder_json + ": not a JSON object of token -> id");
  std::unordered_map<std::string, uint8_t> inv;
  for (int b = 0; b < 256; b++) inv[Gpt2ByteChar((uint8_t)b)] = (uint8_t)b;
  std::vector<std::string> bytes;
  std::vector<bool> used;
  std::vector<SpecialArg> specials = specials0;
  for (auto it = enc.begin(); it != enc.end(); ++it) {
    if (!it.value().is_number_unsigned() || it.value().get<uint64_t>() >= kVocabMaxTokens)
      return Status::Invalid(encoder_json + ": token '" + it.key() + "': bad id");
    uint32_t id = (uint32_t)it.value().get<uint64_t>();
    if (id >= 2 * enc.size())
      return Status::Invalid(encoder_json + ": id " + std::to_string(id) + " among " +
                             std::to_string(enc.size()) + " tokens: " + kSparse);
    std::string b;
    bool is_special = it.key().size() > 4 && it.key().compare(0, 2, "<|") == 0 &&
                      it.key().compare(it.key().size() - 2, 2, "|>") == 0;
    if (is_special) {
      bool listed = false;
      for (auto& s : specials) listed |= s.text == it.key();
      if (!listed) specials.push_back({it.key(), id});
      continue;
    }
    if (!Gpt2Bytes(it.key(), inv, &b) || b.empty())
      return Status::Invalid(encoder_json + ": token '" + it.key() +
                             "' is not in GPT-2's byte alphabet");
    if (id >= bytes.size()) {
      bytes.resize(id + 1);
      used.resize(id + 1, false);
    }
    if (used[id])
      return Status::Invalid(encoder_json + ": id " + std::to_string(id) + " appears twice");
    bytes[id] = b;
    used[id] = true;
  }
  // vocab.bpe must agree: every merge's result is a token of a higher id.
  std::unordered_map<std::string, uint32_t> index;
  for (size_t i = 0; i < bytes.size(); i++)
    if (used[i]) index[bytes[i]] = (uint32_t)i;
  size_t pos = 0, line = 0;
  while (pos < vb.size()) {
    size_t nl = vb.find('\n', pos);
    if (nl == std::string::npos) nl = vb.size();
    std::string l = vb.substr(pos, nl - pos);
    pos = nl + 1;
    line++;
    if (l.empty() || l.compare(0, 8, "#version") == 0) continue;
    size_t sp = l.find(' ');
    std::string a, b;
    std::string where = vocab_bpe + ":" + std::to_string(line);
    if (sp == std::string::npos || !Gpt2Bytes(l.substr(0, sp), inv, &a) ||
        !Gpt2Bytes(l.substr(sp + 1), inv, &b))
      return Status::Invalid(where + ": not a merge line 'A B'");
    auto ia = index.find(a), ib = index.find(b), ic = index.find(a + b);
    if (ia == index.end() || ib == index.end() || ic == index.end())
      return Status::Invalid(where + ": merge of tokens missing from " + encoder_json);
  }
  return Finish(bytes, used, kind, regex, specials, encoder_json, out);
}

}  // namespace lm
