// verify.cpp: lm-pack verify's checks (see verify.h).
#include "data/verify.h"

#include <sys/stat.h>

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

Status VerifyDataset(const std::string& dir, VerifyReport* rep,
                     const std::function<void(uint64_t)>& progress) {
  *rep = VerifyReport();
  Manifest m;
  LM_RETURN_IF_ERROR(ReadManifest(dir, &m));
  // Cheap checks of every shard first, so that a missing file is named at once.
  for (const ManifestShard& e : m.shards) LM_RETURN_IF_ERROR(CheckShardFile(dir, e));
  uint64_t done = 0;
  for (const ManifestShard& e : m.shards) {
    std::string path = JoinPath(dir, e.file);
    ShardReader r;
    LM_RETURN_IF_ERROR(r.Open(path));
    LM_RETURN_IF_ERROR(CheckShardMatchesManifest(r, e, m));
    LM_RETURN_IF_ERROR(r.VerifyAll());
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
  return Status::OK();
}

}  // namespace lm
