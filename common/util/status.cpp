// status.cpp: Status formatting.
#include "util/status.h"

#include <cerrno>
#include <cstring>

namespace lm {

Status Status::FromErrno(const std::string& path, const std::string& what) {
  int e = errno;
  return IOError(path + ": " + what + ": " + std::strerror(e));
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return msg_;
}

Status Status::With(const std::string& context) const {
  if (ok()) return *this;
  return Status(code_, context + ": " + msg_);
}

}  // namespace lm
