// fuzz.h: what the fuzz targets (tests/fuzz/*_fuzz.cpp) share.
//
// A target is a libFuzzer entry point, LLVMFuzzerTestOneInput: it hands the
// bytes to one reader, which must refuse them with a Status or accept them;
// what it accepts must survive the round trip through the matching writer
// (written again, then read again, it gives the same thing). Anything else
// (a crash, a sanitizer report, a failed FUZZ_CHECK) is a finding. The same
// file builds against driver.cpp to replay the seed corpus and the regression
// inputs in `make test`.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

// Aborts with the condition and where (libFuzzer saves the input that did it).
#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      fprintf(stderr, "fuzz check failed: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                      \
    }                                                                               \
  } while (0)

namespace lm_fuzz {

// How many inputs (or checksum-fixed copies) the reader accepted: the driver
// reports it per file, so that a seed that no longer reaches the round trip
// is seen.
inline int& Accepted() {
  static int n = 0;
  return n;
}

// Runs check on the input as given, then on a copy whose checksums fix
// recomputed (when that changed a byte), so that mutations reach what the
// checksums guard as well as the checks of the checksums themselves.
inline void AsGivenAndFixed(const uint8_t* data, size_t size, void (*check)(const uint8_t*, size_t),
                            void (*fix)(std::vector<uint8_t>*)) {
  check(data, size);
  std::vector<uint8_t> fixed(data, data + size);
  fix(&fixed);
  if (fixed != std::vector<uint8_t>(data, data + size)) check(fixed.data(), fixed.size());
}

// A file in memory (memfd) for readers that take a path: /proc/self/fd/N
// names it. Created once per process; Set replaces its contents.
class MemFile {
 public:
  explicit MemFile(const char* name) : fd_(memfd_create(name, MFD_CLOEXEC)) {
    FUZZ_CHECK(fd_ >= 0);
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemFile() { close(fd_); }
  void Set(const void* data, size_t n) {
    FUZZ_CHECK(ftruncate(fd_, 0) == 0);
    size_t done = 0;
    while (done < n) {
      ssize_t w = pwrite(fd_, (const char*)data + done, n - done, (off_t)done);
      FUZZ_CHECK(w > 0);
      done += (size_t)w;
    }
  }
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

}  // namespace lm_fuzz
