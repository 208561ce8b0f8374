// vocab.h (format): the tok.bpe vocabulary file, reader and writer
// (spec: docs/formats/vocab.md). The encoder that uses it is common/text/vocab.h.
//
// A file is a 32-byte header, a body (pattern, then one entry per id in id
// order), and an XXH3-64 of everything before it. That checksum is the
// vocabulary's identity (Vocab::id, the token stream header's vocab identity).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace lm {

constexpr char kVocabMagic[4] = {'L', 'M', 'B', 'P'};
constexpr uint16_t kVocabVersion = 1;
constexpr size_t kVocabHeaderSize = 32;
constexpr uint32_t kVocabMaxTokens = 1u << 24;      // ids, at most
constexpr uint32_t kVocabMaxTokenBytes = 1u << 16;  // bytes in one token, at most
constexpr uint32_t kVocabMaxPatternBytes = 1u << 16;
constexpr uint64_t kVocabMaxTotalBytes = 1u << 26;  // all tokens' bytes together, at most

// How text is cut into chunks before BPE.
enum class PatternKind : uint8_t {
  kNone = 0,    // no cutting: a document is one chunk
  kGpt2 = 1,    // GPT-2 / r50k / p50k
  kCl100k = 2,  // cl100k_base
  kO200k = 3,   // o200k_base
  kRegex = 4,   // a custom regular expression (PCRE2 syntax)
};

enum class TokenKind : uint8_t {
  kUnused = 0,   // an id no text ever encodes to (a gap in an imported vocabulary)
  kByte = 1,     // one byte
  kMerge = 2,    // the concatenation of two earlier non-special tokens
  kSpecial = 3,  // a special token (<|endoftext|>): never produced from plain text
  kLiteral = 4,  // a byte string that is no concatenation of two earlier tokens
};

struct VocabToken {
  TokenKind kind = TokenKind::kUnused;
  uint32_t left = 0, right = 0;  // kMerge: the two parts
  std::string bytes;             // every kind but kUnused: the bytes (filled by the reader)
};

struct VocabFile {
  PatternKind pattern_kind = PatternKind::kGpt2;
  std::string pattern;  // the regular expression (for the named kinds too: their canonical text)
  uint32_t eot_id = 0;  // <|endoftext|>, a kSpecial entry
  std::vector<VocabToken> tokens;  // index = id
};

// The canonical regular expression of a named pattern ("" for kNone/kRegex).
const char* PatternRegex(PatternKind kind);
// "gpt2", "cl100k", "o200k", "none", "regex".
const char* PatternName(PatternKind kind);
// Parses a --pattern value: a name, or anything else as a custom regex.
void ParsePatternArg(const std::string& arg, PatternKind* kind, std::string* regex);

// Serializes (checks the invariants first: Invalid if broken). *id gets the identity.
Status EncodeVocabFile(const VocabFile& v, std::string* out, uint64_t* id);
// Parses and verifies (magic, version, sizes, checksum, every invariant of the
// spec). `name` prefixes messages. Fills VocabToken::bytes for every entry.
Status DecodeVocabFile(const uint8_t* p, size_t n, const std::string& name, VocabFile* out,
                       uint64_t* id);
Status ReadVocabFile(const std::string& path, VocabFile* out, uint64_t* id);
// Written atomically: an existing file is replaced only on success.
Status WriteVocabFile(const std::string& path, const VocabFile& v, uint64_t* id);

}  // namespace lm
