// file.cpp: atomic writes, maps, locks.
#include "util/file.h"

#include "util/signals.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <mutex>
#include <random>

namespace lm {

namespace {

std::string RandomSuffix() {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}() ^ (uint64_t)getpid());
  std::lock_guard<std::mutex> lk(mu);
  char b[32];
  snprintf(b, sizeof b, "%d.%08llx", (int)getpid(), (unsigned long long)(rng() & 0xffffffffULL));
  return b;
}

}  // namespace

void ReserveStandardFds() {
  // A tool started with stdin, stdout or stderr closed would give that
  // number to the next file it opens: reading "stdin" would read the
  // vocabulary, and tokens meant for stdout would land in a checkpoint. The
  // slot gets /dev/null opened the wrong way round, so that using it fails
  // (EBADF) as it would have.
  for (int fd = 0; fd <= 2; fd++) {
    if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    int got = open("/dev/null", fd == 0 ? O_WRONLY : O_RDONLY);
    if (got >= 0 && got != fd) close(got);
  }
}

Status ReadFile(const std::string& path, std::string* out) {
  out->clear();
  const bool is_stdin = path == "-";
  const std::string name = is_stdin ? "<stdin>" : path;
  int fd = is_stdin ? 0 : open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(path, "cannot open");
  auto done = [&](Status s) {
    if (!is_stdin) close(fd);
    return s;
  };
  struct stat st;
  if (fstat(fd, &st) == 0) {
    if (S_ISDIR(st.st_mode)) return done(Status::Invalid(name + ": is a directory"));
    if (S_ISREG(st.st_mode)) out->reserve((size_t)st.st_size);
  }
  char buf[1 << 16];
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0) {
      if (errno == EINTR) continue;
      return done(Status::FromErrno(name, "read failed"));
    }
    if (r == 0) break;
    out->append(buf, (size_t)r);
  }
  return done(Status::OK());
}

Status WriteFileAtomic(const std::string& path, const std::string& data) {
  AtomicFile f;
  LM_RETURN_IF_ERROR(f.Open(path));
  LM_RETURN_IF_ERROR(f.Write(data));
  return f.Commit();
}

Status SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(dir, "cannot open directory");
  int r = fsync(fd);
  close(fd);
  // Some file systems refuse fsync on directories; that is not data loss.
  if (r != 0 && errno != EINVAL && errno != EROFS) return Status::FromErrno(dir, "fsync failed");
  return Status::OK();
}

Status MakeDirs(const std::string& dir) {
  if (dir.empty() || IsDirectory(dir)) return Status::OK();
  std::string parent = DirName(dir);
  if (parent != dir && parent != "." && parent != "/") LM_RETURN_IF_ERROR(MakeDirs(parent));
  if (mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST)
    return Status::FromErrno(dir, "cannot create directory");
  if (!IsDirectory(dir)) return Status::IOError(dir + ": exists and is not a directory");
  return Status::OK();
}

bool PathExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool SameFile(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  return stat(a.c_str(), &sa) == 0 && stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

std::string DirName(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t i = p.rfind('/');
  if (i == std::string::npos) return ".";
  if (i == 0) return "/";
  return p.substr(0, i);
}

std::string BaseName(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t i = p.rfind('/');
  return i == std::string::npos ? p : p.substr(i + 1);
}

std::string JoinPath(const std::string& a, const std::string& b) {
  if (a.empty() || (!b.empty() && b[0] == '/')) return b;
  if (a.back() == '/') return a + b;
  return a + "/" + b;
}

Status RemoveAll(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return Status::OK();
  if (S_ISDIR(st.st_mode)) {
    DIR* d = opendir(path.c_str());
    if (!d) return Status::FromErrno(path, "cannot open directory");
    while (struct dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      Status s = RemoveAll(JoinPath(path, n));
      if (!s.ok()) {
        closedir(d);
        return s;
      }
    }
    closedir(d);
    if (rmdir(path.c_str()) != 0) return Status::FromErrno(path, "cannot remove directory");
  } else if (unlink(path.c_str()) != 0) {
    return Status::FromErrno(path, "cannot remove");
  }
  return Status::OK();
}

Status WriteAll(int fd, const void* data, size_t n, const std::string& name) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(name, "write failed");
    }
    p += w;
    n -= (size_t)w;
  }
  return Status::OK();
}

