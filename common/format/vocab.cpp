// vocab.cpp (format): tok.bpe reader and writer (docs/formats/vocab.md).
#include "format/vocab.h"

#include <cstring>
#include <unordered_set>

#include "util/codec.h"
#include "util/file.h"
#include "util/hash.h"

namespace lm {

// tiktoken's current spellings (tiktoken_ext/openai_public.py): the possessive
// forms are equivalent to the published patterns and are what PCRE2 runs.
const char* PatternRegex(PatternKind kind) {
  switch (kind) {
    case PatternKind::kGpt2:
      return R"('(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s)";
    case PatternKind::kCl100k:
      return R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s)";
    case PatternKind::kO200k:
      return R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
             R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
             R"(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    default:
      return "";
  }
}

const char* PatternName(PatternKind kind) {
  switch (kind) {
    case PatternKind::kNone:
      return "none";
    case PatternKind::kGpt2:
      return "gpt2";
    case PatternKind::kCl100k:
      return "cl100k";
    case PatternKind::kO200k:
      return "o200k";
    default:
      return "regex";
  }
}

void ParsePatternArg(const std::string& arg, PatternKind* kind, std::string* regex) {
  if (arg == "gpt2" || arg == "r50k")
    *kind = PatternKind::kGpt2;
  else if (arg == "cl100k")
    *kind = PatternKind::kCl100k;
  else if (arg == "o200k")
    *kind = PatternKind::kO200k;
  else if (arg == "none")
    *kind = PatternKind::kNone;
  else {
    *kind = PatternKind::kRegex;
    *regex = arg;
    return;
  }
  *regex = PatternRegex(*kind);
}

namespace {

bool IsMergeable(TokenKind k) {
  return k == TokenKind::kByte || k == TokenKind::kMerge || k == TokenKind::kLiteral;
}

// Checks every invariant of the spec on a table whose bytes are filled.
Status CheckTable(const VocabFile& v, const std::string& name) {
  size_t n = v.tokens.size();
  if (n < 257 || n > kVocabMaxTokens)
    return Status::Invalid(name + ": vocabulary of " + std::to_string(n) +
                           " ids (expected 257 to " + std::to_string(kVocabMaxTokens) +
                           ": 256 bytes and <|endoftext|> at least)");
  if ((uint8_t)v.pattern_kind > (uint8_t)PatternKind::kRegex)
    return Status::Invalid(name + ": unknown pattern kind " + std::to_string((int)v.pattern_kind));
  if (v.pattern_kind == PatternKind::kRegex && v.pattern.empty())
    return Status::Invalid(name + ": empty custom pattern");
  if (v.pattern.size() > kVocabMaxPatternBytes) return Status::Invalid(name + ": pattern too long");
  if (!ValidUtf8(v.pattern.data(), v.pattern.size()))
    return Status::Invalid(name + ": the pattern is not valid UTF-8");
  bool seen_byte[256] = {false};
  std::unordered_set<std::string> plain, special;
  uint64_t total = 0;
  plain.reserve(n * 2);
  for (size_t id = 0; id < n; id++) {
    const VocabToken& t = v.tokens[id];
    std::string where = name + ": id " + std::to_string(id);
    switch (t.kind) {
      case TokenKind::kUnused:
        break;
      case TokenKind::kByte:
        if (t.bytes.size() != 1)
          return Status::Invalid(where + ": byte token of length " +
                                 std::to_string(t.bytes.size()));
        if (seen_byte[(uint8_t)t.bytes[0]])
          return Status::Invalid(where + ": byte " + std::to_string((uint8_t)t.bytes[0]) +
                                 " appears twice");
        seen_byte[(uint8_t)t.bytes[0]] = true;
        break;
      case TokenKind::kMerge:
        if (t.left >= id || t.right >= id)
          return Status::Invalid(where + ": merge of a later id (" + std::to_string(t.left) + ", " +
                                 std::to_string(t.right) + ")");
        if (!IsMergeable(v.tokens[t.left].kind) || !IsMergeable(v.tokens[t.right].kind))
          return Status::Invalid(where + ": merge of a special or unused id");
        break;
      case TokenKind::kSpecial:
        if (t.bytes.empty()) return Status::Invalid(where + ": empty special token");
        if (!special.insert(t.bytes).second)
          return Status::Invalid(where + ": special token '" + t.bytes + "' appears twice");
        break;
      case TokenKind::kLiteral:
        if (t.bytes.size() < 2)
          return Status::Invalid(where + ": literal token shorter than 2 bytes");
        break;
      default:
        return Status::Invalid(where + ": unknown entry kind " + std::to_string((int)t.kind));
    }
    if (t.bytes.size() > kVocabMaxTokenBytes)
      return Status::Invalid(where + ": token longer than " + std::to_string(kVocabMaxTokenBytes) +
                             " bytes");
    if (IsMergeable(t.kind) && !plain.insert(t.bytes).second)
      return Status::Invalid(where + ": the same bytes as an earlier token");
    total += t.bytes.size();
  }
  if (total > kVocabMaxTotalBytes)
    return Status::Invalid(name + ": the tokens expand to more than 64 MiB");
  for (int b = 0; b < 256; b++)
    if (!seen_byte[b]) return Status::Invalid(name + ": no token for byte " + std::to_string(b));
  if (v.eot_id >= n || v.tokens[v.eot_id].kind != TokenKind::kSpecial ||
      v.tokens[v.eot_id].bytes != "<|endoftext|>")
    return Status::Invalid(name + ": end-of-text id " + std::to_string(v.eot_id) +
                           " is not the special token <|endoftext|>");
  return Status::OK();
}

}  // namespace

