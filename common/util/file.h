// file.h: file I/O that never leaves a half-written file behind.
//
// AtomicFile writes to a temporary file beside the target, then fsyncs, renames
// and fsyncs the directory (LevelDB's SetCurrentFile). Until Commit() the target
// is untouched; a temporary left by a crash has a name no reader looks at, and
// temporaries of live AtomicFiles are removed on SIGINT/SIGTERM when the tool
// installed the handler (see InstallCleanupHandlers).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "util/status.h"

namespace lm {

// Opens /dev/null on whichever of fds 0, 1 and 2 is closed, for reading where
// the tool would write and for writing where it would read, so that files
// opened later never take those numbers and using them still fails (EBADF).
// cli::Main calls it first.
void ReserveStandardFds();

// Reads a whole file ("-" is stdin).
Status ReadFile(const std::string& path, std::string* out);
// Writes `data` to `path` atomically (temp, fsync, rename, fsync dir).
Status WriteFileAtomic(const std::string& path, const std::string& data);
// fsync a directory so that a rename inside it is durable.
Status SyncDir(const std::string& dir);
// mkdir -p.
Status MakeDirs(const std::string& dir);
bool PathExists(const std::string& path);
bool IsDirectory(const std::string& path);
// True when both paths exist and name the same file (device and inode, after
// following symbolic links): a hard link or a symlink to a file is that file.
bool SameFile(const std::string& a, const std::string& b);
// Directory part of a path ("." when there is none).
std::string DirName(const std::string& path);
std::string BaseName(const std::string& path);
std::string JoinPath(const std::string& a, const std::string& b);
// Removes a file or a directory tree. Missing is not an error.
Status RemoveAll(const std::string& path);

// Writes all of `n` bytes, retrying short writes and EINTR; ENOSPC becomes an IOError.
Status WriteAll(int fd, const void* data, size_t n, const std::string& name);
// Reads up to `n` bytes, stopping early only at end of file; *got says how many.
Status ReadFull(int fd, void* data, size_t n, size_t* got, const std::string& name);

// Writes a file as a whole or not at all: to a temporary beside it, then
// fsync and rename. A symbolic link is followed (the file it names is
// replaced); what is not a regular file (a device, a FIFO) is written in place.
class AtomicFile {
 public:
  AtomicFile() = default;
  ~AtomicFile();  // removes the temporary unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  Status Open(const std::string& path);
  Status Write(const void* data, size_t n);
  Status Write(const std::string& s) { return Write(s.data(), s.size()); }
  // Flush, fsync, rename over the target, fsync the directory.
  Status Commit();
  // Remove the temporary and forget it (also done by the destructor).
  void Abort();
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return tmp_; }
  uint64_t bytes_written() const { return written_; }

 private:
  std::string path_, tmp_;
  std::string target_;   // path_, or what it links to
  bool direct_ = false;  // not a regular file: written in place, no rename
  int fd_ = -1;
  int slot_ = -1;  // registration for the signal handler
  uint64_t written_ = 0;
  // Small write buffer so that many tiny writes stay cheap.
  std::string buf_;
  Status FlushBuffer();
};

// A read-only memory map of a whole file. An empty file maps to (nullptr, 0).
class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;

  Status Open(const std::string& path);
  // A view of `size` bytes of caller memory, named `name`, instead of a file:
  // readers that take a MappedFile then read a buffer exactly as they read a
  // file (fuzz targets, tests). Nothing is unmapped; the memory must outlive
  // this object.
  void Borrow(const uint8_t* data, size_t size, const std::string& name);
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void Close();
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool borrowed_ = false;  // data_ is the caller's (Borrow), not a mapping
};

// An exclusive advisory lock (flock) on a lock file, created if missing,
// released by the destructor or when the process dies.
class FileLock {
 public:
  FileLock() = default;
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  // Blocks until the lock is held.
  Status Lock(const std::string& path);
  // Returns OK and sets *held=false when another process holds it.
  Status TryLock(const std::string& path, bool* held);
  // Like Lock, for a lock file that another process may remove while holding
  // its lock (lm-pack clean does, for a dead writer's): retries until the file
  // locked is the one still at `path`.
  Status LockRemovable(const std::string& path);
  // Removes the lock file, then releases the lock. Whoever then gets the lock
  // of the removed file sees that it is no longer at the path.
  void RemoveAndUnlock();
  void Unlock();

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace lm