Status ReadFull(int fd, void* data, size_t n, size_t* got, const std::string& name) {
  char* p = static_cast<char*>(data);
  size_t done = 0;
  while (done < n) {
    ssize_t r = read(fd, p + done, n - done);
    if (r < 0) {
      if (errno == EINTR) continue;
      *got = done;
      return Status::FromErrno(name, "read failed");
    }
    if (r == 0) break;
    done += (size_t)r;
  }
  *got = done;
  return Status::OK();
}

// ---------------------------------------------------------------------------
// AtomicFile

AtomicFile::~AtomicFile() {
  Abort();
}

Status AtomicFile::Open(const std::string& path) {
  Abort();
  if (path.empty()) return Status::Usage("empty output file name");
  path_ = path;
  target_ = path;
  direct_ = false;
  // A symbolic link is followed: the file it names is replaced, not the link.
  struct stat st;
  char resolved[PATH_MAX];
  if (lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    if (realpath(path.c_str(), resolved)) {
      target_ = resolved;
    } else {
      // A dangling link: the file is made where it points.
      ssize_t n = readlink(path.c_str(), resolved, sizeof resolved - 1);
      if (n > 0) {
        resolved[n] = 0;
        target_ = resolved[0] == '/' ? std::string(resolved) : JoinPath(DirName(path), resolved);
      }
    }
  }
  // A directory cannot be replaced by a file: say so before any work. What
  // else is not a regular file (/dev/null, /dev/stdout, a FIFO, a terminal) is
  // written in place, as `cmd > path` would: there is nothing to rename over,
  // and a rename would put a regular file where the device was.
  const bool exists = stat(target_.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) return Status::Invalid(path + ": is a directory");
  if (exists && !S_ISREG(st.st_mode)) {
    fd_ = open(target_.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd_ < 0) return Status::FromErrno(path, "cannot open for writing");
    direct_ = true;
    written_ = 0;
    buf_.clear();
    buf_.reserve(1 << 20);
    return Status::OK();
  }
  tmp_ = JoinPath(DirName(target_), "." + BaseName(target_) + ".tmp." + RandomSuffix());
  fd_ = open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    Status s = Status::FromErrno(path, "cannot create temporary file " + tmp_);
    tmp_.clear();
    return s;
  }
  slot_ = RegisterCleanupPath(tmp_);
  written_ = 0;
  buf_.clear();
  buf_.reserve(1 << 20);
  return Status::OK();
}

Status AtomicFile::FlushBuffer() {
  if (buf_.empty()) return Status::OK();
  Status s = WriteAll(fd_, buf_.data(), buf_.size(), path_);
  buf_.clear();
  return s;
}

Status AtomicFile::Write(const void* data, size_t n) {
  if (fd_ < 0) return Status::IOError(path_ + ": write to a file that is not open");
  written_ += n;
  if (buf_.size() + n > (1u << 20)) LM_RETURN_IF_ERROR(FlushBuffer());
  if (n >= (1u << 20)) return WriteAll(fd_, data, n, path_);
  buf_.append(static_cast<const char*>(data), n);
  return Status::OK();
}

