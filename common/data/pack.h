// pack.h: writes a packed dataset (lm-pack's logic): routes documents to the
// train or val split (split.h), streams them into shards as they fill, and
// adds the shards to DIR/manifest.json under DIR/.lock.
//
// Memory is bounded by the shard writers' block buffers, whatever the input
// size. Until Finish commits the manifest, the dataset is as it was: a failed or
// abandoned writer removes every shard file it created.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/split.h"
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
  double val_fraction = 0.0;  // share of the tokens for val (split.h)
  int64_t val_docs = -1;      // >= 0: the first val_docs documents go to val instead
  uint64_t seed = 0;
  int threads = 1;
  bool append = false;  // add to an existing dataset (else DIR must hold none)
  std::string label;    // recorded with this writer in the manifest (e.g. the input's name)
  // Called when the commit has to wait for DIR/.lock, held by another writer
  // (or a clean), before it blocks: so that the caller can say why it stops.
  std::function<void(const std::string& lock_path)> waiting;
};

struct PackStats {
  uint64_t documents = 0;                                             // documents of the input
  uint64_t tokens[2] = {0, 0}, docs[2] = {0, 0}, shards[2] = {0, 0};  // train, val
  uint64_t cut = 0;    // documents cut between the splits (head in train, tail in val)
  uint64_t bytes = 0;  // shard file bytes written
  std::string writer;  // this run's writer id
  // Stop signals (SIGINT, ...) that arrived during the commit: taken, since
  // the run is complete; the caller may say so.
  std::vector<int> late_signals;
};

// The most tokens a shard of blocks of `block_tokens` holds (2^32 - 1 blocks).
uint64_t MaxShardTokens(uint32_t block_tokens);

// Whether the options can make a dataset: a directory, shard and block sizes
// (MaxShardTokens, kShardMaxBlockTokens), a fraction in [0, 1], a zstd level
// in [0, 22]. Create checks them (Invalid); a tool checks each option's range
// where it parses it, naming the option.
Status CheckPackOptions(const PackOptions& opt);

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
  void EndPart(int split, uint64_t number);
  Status CloseShard(int split);
  Status LoadManifest(Manifest* m) const;
  ManifestWriter WriterEntry() const;
  Status Commit(Manifest* m);
  std::string ShardName(int split, uint64_t seq) const;
  void RemoveFiles();

  PackOptions opt_;
  TokenStreamInfo vocab_;
  std::string id_;
  ShardWriter writers_[2];
  uint64_t seq_[2] = {0, 0};
  std::vector<ManifestShard> done_;
  std::unique_ptr<SplitRouter> router_;  // which split each document's tokens go to
  bool committed_ = false;
  bool created_dir_ = false;               // DIR did not exist before Create
  int slot_ = -1;                          // in the signal-cleanup registry (util/signals.h)
  std::unique_ptr<ShardCleanup> cleanup_;  // what that cleanup removes
  FileLock lock_;                          // DIR/.writer-ID.lock, held while the writer lives
  PackStats stats_;
};

// Whether s is Create's or Finish's refusal of a DIR that already holds a
// dataset while PackOptions::append is false (so that the caller can say how
// to add to it).
bool IsExistingDataset(const Status& s);

// The lock file a writer holds from its start to its end: ".writer-ID.lock".
// A shard file of a writer whose lock file is missing or not held belongs to a
// writer that is gone (docs/formats/manifest.md).
std::string WriterLockName(const std::string& writer_id);

}  // namespace lm
