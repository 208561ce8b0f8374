// tokens.h: the token stream, what `lm-tokenize encode` writes and `lm-pack`
// reads (spec: docs/formats/tokens.md).
//
// A stream is a header, then chunks of tokens each with its own checksum, then
// an end frame carrying the stream's token count. Streams of the same
// vocabulary may be concatenated (cat a.tok b.tok): the reader accepts a new
// header after an end frame. A stream without its end frame is truncated.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "util/status.h"

namespace lm {

constexpr char kTokenStreamMagic[4] = {'L', 'M', 'T', 'S'};
constexpr uint16_t kTokenStreamVersion = 1;
constexpr size_t kTokenStreamHeaderSize = 32;
constexpr uint32_t kTokenStreamMaxChunk = 1u << 20;  // tokens per chunk, at most
constexpr uint32_t kNoToken = 0xffffffffu;
// An end-of-text id for messages: the number, or "none" for kNoToken.
std::string EotName(uint32_t id);

struct TokenStreamInfo {
  uint32_t vocab_size = 0;
  uint32_t eot_id = kNoToken;  // <|endoftext|>, the document separator
  uint64_t vocab_id = 0;       // the vocabulary's identity hash
  // 2 when vocab_size <= 65536, else 4.
  int width() const { return vocab_size <= 65536 ? 2 : 4; }
};

// Writes one stream to a FILE* (stdout or a file the caller owns).
class TokenStreamWriter {
 public:
  TokenStreamWriter(FILE* out, std::string name) : out_(out), name_(std::move(name)) {}
  Status Begin(const TokenStreamInfo& info);
  // Buffers tokens; writes full chunks. Every id must be < vocab_size.
  Status Write(const uint32_t* ids, size_t n);
  // Flushes the partial chunk (a chunk boundary; call after each document to let
  // a reader see it promptly, or never: chunks are not document boundaries).
  Status Flush();
  // Writes the end frame and flushes the FILE*.
  Status End();
  uint64_t tokens_written() const { return total_; }

 private:
  Status WriteChunk(const uint32_t* ids, size_t n);
  FILE* out_;
  std::string name_;
  TokenStreamInfo info_;
  std::vector<uint32_t> pending_;
  std::string buf_;
  uint64_t total_ = 0;
  bool begun_ = false;
};

// Converts n tokens of `width` bytes (little-endian), as streams and shards
// store them, to uint32.
void DecodeTokens(const uint8_t* raw, int width, size_t n, uint32_t* out);

// Reads one or more concatenated streams of the same vocabulary.
class TokenStreamReader {
 public:
  TokenStreamReader(FILE* in, std::string name) : in_(in), name_(std::move(name)) {}
  // Reads the first header. An empty input is an error ("empty input").
  Status Begin();
  const TokenStreamInfo& info() const { return info_; }
  // Replaces *out with the next chunk's tokens. Sets *done at the end
  // of the input, after a complete end frame. Concatenated streams must carry
  // the same vocabulary identity, else Invalid.
  Status Next(std::vector<uint32_t>* out, bool* done);
  uint64_t tokens_read() const { return total_; }

 private:
  Status ReadHeader(TokenStreamInfo* info, bool* eof);
  Status ReadExact(void* p, size_t n, const char* what);
  FILE* in_;
  std::string name_;
  TokenStreamInfo info_;
  uint64_t total_ = 0, stream_total_ = 0, offset_ = 0;
  std::string buf_;
};

// Reads all of a token stream (or concatenated streams) held in memory:
// *info gets the header, the ids are appended to *ids. Errors name `name`.
Status ReadTokenStream(const std::string& name, const std::string& bytes, TokenStreamInfo* info,
                       std::vector<uint32_t>* ids);

// Encodes/decodes the 32-byte header (exposed for tests and other tools).
std::string EncodeTokenStreamHeader(const TokenStreamInfo& info);
Status DecodeTokenStreamHeader(const uint8_t* p, TokenStreamInfo* info);

}  // namespace lm
