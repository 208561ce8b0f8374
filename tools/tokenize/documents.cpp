// documents.cpp (lm-tokenize): input files -> documents -> pieces.
#include "documents.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "util/json.h"

namespace lm {

void DeclareDocOptions(cli::Command* c, DocOptions* o) {
  cli::Options add(c);
  add("doc-delim", &o->delim, "STR",
      "documents are separated by STR (escapes: \\n \\t \\r \\0 \\\\ \\xHH)");
  add.Flag("lines", &o->lines, "each line is a document (without its newline)");
  add.Flag("paragraphs", &o->paragraphs,
           "documents are separated by blank lines (\\n, \\r\\n or \\r line endings; white space "
           "only)");
  add("jsonl", &o->jsonl, "FIELD",
      "each line is a JSON object; the document is its string field FIELD");
  add("threads,j", &o->threads, "N", "threads (0: all cores)").Default(0);
}

Status ResolveDocMode(const cli::Command& c, const DocOptions& o, DocMode* m) {
  int n =
      (int)c.vm.count("doc-delim") + (int)o.lines + (int)o.paragraphs + (int)c.vm.count("jsonl");
  if (n > 1)
    return Status::Usage("--doc-delim, --lines, --paragraphs and --jsonl exclude one another");
  if (c.vm.count("doc-delim")) {
    m->kind = DocMode::kDelim;
    LM_RETURN_IF_ERROR(cli::Unescape(o.delim, &m->delim));
    if (m->delim.empty()) return Status::Usage("--doc-delim: empty delimiter");
  } else if (o.lines) {
    m->kind = DocMode::kLines;
  } else if (o.paragraphs) {
    m->kind = DocMode::kParagraphs;
  } else if (c.vm.count("jsonl")) {
    m->kind = DocMode::kJsonl;
    m->field = o.jsonl;
  }
  return Status::OK();
}

DocReader::~DocReader() {
  if (fd_ > 0) close(fd_);
}

Status DocReader::OpenNext(bool* none_left) {
  *none_left = next_file_ >= files_.size();
  if (*none_left) return Status::OK();
  const std::string& f = files_[next_file_++];
  name_ = f == "-" ? "<stdin>" : f;
  if (f == "-") {
    fd_ = 0;
  } else {
    fd_ = open(f.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return Status::FromErrno(f, "cannot open");
  }
  struct stat st;
  regular_ = fstat(fd_, &st) == 0 && S_ISREG(st.st_mode);
  file_size_ = regular_ ? (uint64_t)st.st_size : 0;
  buf_.clear();
  start_ = 0;
  file_bytes_ = 0;
  line_ = 0;
  file_had_doc_ = false;
  in_doc_ = false;
  return Status::OK();
}

Status DocReader::Fill(bool* eof) {
  if (start_ > 0 && start_ * 2 >= buf_.size()) {
    buf_.erase(0, start_);
    start_ = 0;
  }
  size_t old = buf_.size();
  size_t want = std::max<size_t>(4 << 20, buf_.size() - start_);
  // A regular file needs room for what it has left (and a byte to see its
  // end), at least 64 KiB in case it grows: a small file costs a small
  // buffer, not 4 MiB zeroed (the JSONL fuzz target ran 15 inputs a second
  // on those page faults).
  if (regular_) {
    const uint64_t left = file_size_ > file_bytes_ ? file_size_ - file_bytes_ : 0;
    want = std::min<uint64_t>(want, std::max<uint64_t>(left + 1, 64 << 10));
  }
  buf_.resize(old + want);
  for (;;) {
    ssize_t r = read(fd_, &buf_[old], want);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      buf_.resize(old);
      if (errno == EISDIR) return Status::Invalid(name_ + ": is a directory");
      return Status::FromErrno(name_, "read failed");
    }
    buf_.resize(old + (size_t)r);
    *eof = r == 0;
    // A pause of the input: a short read of a pipe or terminal with nothing
    // more readable now. A regular file's short read is its end (or the
    // next read's business), never a pause: taken as one, every small file
    // ended a batch and the other threads idled.
    short_read_ = false;
    if (!regular_ && r > 0 && (size_t)r < want) {
      struct pollfd pfd = {fd_, POLLIN, 0};
      int pr;
      while ((pr = poll(&pfd, 1, 0)) < 0 && errno == EINTR) {
      }
      short_read_ = pr == 0;
    }
    file_bytes_ += (uint64_t)r;
    bytes_read_ += (uint64_t)r;
    return Status::OK();
  }
}

Status DocReader::Emit(const char* p, size_t n, bool doc_end, std::vector<Piece>* out,
                       size_t* got) {
  if (n == 0 && !(doc_end && in_doc_)) return Status::OK();  // empty documents are skipped
  out->push_back({std::string(p, n), doc_end, (uint32_t)(next_file_ - 1)});
  *got += n;
  file_had_doc_ = true;
  in_doc_ = !doc_end;
  return Status::OK();
}

Status DocReader::Extract(bool eof, std::vector<Piece>* out, size_t* got) {
  const char* b = buf_.data();
  size_t n = buf_.size();
  if (mode_.kind == DocMode::kParagraphs) return ExtractParagraphs(eof, out, got);
  if (mode_.kind == DocMode::kFile) {
    if (eof) {
      LM_RETURN_IF_ERROR(Emit(b + start_, n - start_, true, out, got));
      start_ = n;
      return Status::OK();
    }
  } else {
    const std::string& d = mode_.kind == DocMode::kDelim ? mode_.delim : std::string("\n");
    for (;;) {
      const char* hit = (const char*)memmem(b + start_, n - start_, d.data(), d.size());
      if (!hit) break;
      size_t pos = (size_t)(hit - b);
      line_++;
      if (mode_.kind == DocMode::kJsonl) {
        std::string line(b + start_, pos - start_);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") != std::string::npos) {
          nlohmann::json j;
          std::string where = name_ + ":" + std::to_string(line_);
          Status parsed = ParseJsonText(line, &j);
          if (!parsed.ok()) return Status::Invalid(where + ": " + parsed.message());
          if (!j.is_object()) return Status::Invalid(where + ": not a JSON object");
          auto it = j.find(mode_.field);
          if (it == j.end()) return Status::Invalid(where + ": no field '" + mode_.field + "'");
          if (!it->is_string())
            return Status::Invalid(where + ": field '" + mode_.field + "' is not a string");
          const std::string& s = it->get_ref<const std::string&>();
          LM_RETURN_IF_ERROR(Emit(s.data(), s.size(), true, out, got));
        }
      } else {
        LM_RETURN_IF_ERROR(Emit(b + start_, pos - start_, true, out, got));
      }
      start_ = pos + d.size();
      b = buf_.data();
    }
    if (eof) {
      if (start_ < n) {
        if (mode_.kind == DocMode::kJsonl) {
          // A last line without its newline.
          buf_ += "\n";
          return Extract(false, out, got);
        }
        LM_RETURN_IF_ERROR(Emit(b + start_, n - start_, true, out, got));
      } else if (in_doc_) {
        LM_RETURN_IF_ERROR(Emit(b, 0, true, out, got));
      }
      start_ = n;
      return Status::OK();
    }
    if (mode_.kind == DocMode::kJsonl) return Status::OK();
    // Keep enough to find a delimiter that straddles the end of the buffer.
    if (n - start_ < d.size()) return Status::OK();
    n -= d.size() - 1;
  }
  return EmitPieces(n, out, got);
}