Status EncodeVocabFile(const VocabFile& v0, std::string* out, uint64_t* id) {
  // Fill merge bytes so that the checks see them (the caller may leave them empty).
  VocabFile v = v0;
  for (size_t i = 0; i < v.tokens.size(); i++) {
    VocabToken& t = v.tokens[i];
    if (t.kind == TokenKind::kMerge) {
      if (t.left >= i || t.right >= i)
        return Status::Invalid("vocabulary: merge of a later id at id " + std::to_string(i));
      t.bytes = v.tokens[t.left].bytes + v.tokens[t.right].bytes;
    }
  }
  LM_RETURN_IF_ERROR(CheckTable(v, "vocabulary"));
  std::string body;
  body.push_back((char)v.pattern_kind);
  PutVarint(&body, v.pattern.size());
  body += v.pattern;
  for (const VocabToken& t : v.tokens) {
    body.push_back((char)t.kind);
    switch (t.kind) {
      case TokenKind::kByte:
        body.push_back(t.bytes[0]);
        break;
      case TokenKind::kMerge:
        PutVarint(&body, t.left);
        PutVarint(&body, t.right);
        break;
      case TokenKind::kSpecial:
      case TokenKind::kLiteral:
        PutVarint(&body, t.bytes.size());
        body += t.bytes;
        break;
      default:
        break;
    }
  }
  std::string h(kVocabMagic, 4);
  PutU16(&h, kVocabVersion);
  PutU16(&h, 0);  // flags
  PutU32(&h, (uint32_t)v.tokens.size());
  PutU32(&h, v.eot_id);
  PutU64(&h, body.size());
  PutU64(&h, 0);  // reserved
  *out = h + body;
  uint64_t sum = Hash64(out->data(), out->size());
  PutU64(out, sum);
  *id = sum;
  return Status::OK();
}

