// cat.cpp (lm-pack cat): a dataset's tokens back as a token stream, each
// writer's documents in its input order (train and val merged by document
// number), or one split, or one shard.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "data/verify.h"
#include "format/manifest.h"
#include "format/shard.h"
#include "format/tokens.h"
#include "manual.h"
#include "util/cli.h"
#include "util/codec.h"
#include "util/file.h"

namespace lm {

namespace {

// Reads a run of shards (one split of one writer) in order, document by
// document, checking every block it decodes.
class DocCursor {
 public:
  DocCursor(const std::string& dir, const Manifest& m, std::vector<size_t> shards)
      : dir_(dir), m_(m), shards_(std::move(shards)) {}

  // Opens the first shard with tokens. Call before anything else.
  Status Start() { return Enter(0); }
  bool done() const { return cur_ >= shards_.size(); }
  // The input number of the current document (it may end in a later shard);
  // UINT64_MAX when none is recorded.
  Status Number(uint64_t* n) {
    *n = UINT64_MAX;
    if (doc_ < r_.doc_ends().size()) {
      *n = r_.doc_numbers()[doc_];
      return Status::OK();
    }
    for (size_t j = cur_ + 1; j < shards_.size(); j++) {
      ShardReader r;
      LM_RETURN_IF_ERROR(OpenShard(j, &r));
      if (!r.doc_numbers().empty()) {
        *n = r.doc_numbers()[0];
        break;
      }
    }
    return Status::OK();
  }
  // Writes the current document (or, with whole_shards, everything) to w.
  Status Copy(TokenStreamWriter* w, bool whole_shards) {
    while (!done()) {
      uint64_t T = r_.header().token_count;
      bool ends_here = !whole_shards && doc_ < r_.doc_ends().size();
      uint64_t end = ends_here ? r_.doc_ends()[doc_] : T;
      LM_RETURN_IF_ERROR(CopyRange(pos_, end, w));
      pos_ = end;
      if (ends_here) {
        doc_++;
        if (pos_ == T) LM_RETURN_IF_ERROR(Enter(cur_ + 1));
        return Status::OK();
      }
      LM_RETURN_IF_ERROR(Enter(cur_ + 1));
    }
    return Status::OK();
  }

 private:
  Status OpenShard(size_t j, ShardReader* r) {
    const ManifestShard& e = m_.shards[shards_[j]];
    LM_RETURN_IF_ERROR(r->Open(JoinPath(dir_, e.file)));
    return CheckShardMatchesManifest(*r, e, m_);
  }
  Status Enter(size_t j) {
    cur_ = j;
    pos_ = doc_ = 0;
    block_ = UINT32_MAX;
    if (j < shards_.size()) LM_RETURN_IF_ERROR(OpenShard(j, &r_));
    return Status::OK();
  }
  Status CopyRange(uint64_t from, uint64_t to, TokenStreamWriter* w) {
    while (from < to) {
      uint32_t b = (uint32_t)(from / r_.header().block_tokens);
      if (b != block_) {
        LM_RETURN_IF_ERROR(r_.ReadBlock(b, &raw_));
        uint32_t n = r_.block_tokens(b);
        const uint8_t* p = reinterpret_cast<const uint8_t*>(raw_.data());
        LM_RETURN_IF_ERROR(r_.CheckTokens(b, p, n));
        ids_.resize(n);
        DecodeTokens(p, r_.header().token_width, n, ids_.data());
        block_ = b;
      }
      uint64_t first = r_.block_first_token(b);
      uint64_t stop = std::min<uint64_t>(to, first + ids_.size());
      LM_RETURN_IF_ERROR(w->Write(ids_.data() + (from - first), (size_t)(stop - from)));
      from = stop;
    }
    return Status::OK();
  }