Status AtomicFile::Commit() {
  if (fd_ < 0) return Status::IOError(path_ + ": commit of a file that is not open");
  if (direct_) {
    Status d = FlushBuffer();
    if (close(fd_) != 0 && d.ok()) d = Status::FromErrno(path_, "close failed");
    fd_ = -1;
    return d;
  }
  Status s = FlushBuffer();
  if (s.ok() && fsync(fd_) != 0) s = Status::FromErrno(path_, "fsync failed");
  if (close(fd_) != 0 && s.ok()) s = Status::FromErrno(path_, "close failed");
  fd_ = -1;
  if (s.ok() && rename(tmp_.c_str(), target_.c_str()) != 0)
    s = Status::FromErrno(path_, "cannot rename " + tmp_ + " into place");
  if (!s.ok()) {
    unlink(tmp_.c_str());
  } else {
    s = SyncDir(DirName(target_));
  }
  UnregisterCleanup(slot_);
  slot_ = -1;
  tmp_.clear();
  return s;
}

void AtomicFile::Abort() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  if (!tmp_.empty()) unlink(tmp_.c_str());
  tmp_.clear();
  UnregisterCleanup(slot_);
  slot_ = -1;
}

// ---------------------------------------------------------------------------
// MappedFile

MappedFile::~MappedFile() {
  Close();
}

MappedFile::MappedFile(MappedFile&& o) noexcept {
  *this = std::move(o);
}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    Close();
    path_ = std::move(o.path_);
    data_ = o.data_;
    size_ = o.size_;
    borrowed_ = o.borrowed_;
    o.data_ = nullptr;
    o.size_ = 0;
    o.borrowed_ = false;
  }
  return *this;
}

void MappedFile::Close() {
  if (data_ && !borrowed_) munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
  borrowed_ = false;
}

void MappedFile::Borrow(const uint8_t* data, size_t size, const std::string& name) {
  Close();
  path_ = name;
  data_ = size > 0 ? data : nullptr;
  size_ = size;
  borrowed_ = true;
}

Status MappedFile::Open(const std::string& path) {
  Close();
  path_ = path;
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer
  // forever; what is not a regular file is refused just below.
  int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(path, "cannot open");
  struct stat st;
  if (fstat(fd, &st) != 0) {
    Status s = Status::FromErrno(path, "cannot stat");
    close(fd);
    return s;
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return Status::Invalid(path + ": not a regular file");
  }
  size_ = (size_t)st.st_size;
  if (size_ > 0) {
    void* p = mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      Status s = Status::FromErrno(path, "mmap failed");
      close(fd);
      size_ = 0;
      return s;
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  close(fd);
  return Status::OK();
}

// ---------------------------------------------------------------------------
// FileLock

FileLock::~FileLock() {
  Unlock();
}

Status FileLock::Lock(const std::string& path) {
  Unlock();
  fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) return Status::FromErrno(path, "cannot open lock file");
  while (flock(fd_, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    Status s = Status::FromErrno(path, "cannot lock");
    Unlock();
    return s;
  }
  return Status::OK();
}

Status FileLock::TryLock(const std::string& path, bool* held) {
  Unlock();
  *held = false;
  fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) return Status::FromErrno(path, "cannot open lock file");
  if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    close(fd_);
    fd_ = -1;
    if (e == EWOULDBLOCK) return Status::OK();
    errno = e;
    return Status::FromErrno(path, "cannot lock");
  }
  *held = true;
  return Status::OK();
}

Status FileLock::LockRemovable(const std::string& path) {
  for (;;) {
    LM_RETURN_IF_ERROR(Lock(path));
    struct stat held, now;
    if (fstat(fd_, &held) != 0) {
      Status s = Status::FromErrno(path, "cannot stat lock file");
      Unlock();
      return s;
    }
    if (stat(path.c_str(), &now) == 0 && now.st_dev == held.st_dev && now.st_ino == held.st_ino) {
      path_ = path;
      return Status::OK();
    }
    Unlock();  // removed (or replaced) while we waited: lock the file at the path now
  }
}

void FileLock::RemoveAndUnlock() {
  if (fd_ >= 0 && !path_.empty()) unlink(path_.c_str());
  Unlock();
}

void FileLock::Unlock() {
  if (fd_ >= 0) close(fd_);  // closing releases the flock
  fd_ = -1;
  path_.clear();
}

}  // namespace lm
