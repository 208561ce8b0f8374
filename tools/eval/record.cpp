// record.cpp: lm-eval's --new-only record and its output lines (record.h).
#include "record.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "util/file.h"
#include "util/hash.h"
#include "util/json.h"

namespace lm {

std::string RecordKey(uint64_t data_identity, int context, int stride, uint64_t limit) {
  std::string k = "data=" + HashHex(data_identity) + " context=" + std::to_string(context) +
                  " stride=" + std::to_string(stride) + " limit=" + std::to_string(limit);
  return HashHex(Hash64(k));
}

void ParseRecord(const std::string& all, const std::string& key, std::set<std::string>* done) {
  size_t pos = 0;
  while (pos < all.size()) {
    size_t nl = all.find('\n', pos);
    if (nl == std::string::npos) break;  // a line cut by a crash: not a record
    std::string line = all.substr(pos, nl - pos);
    pos = nl + 1;
    nlohmann::ordered_json j;
    if (!ParseJsonText(line, &j).ok() || !j.is_object()) continue;
    auto str = [&j](const char* k) { return j.contains(k) && j[k].is_string(); };
    if (!str("ckpt") || !str("id") || !str("key")) continue;
    if (j["key"].get<std::string>() == key)
      done->insert(j["ckpt"].get<std::string>() + "/" + j["id"].get<std::string>());
  }
}

Status ReadRecord(const std::string& path, const std::string& key, std::set<std::string>* done) {
  if (!PathExists(path)) return Status::OK();
  std::string all;
  LM_RETURN_IF_ERROR(ReadFile(path, &all));
  ParseRecord(all, key, done);
  return Status::OK();
}

Status AppendRecord(const std::string& path, const std::string& line) {
  int fd = open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(path, "open");
  std::string text = line;
  off_t size = lseek(fd, 0, SEEK_END);
  char last = '\n';
  if (size > 0 && pread(fd, &last, 1, size - 1) == 1 && last != '\n') text = "\n" + text;
  Status s = WriteAll(fd, text.data(), text.size(), path);
  if (s.ok() && fsync(fd) != 0) s = Status::FromErrno(path, "fsync");
  close(fd);
  return s;
}

Status EmitLine(const std::string& line) {
  fflush(stdout);
  struct stat st;
  const bool file = fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode);
  Status s = WriteAll(STDOUT_FILENO, line.data(), line.size(), "<stdout>");
  if (!s.ok() && file && ftruncate(STDOUT_FILENO, st.st_size) != 0)
    return s.With("cannot remove the partial line (" + std::string(strerror(errno)) + ")");
  return s;
}

}  // namespace lm
