// loader.h: the training and evaluation data loader over a packed dataset
// (lm-pack's shards and manifest.json; docs/formats/shard.md, manifest.md).
//
// Shards are mapped with mmap; compressed blocks are decompressed on demand into
// a small cache and their checksum verified the first time each is read.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "util/status.h"

namespace lm {

enum class Split { kTrain, kVal };
const char* SplitName(Split s);

struct DatasetInfo {
  std::string dir;
  uint32_t vocab_size = 0;
  uint64_t vocab_id = 0;  // identity hash of the vocabulary (tok.bpe)
  uint32_t eot_id = 0xffffffffu;
  uint64_t tokens[2] = {0, 0};     // per split (index by (int)Split)
  uint64_t documents[2] = {0, 0};  // per split
  uint64_t identity = 0;           // hash of the manifest's shard hashes: names this exact data
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  // Opens DIR/manifest.json; checks every shard named exists with the right size.
  static Status Open(const std::string& dir, std::unique_ptr<Dataset>* out);
  virtual const DatasetInfo& info() const = 0;
  // Copies tokens [start, start + n) of a split (the split's shards concatenated
  // in manifest order) into out. Corruption names the shard file and block.
  virtual Status Read(Split split, uint64_t start, size_t n, uint32_t* out) = 0;
  // Bytes of decompressed blocks kept in the cache (default 64 MiB; at least
  // one block is always kept). Uncompressed shards are read in place, uncached.
  virtual void SetCacheBytes(size_t bytes) {}
  // Opens the shards holding the split's first n tokens (all of them when n
  // is at least the split's size) and checks each against its manifest entry,
  // as Read does when it first reaches a shard: a reader that sizes its work
  // by info().tokens calls it first. Reads only headers and indexes.
  virtual Status CheckShards(Split split, uint64_t n) { return Status::OK(); }
  // Document ends of a split (token offsets, within the split, just past each
  // document's last token) that fall in (start, start + n], in order. Reads
  // only the shards' indexes.
  virtual Status DocumentEnds(Split split, uint64_t start, uint64_t n, std::vector<uint64_t>* out) {
    return Status::Invalid("document ends not supported");
  }
};

// Visits every token of a split once, in order (evaluation).
class SequentialReader {
 public:
  SequentialReader(Dataset* ds, Split split);
  uint64_t position() const { return pos_; }
  uint64_t size() const { return total_; }
  // Copies up to max tokens from the position on and advances; *got is 0 at the end.
  Status Next(size_t max, uint32_t* out, size_t* got);
  // Moves to a position in [0, size()].
  Status Seek(uint64_t pos);

 private:
  Dataset* ds_;
  Split split_;
  uint64_t pos_ = 0, total_ = 0;
};

// Where a BatchSampler is: small enough for trainer-state.json, and enough to
// resume the exact sequence of batches.
struct BatchCursor {
  uint64_t seed = 0;
  uint64_t epoch = 0;
  uint64_t index = 0;  // sequences already handed out in this epoch (global count)
  std::string ToJson() const;
  static Status FromJson(const std::string& json, BatchCursor* out);
};

// Training batches: the split is cut into windows of T+1 tokens starting every T
// tokens; each epoch visits every window once in an order that depends only on
// (seed, epoch). A global batch is `global_batch` consecutive windows of that
// order; rank r of W takes rows [r*global_batch/W, (r+1)*global_batch/W), so
// the data seen does not depend on the number of processes.
class BatchSampler {
 public:
  // Invalid when the split has fewer than T+1 tokens.
  static Status Create(Dataset* ds, Split split, int T, uint64_t seed,
                       std::unique_ptr<BatchSampler>* out);
  virtual ~BatchSampler() = default;
  virtual uint64_t windows_per_epoch() const = 0;
  // Fills rows*(T+1) tokens: rows [row_begin, row_begin+rows) of the next global
  // batch of `global_batch` rows, then advances the cursor by global_batch.
  virtual Status Next(int global_batch, int row_begin, int rows, uint32_t* tokens) = 0;
  virtual BatchCursor cursor() const = 0;
  virtual Status Seek(const BatchCursor& c) = 0;
};

}  // namespace lm
