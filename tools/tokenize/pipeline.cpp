// pipeline.cpp (lm-tokenize): Output and EncodeAll (see pipeline.h).
#include "pipeline.h"

#include <omp.h>
#include <unistd.h>

#include <future>

namespace lm {

Status Output::Open(bool to_file, const std::string& path) {
  if (!to_file) return Status::OK();
  name_ = path;
  LM_RETURN_IF_ERROR(file_.Open(name_));
  int fd = dup(file_.fd());
  if (fd < 0 || !(f_ = fdopen(fd, "wb"))) return Status::FromErrno(name_, "cannot open");
  return Status::OK();
}

Output::~Output() {
  if (f_) fclose(f_);
}

Status Output::Commit() {
  if (!f_) return Status::OK();
  bool bad = fflush(f_) != 0 || ferror(f_);
  fclose(f_);
  f_ = nullptr;
  if (bad) return Status::FromErrno(name_, "write failed");
  return file_.Commit();
}

namespace {

struct Batch {
  std::vector<Piece> pieces;
  std::vector<std::vector<uint32_t>> ids;
  bool done = false;
  bool idle = false;  // the input paused after this batch: flush the output
};

struct Stages {
  const Vocab& vocab;
  DocReader* reader;
  int threads;
  bool allow_special, eot;
  const PieceSink& sink;
  const FlushFn& flush;

  Status Read(Batch* b) const {
    b->pieces.clear();
    Status s = reader->Next((size_t)threads * (4 << 20), &b->pieces, &b->done);
    b->idle = reader->idle();
    return s;
  }
  Status Encode(Batch* b) const {
    std::vector<Status> errs(b->pieces.size());
    b->ids.resize(b->pieces.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (size_t i = 0; i < b->pieces.size(); i++) {
      const Piece& p = b->pieces[i];
      b->ids[i].clear();
      Status s = allow_special ? vocab.Encode(p.text, true, &b->ids[i])
                               : vocab.EncodeOrdinary(p.text.data(), p.text.size(), &b->ids[i]);
      if (s.ok() && eot && p.doc_end) b->ids[i].push_back(vocab.eot_id());
      errs[i] = s.ok() ? s : s.With(reader->SourceName(p.source));
    }
    for (auto& s : errs) LM_RETURN_IF_ERROR(s);
    return Status::OK();
  }
  Status Write(Batch* b) const {
    for (size_t i = 0; i < b->pieces.size(); i++) LM_RETURN_IF_ERROR(sink(b->pieces[i], b->ids[i]));
    // Only when the input pauses, so that the bytes written (chunk boundaries
    // included) do not depend on -j.
    return b->idle ? flush() : Status::OK();
  }
};

// Three batches rotate: one being read, one encoded, one written.
Status EncodeOverlapped(const Stages& st, Progress* progress) {
  Batch slots[3];
  Batch* cur = &slots[0];
  Batch* next = &slots[1];
  Batch* out = &slots[2];
  LM_RETURN_IF_ERROR(st.Read(cur));
  std::future<Status> writing;
  Status s;
  for (;;) {
    std::future<Status> reading;
    const bool more = !cur->done;
    if (more) reading = std::async(std::launch::async, [&st, next] { return st.Read(next); });
    s = st.Encode(cur);
    Status ws = writing.valid() ? writing.get() : Status::OK();
    if (s.ok()) s = ws;
    if (s.ok()) {
      std::swap(cur, out);
      writing = std::async(std::launch::async, [&st, out] { return st.Write(out); });
    }
    Status rs = more ? reading.get() : Status::OK();
    if (s.ok()) s = rs;
    if (!s.ok() || !more) break;
    if (progress) progress->Update(st.reader->bytes_read());
    std::swap(cur, next);
  }
  Status ws = writing.valid() ? writing.get() : Status::OK();
  return s.ok() ? ws : s;
}

}  // namespace

Status EncodeAll(const Vocab& vocab, DocReader* reader, int threads, bool allow_special, bool eot,
                 Progress* progress, const PieceSink& sink, const FlushFn& flush) {
  Stages st{vocab, reader, threads, allow_special, eot, sink, flush};
  if (threads > 1) return EncodeOverlapped(st, progress);
  Batch b;
  while (!b.done) {
    LM_RETURN_IF_ERROR(st.Read(&b));
    LM_RETURN_IF_ERROR(st.Encode(&b));
    LM_RETURN_IF_ERROR(st.Write(&b));
    if (progress) progress->Update(reader->bytes_read());
  }
  return Status::OK();
}

}  // namespace lm