  std::string dir_;
  const Manifest& m_;
  std::vector<size_t> shards_;
  size_t cur_ = 0;
  ShardReader r_;
  uint64_t pos_ = 0, doc_ = 0;
  uint32_t block_ = UINT32_MAX;
  std::string raw_;
  std::vector<uint32_t> ids_;
};

// Every writer's documents in its input order: the train and val shards of
// each writer merged by document number; writers in manifest order.
Status CatInInputOrder(const std::string& dir, const Manifest& m, TokenStreamWriter* w) {
  std::vector<std::string> writers;
  for (const ManifestShard& e : m.shards)
    if (std::find(writers.begin(), writers.end(), e.writer) == writers.end())
      writers.push_back(e.writer);
  for (const std::string& id : writers) {
    std::vector<size_t> split[2];
    for (size_t i = 0; i < m.shards.size(); i++)
      if (m.shards[i].writer == id) split[m.shards[i].split == "val"].push_back(i);
    DocCursor train(dir, m, split[0]), val(dir, m, split[1]);
    LM_RETURN_IF_ERROR(train.Start());
    LM_RETURN_IF_ERROR(val.Start());
    while (!train.done() || !val.done()) {
      uint64_t a = UINT64_MAX, b = UINT64_MAX;
      if (!train.done()) LM_RETURN_IF_ERROR(train.Number(&a));
      if (!val.done()) LM_RETURN_IF_ERROR(val.Number(&b));
      if (val.done() || (!train.done() && a <= b)) {
        LM_RETURN_IF_ERROR(train.Copy(w, a == UINT64_MAX));
      } else {
        LM_RETURN_IF_ERROR(val.Copy(w, b == UINT64_MAX));
      }
    }
  }
  return Status::OK();
}

struct CatArgs {
  std::string dir, split, output;
  cli::Count shard;
};

void Declare(cli::Command* cmd, CatArgs* o) {
  cli::Options add(cmd);
  add("dir", &o->dir, "DIR", "the dataset directory");
  add("split", &o->split, "SPLIT", "train or val (default both)");
  add("shard", &o->shard, "N", "only shard N");
  add("output,o", &o->output, "FILE", "write here instead of stdout");
  add.Positional("dir", 1);
}

// The shards to write, in order: shard N alone, one split in manifest order,
// or none (both splits, in input order).
Status SelectShards(const cli::Command& cmd, const CatArgs& a, const Manifest& m,
                    std::vector<size_t>* order) {
  if (cmd.Given("shard")) {
    if (a.shard.n >= m.shards.size())
      return Status::Usage("--shard " + std::to_string(a.shard.n) + ": the dataset has " +
                           std::to_string(m.shards.size()) + " shards");
    const ManifestShard& e = m.shards[a.shard.n];
    if (!a.split.empty() && e.split != a.split)
      return Status::Usage("shard " + std::to_string(a.shard.n) + " is in the " + e.split +
                           " split");
    order->push_back((size_t)a.shard.n);
  } else if (!a.split.empty()) {
    for (size_t i = 0; i < m.shards.size(); i++)
      if (m.shards[i].split == a.split) order->push_back(i);
  }
  return Status::OK();
}

// The output replaces its target once every input was read: an -o naming the
// manifest or a shard (by any name: a link, a path through ..) would replace
// a file of the dataset it came from with a token stream.
Status RefuseDatasetFile(const std::string& out, const std::string& dir, const Manifest& m) {
  std::vector<std::string> files = {JoinPath(dir, kManifestName)};
  for (const ManifestShard& e : m.shards) files.push_back(JoinPath(dir, e.file));
  for (const std::string& r : files)
    if (SameFile(out, r))
      return Status::Invalid(out + ": -o names a file of the dataset being read" +
                             (r == out ? "" : " (" + r + ")") + "; give another file");
  return Status::OK();
}

Status WriteTokens(const std::string& dir, const Manifest& m, const std::vector<size_t>& order,
                   bool input_order, FILE* f, const std::string& name) {
  TokenStreamInfo info;
  info.vocab_size = m.vocab_size;
  info.vocab_id = m.vocab_id;
  info.eot_id = m.eot_id;
  TokenStreamWriter w(f, name);
  LM_RETURN_IF_ERROR(w.Begin(info));
  if (input_order) {
    LM_RETURN_IF_ERROR(CatInInputOrder(dir, m, &w));
  } else {
    DocCursor c(dir, m, order);
    LM_RETURN_IF_ERROR(c.Start());
    LM_RETURN_IF_ERROR(c.Copy(&w, true));
  }
  return w.End();
}

}  // namespace

Status RunCat(int argc, char** argv) {
  cli::Command cmd;
  cmd.synopsis = kCatSynopsis;
  cmd.manual = kCatManual;
  CatArgs a;
  Declare(&cmd, &a);
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&cmd, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  if (a.dir.empty()) return Status::Usage("lm-pack cat: no dataset directory");
  if (!a.split.empty() && a.split != "train" && a.split != "val")
    return Status::Usage("--split must be train or val, not '" + a.split + "'");
  Manifest m;
  LM_RETURN_IF_ERROR(ReadManifest(a.dir, &m));
  std::vector<size_t> order;
  LM_RETURN_IF_ERROR(SelectShards(cmd, a, m, &order));
  const bool input_order = !cmd.Given("shard") && a.split.empty();
  if (!cmd.Given("output")) return WriteTokens(a.dir, m, order, input_order, stdout, "<stdout>");
  LM_RETURN_IF_ERROR(RefuseDatasetFile(a.output, a.dir, m));
  // Written to a temporary through a FILE*, renamed on success.
  AtomicFile file;
  LM_RETURN_IF_ERROR(file.Open(a.output));
  FILE* f = fdopen(dup(file.fd()), "wb");
  if (!f) return Status::FromErrno(a.output, "cannot open");
  Status s = WriteTokens(a.dir, m, order, input_order, f, a.output);
  if (fclose(f) != 0 && s.ok()) s = Status::FromErrno(a.output, "write failed");
  if (s.ok()) s = file.Commit();
  return s;
}

}  // namespace lm