// A long unfinished document in [start_, n): hand over what can be cut exactly.
Status DocReader::EmitPieces(size_t n, std::vector<Piece>* out, size_t* got) {
  const char* b = buf_.data();
  while (pre_ && n - start_ > piece_bytes_) {
    size_t p = pre_->SafeSplit(b + start_, n - start_, piece_bytes_);
    while (p < n - start_ && CutsKept(b + start_, n - start_, p))
      p = pre_->SafeSplit(b + start_, n - start_, p + 1);
    if (p >= n - start_) break;
    LM_RETURN_IF_ERROR(Emit(b + start_, p, false, out, got));
    start_ += p;
  }
  return Status::OK();
}

namespace {

constexpr size_t kUnknown = SIZE_MAX;

bool IsBlank(char c) {
  return c == ' ' || c == '\t' || c == '\f' || c == '\v';
}

// Where the next line starts after the line ending at p[i] ('\n', "\r\n" or
// '\r'); kUnknown for a '\r' that ends the buffer before eof (half of a
// "\r\n", maybe).
size_t AfterLineEnding(const char* p, size_t n, size_t i, bool eof) {
  if (p[i] == '\n') return i + 1;
  if (i + 1 < n) return p[i + 1] == '\n' ? i + 2 : i + 1;
  return eof ? i + 1 : kUnknown;
}

// Whether the line at i is blank: only spaces, tabs, \f and \v before its line
// ending (at eof, the end of the input ends a line too). Returns where the
// next line starts, i when the line holds text, kUnknown when the buffer ends
// before that is known.
size_t AfterBlankLine(const char* p, size_t n, size_t i, bool eof) {
  size_t k = i;
  while (k < n && IsBlank(p[k])) k++;
  if (k == n) return eof ? n + (n == i) : kUnknown;  // n + 1 marks an empty last line
  if (p[k] != '\n' && p[k] != '\r') return i;
  return AfterLineEnding(p, n, k, eof);
}

// The first paragraph break in p[from, n): a line ending followed by a blank
// line. *at is where the line ending begins (the paragraph ends there), *next
// where the blank line ends. False when there is none, or none yet known.
bool FindParagraphBreak(const char* p, size_t n, size_t from, bool eof, size_t* at, size_t* next) {
  for (size_t i = from;;) {
    size_t le = i;
    while (le < n && p[le] != '\n' && p[le] != '\r') le++;
    if (le == n) return false;
    const size_t line = AfterLineEnding(p, n, le, eof);
    if (line == kUnknown) return false;
    const size_t after = AfterBlankLine(p, n, line, eof);
    if (after == kUnknown) return false;
    if (after != line) {
      *at = le;
      *next = std::min(after, n);
      return true;
    }
    i = line;
  }
}

}  // namespace

