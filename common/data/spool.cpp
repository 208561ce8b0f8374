// spool.cpp: TokenSpool (see spool.h).
#include "data/spool.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "util/file.h"

namespace lm {

namespace {

constexpr size_t kReadTokens = size_t(1) << 20;         // a Pop's run from the file
constexpr uint64_t kReleaseTokens = uint64_t(1) << 24;  // give back 64 MiB at a time

// A read-write file in dir with no name.
Status OpenAnonymous(const std::string& dir, int* fd) {
#ifdef O_TMPFILE
  *fd = open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (*fd >= 0) return Status::OK();
#endif
  // A file system without O_TMPFILE: a name, removed at once.
  std::string path = JoinPath(dir, ".spool-XXXXXX");
  *fd = mkostemp(&path[0], O_CLOEXEC);
  if (*fd < 0) return Status::FromErrno(path, "cannot create a temporary file");
  unlink(path.c_str());
  return Status::OK();
}

Status WriteAll(int fd, const void* data, size_t bytes, uint64_t offset, const std::string& dir) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    ssize_t w = pwrite(fd, p, bytes, (off_t)offset);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Status::FromErrno(dir, "write to a temporary file failed");
    p += w;
    bytes -= (size_t)w;
    offset += (uint64_t)w;
  }
  return Status::OK();
}

Status ReadAll(int fd, void* data, size_t bytes, uint64_t offset, const std::string& dir) {
  char* p = static_cast<char*>(data);
  while (bytes > 0) {
    ssize_t r = pread(fd, p, bytes, (off_t)offset);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return Status::FromErrno(dir, "read of a temporary file failed");
    p += r;
    bytes -= (size_t)r;
    offset += (uint64_t)r;
  }
  return Status::OK();
}

}  // namespace

TokenSpool::TokenSpool(std::string dir, size_t memory_tokens)
    : dir_(std::move(dir)), cap_(std::max<size_t>(memory_tokens, 1)) {}

TokenSpool::~TokenSpool() {
  if (fd_ >= 0) close(fd_);
}

Status TokenSpool::Push(const uint32_t* ids, size_t n) {
  if (mem_head_ > 0 && mem_head_ * 2 >= mem_.size()) {
    mem_.erase(mem_.begin(), mem_.begin() + (ptrdiff_t)mem_head_);
    mem_head_ = 0;
  }
  mem_.insert(mem_.end(), ids, ids + n);
  if (mem_.size() - mem_head_ > cap_) LM_RETURN_IF_ERROR(Spill());
  return Status::OK();
}

// Everything in memory goes after what the file holds: it is all newer.
Status TokenSpool::Spill() {
  if (fd_ < 0) LM_RETURN_IF_ERROR(OpenAnonymous(dir_, &fd_));
  const size_t n = mem_.size() - mem_head_;
  LM_RETURN_IF_ERROR(WriteAll(fd_, mem_.data() + mem_head_, n * 4, file_tail_ * 4, dir_));
  file_tail_ += n;
  spilled_ += n;
  mem_.clear();
  mem_head_ = 0;
  return Status::OK();
}

Status TokenSpool::PopFile(uint64_t* n, const Take& take) {
  while (*n > 0 && file_head_ < file_tail_) {
    size_t k = (size_t)std::min<uint64_t>({*n, file_tail_ - file_head_, kReadTokens});
    buf_.resize(k);
    LM_RETURN_IF_ERROR(ReadAll(fd_, buf_.data(), k * 4, file_head_ * 4, dir_));
    file_head_ += k;
    *n -= k;
    LM_RETURN_IF_ERROR(take(buf_.data(), k));
    if (file_head_ == file_tail_) {
      // Empty: start again at 0, with no blocks held.
      if (ftruncate(fd_, 0) != 0) return Status::FromErrno(dir_, "truncate of a temporary file");
      file_head_ = file_tail_ = file_released_ = 0;
    } else if (file_head_ - file_released_ >= kReleaseTokens) {
      Release(file_head_);
    }
  }
  return Status::OK();
}

// Gives back the space of tokens read, where the file system can (a file
// system that cannot keeps them until the file is emptied).
void TokenSpool::Release(uint64_t upto) {
#ifdef FALLOC_FL_PUNCH_HOLE
  fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(file_released_ * 4),
            (off_t)((upto - file_released_) * 4));
#endif
  file_released_ = upto;
}

Status TokenSpool::Pop(uint64_t n, const Take& take) {
  if (n > size()) return Status::Invalid("token spool: pop of more tokens than it holds");
  LM_RETURN_IF_ERROR(PopFile(&n, take));
  if (n == 0) return Status::OK();
  const uint32_t* p = mem_.data() + mem_head_;
  mem_head_ += (size_t)n;
  Status s = take(p, (size_t)n);
  if (mem_head_ == mem_.size()) {
    mem_.clear();
    mem_head_ = 0;
  }
  return s;
}

}  // namespace lm
