// tokens.cpp: token stream reader and writer (docs/formats/tokens.md).
#include "format/tokens.h"

#include <cstring>

#include "util/codec.h"
#include "util/hash.h"

namespace lm {

std::string EotName(uint32_t id) {
  return id == kNoToken ? "none" : std::to_string(id);
}

void DecodeTokens(const uint8_t* raw, int width, size_t n, uint32_t* out) {
  if (width == 2) {
    for (size_t i = 0; i < n; i++) out[i] = LoadU16(raw + 2 * i);
  } else {
    for (size_t i = 0; i < n; i++) out[i] = LoadU32(raw + 4 * i);
  }
}

std::string EncodeTokenStreamHeader(const TokenStreamInfo& info) {
  std::string h(kTokenStreamMagic, 4);
  PutU16(&h, kTokenStreamVersion);
  h.push_back((char)info.width());
  h.push_back(0);  // flags, reserved
  PutU32(&h, info.vocab_size);
  PutU32(&h, info.eot_id);
  PutU64(&h, info.vocab_id);
  PutU64(&h, Hash64(h.data(), h.size()));
  return h;
}

Status DecodeTokenStreamHeader(const uint8_t* p, TokenStreamInfo* info) {
  if (std::memcmp(p, kTokenStreamMagic, 4) != 0)
    return Status::Invalid(
        "not a token stream (bad magic; expected the output of lm-tokenize encode)");
  uint16_t version = LoadU16(p + 4);
  if (version != kTokenStreamVersion)
    return Status::Invalid("unsupported token stream version " + std::to_string(version) +
                           " (this build reads version 1)");
  if (LoadU64(p + 24) != Hash64(p, 24))
    return Status::Corruption("token stream header checksum mismatch");
  int width = p[6];
  if (p[7] != 0) return Status::Invalid("token stream header: reserved flags are not zero");
  info->vocab_size = LoadU32(p + 8);
  info->eot_id = LoadU32(p + 12);
  info->vocab_id = LoadU64(p + 16);
  if (info->vocab_size == 0) return Status::Invalid("token stream header: vocabulary size 0");
  if (width != info->width())
    return Status::Invalid("token stream header: token width " + std::to_string(width) +
                           " does not fit vocabulary size " + std::to_string(info->vocab_size));
  if (info->eot_id != kNoToken && info->eot_id >= info->vocab_size)
    return Status::Invalid("token stream header: end-of-text id outside the vocabulary");
  return Status::OK();
}

// ---------------------------------------------------------------------------
// Writer: header | chunk* | end. chunk = u32 n (1..2^20) | n tokens | u64 XXH3(tokens)
// end = u32 0 | u64 total tokens | u64 XXH3(those 12 bytes)

Status TokenStreamWriter::Begin(const TokenStreamInfo& info) {
  info_ = info;
  begun_ = true;
  pending_.reserve(1 << 16);
  std::string h = EncodeTokenStreamHeader(info);
  if (fwrite(h.data(), 1, h.size(), out_) != h.size())
    return Status::FromErrno(name_, "write failed");
  return Status::OK();
}

Status TokenStreamWriter::Write(const uint32_t* ids, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (ids[i] >= info_.vocab_size)
      return Status::Invalid("token id " + std::to_string(ids[i]) +
                             " outside the vocabulary (size " + std::to_string(info_.vocab_size) +
                             ")");
    pending_.push_back(ids[i]);
    if (pending_.size() == (1u << 16)) LM_RETURN_IF_ERROR(Flush());
  }
  return Status::OK();
}

Status TokenStreamWriter::Flush() {
  if (pending_.empty()) return Status::OK();
  Status s = WriteChunk(pending_.data(), pending_.size());
  pending_.clear();
  return s;
}

Status TokenStreamWriter::WriteChunk(const uint32_t* ids, size_t n) {
  buf_.clear();
  PutU32(&buf_, (uint32_t)n);
  size_t start = buf_.size();
  if (info_.width() == 2) {
    for (size_t i = 0; i < n; i++) PutU16(&buf_, (uint16_t)ids[i]);
  } else {
    for (size_t i = 0; i < n; i++) PutU32(&buf_, ids[i]);
  }
  PutU64(&buf_, Hash64(buf_.data() + start, buf_.size() - start));
  if (fwrite(buf_.data(), 1, buf_.size(), out_) != buf_.size())
    return Status::FromErrno(name_, "write failed");
  total_ += n;
  return Status::OK();
}

Status TokenStreamWriter::End() {
  LM_RETURN_IF_ERROR(Flush());
  std::string e;
  PutU32(&e, 0);
  PutU64(&e, total_);
  PutU64(&e, Hash64(e.data(), e.size()));
  if (fwrite(e.data(), 1, e.size(), out_) != e.size() || fflush(out_) != 0)
    return Status::FromErrno(name_, "write failed");
  return Status::OK();
}

// ---------------------------------------------------------------------------
// Reader

Status TokenStreamReader::ReadExact(void* p, size_t n, const char* what) {
  size_t got = fread(p, 1, n, in_);
  offset_ += got;
  if (got != n) {
    if (ferror(in_)) return Status::FromErrno(name_, "read failed");
    return Status::Corruption(name_ + ": truncated token stream (ends inside " + what +
                              " at byte " + std::to_string(offset_) + ")");
  }
  return Status::OK();
}

