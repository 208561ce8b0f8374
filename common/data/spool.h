// spool.h: a first-in, first-out queue of tokens whose memory is bounded: the
// newest tokens stay in memory, up to a limit; older ones go to a temporary
// file in a given directory. The file has no name (O_TMPFILE, or unlinked
// as soon as it is made), so nothing is left behind whatever ends the
// process, and space it no longer needs is given back as it is read.
//
// The split holds back the tail of a long document until its end says how
// long the tail is (split.h); a document may be as long as the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "util/status.h"

namespace lm {

class TokenSpool {
 public:
  // A run of tokens handed out by Pop, valid during the call.
  using Take = std::function<Status(const uint32_t* ids, size_t n)>;

  // Keeps at most about `memory_tokens` in memory; the file, when needed, is
  // made in `dir`.
  explicit TokenSpool(std::string dir, size_t memory_tokens = kDefaultMemoryTokens);
  ~TokenSpool();
  TokenSpool(const TokenSpool&) = delete;
  TokenSpool& operator=(const TokenSpool&) = delete;

  Status Push(const uint32_t* ids, size_t n);
  // Hands the n oldest tokens (n <= size()) to `take`, in order, in runs.
  Status Pop(uint64_t n, const Take& take);
  uint64_t size() const { return (file_tail_ - file_head_) + (mem_.size() - mem_head_); }
  // Tokens written to the file so far (for tests).
  uint64_t spilled() const { return spilled_; }

  static constexpr size_t kDefaultMemoryTokens = size_t(1) << 22;  // 16 MiB

 private:
  Status Spill();
  Status PopFile(uint64_t* n, const Take& take);
  void Release(uint64_t upto);

  std::string dir_;
  size_t cap_;
  int fd_ = -1;
  // Token offsets in the file: [file_head_, file_tail_) is queued, older than
  // everything in memory; below file_released_ the space was given back.
  uint64_t file_head_ = 0, file_tail_ = 0, file_released_ = 0;
  std::vector<uint32_t> mem_;  // [mem_head_, size) is queued
  size_t mem_head_ = 0;
  std::vector<uint32_t> buf_;  // what Pop reads from the file
  uint64_t spilled_ = 0;
};

}  // namespace lm