// Paragraphs: documents separated by blank lines, in any line ending.
// Blank lines before a paragraph (at the start of a file, or several between
// two paragraphs) are skipped, as is the line ending that ends a paragraph.
Status DocReader::ExtractParagraphs(bool eof, std::vector<Piece>* out, size_t* got) {
  const char* b = buf_.data();
  const size_t n = buf_.size();
  for (;;) {
    while (!in_doc_ && start_ < n) {
      const size_t after = AfterBlankLine(b, n, start_, eof);
      if (after == kUnknown) return Status::OK();  // only white space so far
      if (after == start_) break;
      start_ = std::min(after, n);
    }
    size_t at, next;
    if (!FindParagraphBreak(b, n, start_, eof, &at, &next)) break;
    LM_RETURN_IF_ERROR(Emit(b + start_, at - start_, true, out, got));
    start_ = next;
  }
  if (eof) {
    if (start_ < n || in_doc_) LM_RETURN_IF_ERROR(Emit(b + start_, n - start_, true, out, got));
    start_ = n;
    return Status::OK();
  }
  // A break may be forming in the white space that ends the buffer: keep it.
  size_t hold = n;
  while (hold > start_ && (IsBlank(b[hold - 1]) || b[hold - 1] == '\n' || b[hold - 1] == '\r'))
    hold--;
  return EmitPieces(hold, out, got);
}

void DocReader::KeepWhole(const std::vector<std::string>& texts) {
  // SafeSplit cuts just after a "\n", so only a text holding one can straddle a cut.
  keep_.clear();
  for (const std::string& t : texts)
    if (t.size() > 1 && t.find('\n') != std::string::npos) keep_.push_back(t);
}

// Whether cutting [p, p + n) at `at` would split an occurrence of a kept text,
// or of its beginning where the buffer ends (the rest may follow).
bool DocReader::CutsKept(const char* p, size_t n, size_t at) const {
  for (const std::string& t : keep_) {
    const size_t first = at >= t.size() ? at - t.size() + 1 : 0;
    for (size_t a = first; a < at; a++) {
      const size_t len = std::min(t.size(), n - a);
      if (memcmp(p + a, t.data(), len) == 0) return true;
    }
  }
  return false;
}

Status DocReader::Next(size_t max_bytes, std::vector<Piece>* out, bool* done) {
  *done = false;
  idle_ = false;
  size_t got = 0;
  while (got < max_bytes) {
    if (fd_ < 0) {
      bool none_left;
      LM_RETURN_IF_ERROR(OpenNext(&none_left));
      if (none_left) {
        *done = true;
        return Status::OK();
      }
    }
    bool eof;
    LM_RETURN_IF_ERROR(Fill(&eof));
    LM_RETURN_IF_ERROR(Extract(eof, out, &got));
    // A pipe that has nothing more for now: hand over what is ready, so that
    // a slow producer's documents come out promptly.
    if (short_read_ && !eof && !out->empty()) {
      idle_ = true;
      return Status::OK();
    }
    if (eof) {
      if (fd_ > 0) close(fd_);
      fd_ = -1;
      if (file_bytes_ == 0) return Status::Invalid(name_ + ": empty input");
      if (!file_had_doc_)
        return Status::Invalid(name_ +
                               ": no document in the input (only delimiters or blank lines)");
    }
  }
  return Status::OK();
}

}  // namespace lm
