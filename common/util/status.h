// status.h: the error type every function in common/ returns (LevelDB style).
// common/ never prints and never exits; only a tool's main turns a Status into a
// message on stderr and an exit code (docs/cli.md).
#pragma once

#include <string>
#include <utility>

namespace lm {

class Status {
 public:
  enum Code {
    kOk = 0,
    kUsage,       // bad command line: exit 2
    kInvalid,     // bad input: wrong format, wrong vocabulary, out-of-range value
    kCorruption,  // checksum mismatch, truncated or inconsistent data
    kNotFound,    // a file or entry that must exist does not
    kIOError,     // the OS refused (open, read, write, disk full, ...)
    kResource,    // out of memory, device unavailable
    kInterrupted  // stopped by a signal
  };

  Status() = default;
  static Status OK() { return Status(); }
  static Status Usage(std::string m) { return Status(kUsage, std::move(m)); }
  static Status Invalid(std::string m) { return Status(kInvalid, std::move(m)); }
  static Status Corruption(std::string m) { return Status(kCorruption, std::move(m)); }
  static Status NotFound(std::string m) { return Status(kNotFound, std::move(m)); }
  static Status IOError(std::string m) { return Status(kIOError, std::move(m)); }
  static Status Resource(std::string m) { return Status(kResource, std::move(m)); }
  static Status Interrupted(std::string m) { return Status(kInterrupted, std::move(m)); }
  // IOError carrying strerror(errno) for `what` on `path`.
  static Status FromErrno(const std::string& path, const std::string& what);

  bool ok() const { return code_ == kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return msg_; }
  // "corruption: shards/shard-000001.lms: block 7: checksum mismatch" style.
  std::string ToString() const;
  // Prefix the message with context, e.g. a file name: s.With("tok.bpe").
  Status With(const std::string& context) const;

 private:
  Status(Code c, std::string m) : code_(c), msg_(std::move(m)) {}
  Code code_ = kOk;
  std::string msg_;
};

}  // namespace lm

// Return early from the enclosing function when `expr` is not OK. The local's
// name carries the line number so that uses inside lambdas never shadow.
#define LM_STATUS_CONCAT_(a, b) a##b
#define LM_STATUS_NAME_(line) LM_STATUS_CONCAT_(lm_status_, line)
#define LM_RETURN_IF_ERROR(expr)                                           \
  do {                                                                     \
    ::lm::Status LM_STATUS_NAME_(__LINE__) = (expr);                       \
    if (!LM_STATUS_NAME_(__LINE__).ok()) return LM_STATUS_NAME_(__LINE__); \
  } while (0)
