// verify.cpp: lm-pack verify's checks (see verify.h).
#include "data/verify.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <vector>

#include "util/file.h"
#include "util/hash.h"

namespace lm {

Status CheckShardFile(const std::string& dir, const ManifestShard& e) {
  std::string path = JoinPath(dir, e.file);
  struct stat st;
  if (stat(path.c_str(), &st) != 0)
    return Status::FromErrno(path,
                             "listed in " + JoinPath(dir, kManifestName) + " but cannot be read");
  if (!S_ISREG(st.st_mode)) return Status::Invalid(path + ": not a regular file");
  if ((uint64_t)st.st_size != e.bytes)
    return Status::Corruption(path + ": " + std::to_string(st.st_size) +
                              " bytes but the manifest says " + std::to_string(e.bytes) +
                              ((uint64_t)st.st_size < e.bytes ? " (truncated shard)" : ""));
  return Status::OK();
}

Status CheckShardMatchesManifest(const ShardReader& r, const ManifestShard& e, const Manifest& m) {
  const ShardHeader& h = r.header();
  if (h.vocab_id != m.vocab_id || h.vocab_size != m.vocab_size)
    return Status::Invalid(r.path() + ": shard of vocabulary " + HashHex(h.vocab_id) + " (size " +
                           std::to_string(h.vocab_size) + ") in a dataset of " +
                           HashHex(m.vocab_id) + " (size " + std::to_string(m.vocab_size) + ")");
  if (h.eot_id != m.eot_id)
    return Status::Invalid(r.path() + ": shard's end-of-text id is " + EotName(h.eot_id) +
                           " but the dataset's is " + EotName(m.eot_id));
  if (h.token_count != e.tokens || h.doc_count != e.documents || h.block_count != e.blocks ||
      r.file_size() != e.bytes || h.compressed() != (e.level > 0))
    return Status::Corruption(
        r.path() +
        ": shard does not match its manifest entry (tokens, documents, blocks, size "
        "or compression)");
  // Document numbers are positions in the writer's input: each below the
  // number of documents the writer read (numbers increase, so the last).
  if (!e.writer.empty() && !r.doc_numbers().empty()) {
    for (const ManifestWriter& w : m.writers) {
      if (w.id != e.writer || !w.documents_known) continue;
      if (r.doc_numbers().back() >= w.documents)
        return Status::Corruption(r.path() + ": document number " +
                                  std::to_string(r.doc_numbers().back()) + " is not below the " +
                                  std::to_string(w.documents) + " documents of its writer " + w.id +
                                  " in the manifest");
      break;
    }
  }
  return Status::OK();
}

namespace {

const ManifestWriter* FindWriter(const Manifest& m, const std::string& id) {
  if (id.empty()) return nullptr;
  for (const ManifestWriter& w : m.writers)
    if (w.id == id) return &w;
  return nullptr;
}

// A train document entry that ends without end-of-text before the end of its
// writer's input: the head of a document cut between the splits, whose tail
// the writer's val split must hold under the same number.
struct OpenHead {
  std::string path;
  size_t entry;
  uint64_t number;
};

// What the document tables of one writer that cut documents hold.
struct CutCheck {
  std::vector<OpenHead> heads;
  std::vector<uint64_t> val_numbers;
};

// Checks a shard's blocks and document table; for a writer that may have cut
// documents (val_cut), notes its open heads and val document numbers.
Status VerifyShard(const ShardReader& r, const ManifestShard& e, const Manifest& m,
                   std::map<std::string, CutCheck>* cuts) {
  const ManifestWriter* w = FindWriter(m, e.writer);
  if (!w || w->val_cut == 0) return r.VerifyAll();
  CutCheck& c = (*cuts)[w->id];
  if (e.split == "val") {
    LM_RETURN_IF_ERROR(r.VerifyAll());
    c.val_numbers.insert(c.val_numbers.end(), r.doc_numbers().begin(), r.doc_numbers().end());
    return Status::OK();
  }
  std::vector<size_t> open;
  LM_RETURN_IF_ERROR(r.VerifyAll(&open));
  for (size_t i : open) {
    const uint64_t number = r.doc_numbers()[i];
    // The input's last document may end without end-of-text, cut or not.
    if (!(w->documents_known && number + 1 == w->documents))
      c.heads.push_back({r.path(), i, number});
  }
  return Status::OK();
}

Status CheckCutTails(const std::map<std::string, CutCheck>& cuts) {
  for (const auto& [id, c] : cuts) {
    std::vector<uint64_t> val = c.val_numbers;
    std::sort(val.begin(), val.end());
    for (const OpenHead& h : c.heads)
      if (!std::binary_search(val.begin(), val.end(), h.number))
        return Status::Corruption(h.path + ": document table entry " + std::to_string(h.entry) +
                                  " does not end with end-of-text, and writer " + id +
                                  "'s val split holds no tail of its document " +
                                  std::to_string(h.number));
  }
  return Status::OK();
}

}  // namespace

Status VerifyDataset(const std::string& dir, VerifyReport* rep,
                     const std::function<void(uint64_t)>& progress) {
  *rep = VerifyReport();
  Manifest m;
  LM_RETURN_IF_ERROR(ReadManifest(dir, &m));
  // Cheap checks of every shard first, so that a missing file is named at once.
  for (const ManifestShard& e : m.shards) LM_RETURN_IF_ERROR(CheckShardFile(dir, e));
  uint64_t done = 0;
  std::map<std::string, CutCheck> cuts;
  for (const ManifestShard& e : m.shards) {
    std::string path = JoinPath(dir, e.file);
    ShardReader r;
    LM_RETURN_IF_ERROR(r.Open(path));
    LM_RETURN_IF_ERROR(CheckShardMatchesManifest(r, e, m));
    LM_RETURN_IF_ERROR(VerifyShard(r, e, m, &cuts));
    MappedFile f;
    LM_RETURN_IF_ERROR(f.Open(path));
    if (Hash64(f.data(), f.size()) != e.hash)
      return Status::Corruption(path + ": file checksum does not match the manifest's");
    rep->shards++;
    rep->tokens += e.tokens;
    rep->documents += e.documents;
    rep->bytes += e.bytes;
    rep->raw_bytes += e.tokens * (uint64_t)m.token_width;
    done += e.bytes;
    if (progress) progress(done);
  }
  return CheckCutTails(cuts);
}

}  // namespace lm