Status DecodeVocabFile(const uint8_t* p, size_t n, const std::string& name, VocabFile* out,
                       uint64_t* id) {
  if (n == 0)
    return Status::Invalid(name +
                           ": empty file (expected a vocabulary from lm-tokenize train or import)");
  if (n < 4 || std::memcmp(p, kVocabMagic, 4) != 0)
    return Status::Invalid(
        name +
        ": not a vocabulary file (bad magic; expected 'LMBP' from lm-tokenize train or import)");
  if (n < kVocabHeaderSize + 8)
    return Status::Corruption(name + ": truncated vocabulary file (" + std::to_string(n) +
                              " bytes)");
  uint16_t version = LoadU16(p + 4);
  if (version != kVocabVersion)
    return Status::Invalid(name + ": unsupported vocabulary version " + std::to_string(version) +
                           " (this build reads version 1)");
  uint64_t body_size = LoadU64(p + 16);
  if (body_size > n - kVocabHeaderSize - 8)
    return Status::Corruption(name + ": truncated vocabulary file (" + std::to_string(n) +
                              " bytes; its header promises " +
                              std::to_string(kVocabHeaderSize + 8) + " + " +
                              std::to_string(body_size) + ")");
  if (kVocabHeaderSize + body_size + 8 != n)
    return Status::Corruption(name + ": " + std::to_string(n - kVocabHeaderSize - 8 - body_size) +
                              " unexpected bytes after the vocabulary");
  uint64_t sum = LoadU64(p + n - 8);
  if (sum != Hash64(p, n - 8))
    return Status::Corruption(name + ": vocabulary checksum mismatch (file damaged)");
  if (LoadU16(p + 6) != 0 || LoadU64(p + 24) != 0)
    return Status::Invalid(name + ": reserved header fields are not zero");
  uint32_t count = LoadU32(p + 8);
  if (count < 257 || count > kVocabMaxTokens)
    return Status::Invalid(name + ": vocabulary of " + std::to_string(count) +
                           " ids (expected 257 to " + std::to_string(kVocabMaxTokens) + ")");
  // Every entry takes at least its kind byte: a count the body cannot hold
  // is refused before the table is allocated (a 40-byte file claiming 2^24
  // ids made the reader allocate 800 MB first; fuzz finding).
  if (count > body_size)
    return Status::Corruption(name + ": corrupt vocabulary body (" + std::to_string(body_size) +
                              " bytes cannot hold " + std::to_string(count) + " ids)");
  VocabFile v;
  v.eot_id = LoadU32(p + 12);
  ByteReader r(p + kVocabHeaderSize, body_size);
  const uint8_t* b;
  uint64_t len;
  std::string bad = name + ": corrupt vocabulary body";
  if (!r.Bytes(1, &b)) return Status::Corruption(bad);
  v.pattern_kind = (PatternKind)b[0];
  if (!r.Varint(&len) || len > kVocabMaxPatternBytes || !r.Bytes(len, &b))
    return Status::Corruption(bad + " (pattern)");
  v.pattern.assign((const char*)b, len);
  v.tokens.resize(count);
  uint64_t total_bytes = 0;
  for (uint32_t i = 0; i < count; i++) {
    VocabToken& t = v.tokens[i];
    std::string where = bad + " at id " + std::to_string(i);
    if (!r.Bytes(1, &b)) return Status::Corruption(where);
    t.kind = (TokenKind)b[0];
    switch (t.kind) {
      case TokenKind::kUnused:
        break;
      case TokenKind::kByte:
        if (!r.Bytes(1, &b)) return Status::Corruption(where);
        t.bytes.assign(1, (char)b[0]);
        break;
      case TokenKind::kMerge: {
        uint64_t a, c;
        if (!r.Varint(&a) || !r.Varint(&c)) return Status::Corruption(where);
        if (a >= i || c >= i)
          return Status::Invalid(name + ": id " + std::to_string(i) + ": merge of a later id");
        t.left = (uint32_t)a;
        t.right = (uint32_t)c;
        if (v.tokens[a].bytes.size() + v.tokens[c].bytes.size() > kVocabMaxTokenBytes)
          return Status::Invalid(name + ": id " + std::to_string(i) + ": token too long");
        if (total_bytes + v.tokens[a].bytes.size() + v.tokens[c].bytes.size() >
            kVocabMaxTotalBytes)  // checked before the bytes are built
          return Status::Invalid(name + ": id " + std::to_string(i) +
                                 ": the tokens expand to more than 64 MiB");
        t.bytes = v.tokens[a].bytes + v.tokens[c].bytes;
        break;
      }
      case TokenKind::kSpecial:
      case TokenKind::kLiteral:
        if (!r.Varint(&len) || len > kVocabMaxTokenBytes || !r.Bytes(len, &b))
          return Status::Corruption(where);
        t.bytes.assign((const char*)b, len);
        break;
      default:
        return Status::Invalid(name + ": id " + std::to_string(i) + ": unknown entry kind " +
                               std::to_string((int)t.kind));
    }
    total_bytes += t.bytes.size();
  }
  if (r.left() != 0)
    return Status::Corruption(bad + " (" + std::to_string(r.left()) + " trailing bytes)");
  LM_RETURN_IF_ERROR(CheckTable(v, name));
  *out = std::move(v);
  *id = sum;
  return Status::OK();
}

Status ReadVocabFile(const std::string& path, VocabFile* out, uint64_t* id) {
  std::string data;
  Status s = ReadFile(path, &data);
  if (!s.ok()) {
    if (!PathExists(path)) return Status::NotFound(path + ": vocabulary file not found");
    return s;
  }
  return DecodeVocabFile((const uint8_t*)data.data(), data.size(), path, out, id);
}

Status WriteVocabFile(const std::string& path, const VocabFile& v, uint64_t* id) {
  std::string data;
  LM_RETURN_IF_ERROR(EncodeVocabFile(v, &data, id));
  return WriteFileAtomic(path, data);
}

}  // namespace lm
