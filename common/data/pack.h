// pack.h: writes a packed dataset (lm-pack's logic): routes whole documents to
// the train or val split, streams them into shards as they fill, and adds the
// shards to DIR/manifest.json under DIR/.lock.
//
// Memory is bounded by the shard writers' block buffers, whatever the input
// size. Until Finish commits the manifest, the dataset is as it was: a failed or
// abandoned writer removes every shard file it created.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "format/manifest.h"
#include "format/shard.h"
#include "format/tokens.h"
#include "util/status.h"

namespace lm {

struct PackOptions {
  std::string dir;
  uint64_t shard_tokens = 1ull << 26;  // tokens per shard file, at most
  uint32_t block_tokens = kShardDefaultBlockTokens;
  int level = 3;              // zstd level; 0 = raw tokens, mapped in place by readers
  double val_fraction = 0.0;  // share of documents (by seeded hash) for val
  int64_t val_docs = -1;      // >= 0: the first val_docs documents go to val instead
  uint64_t seed = 0;
  int threads = 1;
  bool append = false;  // add to an existing dataset (else DIR must hold none)
  std::string label;    // recorded with this writer in the manifest (e.g. the input's name)
};

struct PackStats {
  uint64_t documents = 0;                                             // documents of the input
  uint64_t tokens[2] = {0, 0}, docs[2] = {0, 0}, shards[2] = {0, 0};  // train, val
  uint64_t bytes = 0;                                                 // shard file bytes written
  std::string writer;                                                 // this run's writer id
};

// Documents are assigned to a split by their first tokens (at most this many).
constexpr size_t kSplitHeadTokens = 64;

// True when a document goes to val under a fraction split: with head_hash the
// XXH3-64 of its first (up to kSplitHeadTokens) tokens as u32 little-endian,
// the top 53 bits of XXH3-64(u64 seed | u64 index | u64 head_hash) over 2^53
// are < fraction. `index` is the document's position in this writer's input,
// the head hash keeps parallel writers (each counting from 0) independent.
bool IsValDocument(uint64_t seed, uint64_t index, uint64_t head_hash, double fraction);

struct ShardCleanup;

class DatasetWriter {
 public:
  // Checks DIR (creates it if missing): without append it must hold no
  // manifest; with append, a manifest there must have the stream's vocabulary.
  static Status Create(const PackOptions& opt, const TokenStreamInfo& vocab,
                       std::unique_ptr<DatasetWriter>* out);
  ~DatasetWriter();  // removes the shards of an uncommitted writer

  // Adds tokens of the input; documents end with the vocabulary's eot_id.
  Status Add(const uint32_t* ids, size_t n);
  // Closes the shards and commits them to the manifest. An input without
  // tokens is an error (the dataset stays as it was).
  Status Finish(PackStats* stats);
  const PackStats& stats() const { return stats_; }

 private:
  DatasetWriter() = default;
  Status AddRun(int split, const uint32_t* ids, size_t n);
  Status Decide();
  Status CloseShard(int split);
  std::string ShardName(int split, uint64_t seq) const;
  void RemoveFiles();

  PackOptions opt_;
  TokenStreamInfo vocab_;
  std::string id_;
  ShardWriter writers_[2];
  uint64_t seq_[2] = {0, 0};
  std::vector<ManifestShard> done_;
  bool in_doc_ = false, decided_ = false;
  std::vector<uint32_t> head_;  // first tokens of a document whose split is not yet known
  int doc_split_ = 0;
  bool committed_ = false;
  bool created_dir_ = false;               // DIR did not exist before Create
  int slot_ = -1;                          // in the signal-cleanup registry (util/signals.h)
  std::unique_ptr<ShardCleanup> cleanup_;  // what that cleanup removes
  FileLock lock_;                          // DIR/.writer-ID.lock, held while the writer lives
  PackStats stats_;
};

// The lock file a writer holds from its start to its end: ".writer-ID.lock".
// A shard file of a writer whose lock file is missing or not held belongs to a
// writer that is gone (docs/formats/manifest.md).
std::string WriterLockName(const std::string& writer_id);

}  // namespace lm
