// clean.cpp: lm-pack clean (see clean.h).
#include "data/clean.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>
#include <vector>

#include "data/pack.h"
#include "format/manifest.h"
#include "util/file.h"

namespace lm {

namespace {

bool StartsWith(const std::string& s, const std::string& p) {
  return s.compare(0, p.size(), p) == 0;
}
bool EndsWith(const std::string& s, const std::string& e) {
  return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}

// What a writer left: its shard files and temporaries, and whether its lock file is there.
struct Leftovers {
  std::vector<std::string> files;
  bool lock_file = false;
};

struct Scan {
  std::map<std::string, Leftovers> writers;  // by writer id
  std::vector<std::string> manifest_temps;
  std::vector<std::string> other_lms;  // *.lms not named by lm-pack
};

// The writer a leftover file belongs to, or "" when lm-pack does not make it.
std::string LeftoverWriter(const std::string& n, bool* is_lock) {
  *is_lock = false;
  if (StartsWith(n, ".writer-") && EndsWith(n, ".lock") && n.size() == 8 + 16 + 5) {
    std::string id = n.substr(8, 16);
    if (WriterFromFileName("train-" + id + "-000000.lms") != id) return "";
    *is_lock = true;
    return id;
  }
  if (n[0] == '.' && EndsWith(n, ".lms.tmp")) return WriterFromFileName(n.substr(1, n.size() - 5));
  return WriterFromFileName(n);
}

Status ScanDir(const std::string& dir, Scan* scan) {
  *scan = Scan();
  DIR* d = opendir(dir.c_str());
  if (!d) return Status::FromErrno(dir, "cannot read directory");
  errno = 0;
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    bool is_lock;
    std::string id = LeftoverWriter(n, &is_lock);
    if (!id.empty()) {
      if (is_lock)
        scan->writers[id].lock_file = true;
      else
        scan->writers[id].files.push_back(n);
    } else if (StartsWith(n, ".manifest.json.tmp.")) {
      scan->manifest_temps.push_back(n);
    } else if (EndsWith(n, ".lms")) {
      scan->other_lms.push_back(n);
    }
    errno = 0;
  }
  int err = errno;
  closedir(d);
  if (err != 0) {
    errno = err;
    return Status::FromErrno(dir, "cannot read directory");
  }
  // readdir's order is the file system's: sorted, the output is the same everywhere.
  for (auto& w : scan->writers) std::sort(w.second.files.begin(), w.second.files.end());
  std::sort(scan->manifest_temps.begin(), scan->manifest_temps.end());
  return Status::OK();
}

uint64_t SizeOf(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 ? (uint64_t)st.st_size : 0;
}

// Whether the writer `id` is running: its lock file exists and another
// process holds its lock. When it is not, and remove is set, the lock file is
// removed while this process holds its lock (a writer that opened it meanwhile
// sees it gone and locks a new one: FileLock::LockRemovable).
Status ProbeWriter(const std::string& dir, const std::string& id, bool remove, bool* running) {
  *running = false;
  std::string path = JoinPath(dir, WriterLockName(id));
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return Status::OK();
    return Status::FromErrno(path, "cannot open lock file");
  }
  int r;
  while ((r = flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {
  }
  if (r != 0) {
    int e = errno;
    close(fd);
    if (e == EWOULDBLOCK) {
      *running = true;
      return Status::OK();
    }
    errno = e;
    return Status::FromErrno(path, "cannot lock");
  }
  struct stat held, now;
  if (remove && fstat(fd, &held) == 0 && stat(path.c_str(), &now) == 0 &&
      held.st_dev == now.st_dev && held.st_ino == now.st_ino && unlink(path.c_str()) != 0 &&
      errno != ENOENT) {
    Status s = Status::FromErrno(path, "cannot remove");
    close(fd);
    return s;
  }
  close(fd);
  return Status::OK();
}

Status Remove(const std::string& dir, const std::string& name, bool dry_run, CleanReport* rep,
              const std::function<void(const std::string&, uint64_t)>& each) {
  std::string path = JoinPath(dir, name);
  uint64_t bytes = SizeOf(path);
  if (!dry_run && unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status::OK();  // its writer was removing it too
    return Status::FromErrno(path, "cannot remove");
  }
  rep->files++;
  rep->bytes += bytes;
  if (each) each(name, bytes);
  return Status::OK();
}

}  // namespace

Status CleanDataset(const std::string& dir, bool dry_run, CleanReport* rep,
                    const std::function<void(const std::string& name, uint64_t bytes)>& each,
                    const std::function<void(const std::string& lock_path)>& waiting) {
  *rep = CleanReport();
  if (!PathExists(dir)) return Status::NotFound(dir + ": no such directory");
  if (!IsDirectory(dir)) return Status::Invalid(dir + ": not a directory");
  Scan scan;
  LM_RETURN_IF_ERROR(ScanDir(dir, &scan));
  // Every writer is probed before the manifest is read: one found gone cannot
  // commit afterwards, so what that manifest lists of its files is final. (A
  // manifest read first could miss a commit made just before the probe.)
  std::vector<std::string> gone;
  for (const auto& [id, left] : scan.writers) {
    bool running;
    LM_RETURN_IF_ERROR(ProbeWriter(dir, id, false, &running));
    if (!running) {
      gone.push_back(id);
    } else if (!left.files.empty()) {
      rep->live_writers++;
      rep->live_files += left.files.size();
    }
  }
  Manifest m;
  Status s = ReadManifest(dir, &m);
  if (!s.ok() && s.code() != Status::kNotFound) return s;
  std::set<std::string> listed;
  for (const ManifestShard& e : m.shards) listed.insert(e.file);
  for (const std::string& n : scan.other_lms) rep->other_files += !listed.count(n);
  for (const std::string& id : gone) {
    Leftovers& left = scan.writers[id];
    bool any = false;
    for (const std::string& n : left.files) {
      if (listed.count(n)) continue;
      any = true;
      LM_RETURN_IF_ERROR(Remove(dir, n, dry_run, rep, each));
    }
    rep->writers += any;
    if (left.lock_file) {
      std::string name = WriterLockName(id);
      rep->files++;
      if (each) each(name, 0);
      bool running;
      if (!dry_run) LM_RETURN_IF_ERROR(ProbeWriter(dir, id, true, &running));
    }
  }
  // Manifest temporaries exist only while a commit holds DIR/.lock: any found
  // with the lock held is stale.
  if (!scan.manifest_temps.empty()) {
    FileLock lock;
    if (!dry_run) {
      std::string lock_path = JoinPath(dir, ".lock");
      bool held = false;
      LM_RETURN_IF_ERROR(lock.TryLock(lock_path, &held));
      if (!held) {
        if (waiting) waiting(lock_path);
        LM_RETURN_IF_ERROR(lock.Lock(lock_path));
      }
    }
    for (const std::string& n : scan.manifest_temps)
      if (PathExists(JoinPath(dir, n))) LM_RETURN_IF_ERROR(Remove(dir, n, dry_run, rep, each));
  }
  if (!dry_run && rep->files > 0) LM_RETURN_IF_ERROR(SyncDir(dir));
  return Status::OK();
}

}  // namespace lm