Status TokenStreamReader::ReadHeader(TokenStreamInfo* info, bool* eof) {
  uint8_t h[kTokenStreamHeaderSize];
  const uint64_t start = offset_;  // > 0: a complete stream ended here
  size_t got = fread(h, 1, sizeof h, in_);
  offset_ += got;
  *eof = false;
  if (got == 0 && !ferror(in_)) {
    *eof = true;
    return Status::OK();
  }
  if (got != sizeof h) {
    if (ferror(in_)) return Status::FromErrno(name_, "read failed");
    bool magic = got < 4 || std::memcmp(h, kTokenStreamMagic, 4) == 0;
    if (start > 0)
      return Status::Corruption(name_ + ": " + std::to_string(got) +
                                " trailing bytes after the end of the token stream at byte " +
                                std::to_string(start) +
                                (magic ? " (too few for another stream's 32-byte header)"
                                       : " (not another stream: bad magic)"));
    if (!magic)
      return Status::Invalid(
          name_ + ": not a token stream (bad magic; expected the output of lm-tokenize encode)");
    return Status::Corruption(name_ + ": truncated token stream (header is " + std::to_string(got) +
                              " of 32 bytes)");
  }
  if (start > 0 && std::memcmp(h, kTokenStreamMagic, 4) != 0)
    return Status::Corruption(name_ +
                              ": unexpected bytes after the end of the token stream at byte " +
                              std::to_string(start) + " (not another stream: bad magic)");
  return DecodeTokenStreamHeader(h, info).With(name_);
}

Status TokenStreamReader::Begin() {
  bool eof;
  LM_RETURN_IF_ERROR(ReadHeader(&info_, &eof));
  if (eof) return Status::Invalid(name_ + ": empty input (no token stream)");
  stream_total_ = 0;
  return Status::OK();
}

Status TokenStreamReader::Next(std::vector<uint32_t>* out, bool* done) {
  *done = false;
  for (;;) {
    uint8_t nb[4];
    LM_RETURN_IF_ERROR(ReadExact(nb, 4, "a chunk header"));
    uint32_t n = LoadU32(nb);
    if (n == 0) {
      uint8_t e[16];
      LM_RETURN_IF_ERROR(ReadExact(e, 16, "the end frame"));
      uint8_t frame[12];
      std::memcpy(frame, nb, 4);
      std::memcpy(frame + 4, e, 8);
      if (LoadU64(e + 8) != Hash64(frame, 12))
        return Status::Corruption(name_ + ": token stream end frame checksum mismatch at byte " +
                                  std::to_string(offset_));
      if (LoadU64(e) != stream_total_)
        return Status::Corruption(name_ + ": token stream says " + std::to_string(LoadU64(e)) +
                                  " tokens but holds " + std::to_string(stream_total_));
      TokenStreamInfo next;
      bool eof;
      LM_RETURN_IF_ERROR(ReadHeader(&next, &eof));
      if (eof) {
        out->clear();
        *done = true;
        return Status::OK();
      }
      // Each side says what differs: the identity, else the size, else the
      // end-of-text id (the same identity with another size is a forged or
      // damaged header, and both hashes alone would read the same).
      if (next.vocab_id != info_.vocab_id || next.vocab_size != info_.vocab_size)
        return Status::Invalid(
            name_ + ": concatenated token streams of different vocabularies (" +
            HashHex(info_.vocab_id) + " of size " + std::to_string(info_.vocab_size) + " then " +
            HashHex(next.vocab_id) + " of size " + std::to_string(next.vocab_size) + ", at byte " +
            std::to_string(offset_ - kTokenStreamHeaderSize) + ")");
      if (next.eot_id != info_.eot_id)
        return Status::Invalid(name_ +
                               ": concatenated token streams with different end-of-text "
                               "ids (" +
                               EotName(info_.eot_id) + " then " + EotName(next.eot_id) +
                               ", at byte " + std::to_string(offset_ - kTokenStreamHeaderSize) +
                               ")");
      stream_total_ = 0;
      continue;
    }
    if (n > kTokenStreamMaxChunk)
      return Status::Corruption(name_ + ": bad chunk length " + std::to_string(n) + " at byte " +
                                std::to_string(offset_ - 4));
    size_t bytes = (size_t)n * (size_t)info_.width();
    buf_.resize(bytes + 8);
    LM_RETURN_IF_ERROR(ReadExact(&buf_[0], bytes + 8, "a chunk"));
    const uint8_t* p = reinterpret_cast<const uint8_t*>(buf_.data());
    if (LoadU64(p + bytes) != Hash64(p, bytes))
      return Status::Corruption(name_ + ": token stream chunk checksum mismatch ending at byte " +
                                std::to_string(offset_));
    // No clear() before the resize: a vector that keeps its size is not
    // zero-filled again for every chunk. The range check is a branch-free max
    // (it vectorizes).
    out->resize(n);
    DecodeTokens(p, info_.width(), n, out->data());
    uint32_t mx = 0;
    for (uint32_t t : *out) mx = t > mx ? t : mx;
    if (n > 0 && mx >= info_.vocab_size)
      return Status::Invalid(name_ + ": token id " + std::to_string(mx) +
                             " outside the vocabulary (size " + std::to_string(info_.vocab_size) +
                             ")");
    stream_total_ += n;
    total_ += n;
    return Status::OK();
  }
}

Status ReadTokenStream(const std::string& name, const std::string& bytes, TokenStreamInfo* info,
                       std::vector<uint32_t>* ids) {
  FILE* in = fmemopen((void*)bytes.data(), bytes.size(), "rb");
  if (!in) return Status::FromErrno(name, "fmemopen");
  TokenStreamReader r(in, name);
  Status s = r.Begin();
  if (s.ok()) *info = r.info();
  std::vector<uint32_t> chunk;
  bool done = false;
  while (s.ok() && !done) {
    s = r.Next(&chunk, &done);
    if (s.ok()) ids->insert(ids->end(), chunk.begin(), chunk.end());
  }
  fclose(in);
  return s;
}

}  // namespace lm
