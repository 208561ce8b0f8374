// shard.h: the shard file (.lms), lm-pack's unit of packed tokens (spec:
// docs/formats/shard.md): a checksummed header, token blocks that each
// decompress alone (zstd) or sit raw in place (level 0), and an index holding
// the seek table and the document boundaries and numbers.
//
// Every byte of a valid shard is covered by exactly one XXH3-64 checksum (the
// header's, a block's or the index's) and the blocks tile the space between
// header and index, so every single-bit flip is detected.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "format/tokens.h"  // DecodeTokens
#include "util/file.h"
#include "util/status.h"

namespace lm {

constexpr char kShardMagic[4] = {'L', 'M', 'S', 'H'};
constexpr uint16_t kShardVersion = 1;
constexpr size_t kShardHeaderSize = 64;
constexpr size_t kShardSeekEntrySize = 24;
constexpr uint8_t kShardFlagZstd = 1;
constexpr uint32_t kShardMaxBlockTokens = 1u << 22;
constexpr uint32_t kShardDefaultBlockTokens = 1u << 13;

struct ShardHeader {
  int token_width = 2;  // 2 or 4 bytes
  uint8_t flags = 0;    // kShardFlagZstd or 0
  uint32_t vocab_size = 0;
  uint32_t eot_id = 0xffffffffu;
  uint64_t vocab_id = 0;
  uint64_t token_count = 0;
  uint64_t doc_count = 0;
  uint32_t block_tokens = 0;
  uint32_t block_count = 0;
  uint64_t index_offset = 0;
  bool compressed() const { return flags & kShardFlagZstd; }
};

// Encodes the 64-byte header with its checksum.
std::string EncodeShardHeader(const ShardHeader& h);
// Checks magic, version, checksum, reserved fields and the counts' consistency.
Status DecodeShardHeader(const uint8_t* p, size_t n, ShardHeader* h);

struct SeekEntry {
  uint64_t offset = 0;  // of the stored block, from the start of the file
  uint32_t stored_size = 0;
  uint32_t raw_size = 0;  // tokens in the block x token width
  uint64_t hash = 0;      // XXH3-64 of the stored bytes
};

// What ShardWriter::Finish reports (and the manifest records).
struct ShardSummary {
  std::string path;
  uint64_t bytes = 0, tokens = 0, documents = 0, blocks = 0;
  uint64_t file_hash = 0;  // XXH3-64 of the whole file
};

// Writes one shard, streaming blocks out as they fill: a thread of the
// writer's own compresses one batch of blocks while Add fills the next and
// the batch before is written, so memory is bounded by a few batches (of
// about 1 MB of tokens, 2 MB per thread with several). The file is written to a temporary beside
// `path`, fsynced and renamed by Finish. Not thread-safe.
class ShardWriter {
 public:
  struct Options {
    uint32_t vocab_size = 0;
    uint32_t eot_id = 0xffffffffu;
    uint64_t vocab_id = 0;
    uint32_t block_tokens = kShardDefaultBlockTokens;
    int level = 3;  // zstd level; 0 stores raw tokens
    int threads = 1;
    // Where to write before the rename; default .NAME.tmp.PID.RANDOM beside
    // path (lm-pack passes .NAME.tmp: its shard names are unique to the run).
    std::string temp_path;
  };
  ShardWriter();
  ~ShardWriter();  // Abort()s an unfinished shard
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Creates the temporary file. temp_path() names it (for cleanup on signals).
  Status Open(const std::string& path, const Options& opt);
  // Appends tokens (each < vocab_size).
  Status Add(const uint32_t* ids, size_t n);
  // Records a document end at the current token count; `number` is the
  // document's position in the writer's input (increasing).
  void EndDocument(uint64_t number);
  uint64_t tokens() const { return tokens_; }
  bool is_open() const { return fd_ >= 0; }
  const std::string& temp_path() const { return tmp_; }
  // Writes the last block and the index, the header, fsyncs and renames to path.
  // The directory is not fsynced (the caller does it once for many shards).
  Status Finish(ShardSummary* out);
  // Closes and removes the temporary.
  void Abort();

 private:
  // One batch's blocks, compressed, to be checksummed and written in order.
  struct Batch {
    std::vector<std::string> out;  // the compressed blocks, in buffers of their bound
    std::vector<size_t> results;   // ZSTD_compressCCtx's: a size or an error code
    std::vector<size_t> raw_sizes;
    size_t blocks = 0;
    bool out_of_memory = false;  // the batch could not be compressed
  };
  struct Worker;
  Status StartWorker();
  void RunWorker();
  void WaitWorker();     // until the batch in flight is compressed
  Status FlushBlocks();  // hands the pending batch over; writes the one before
  void CompressBatch(const char* raw, size_t n, Batch* b);
  Status WriteBatch(const Batch& b);
  Status WriteRaw(const char* raw, size_t n);
  Status WriteOut(const void* p, size_t n);  // through wbuf_
  Status Drain();                            // writes wbuf_ out
  Status WriteDirect(const void* p, size_t n);
  Options opt_;
  std::string path_, tmp_;
  int fd_ = -1;
  int width_ = 2;
  size_t flush_blocks_ = 1;  // blocks compressed per flush
  uint64_t tokens_ = 0;
  uint64_t file_off_ = 0;  // bytes of the shard so far, written or in wbuf_
  uint64_t written_ = 0, synced_ = 0;
  std::string pending_;     // raw token bytes not yet in a block (up to flush_blocks_ blocks)
  size_t pending_len_ = 0;  // of them, in use
  std::string inflight_;    // the batch the worker compresses
  size_t inflight_len_ = 0;
  Batch batches_[2];                // compressed by the worker in turn
  int slot_ = 0;                    // the one it compresses (or did last)
  bool unwritten_ = false;          // batches_[slot_] is yet to be written
  std::unique_ptr<Worker> worker_;  // only when compressing
  std::vector<SeekEntry> seek_;
  std::vector<uint64_t> docs_, doc_numbers_;
  std::vector<void*> cctx_;  // ZSTD_CCtx*, one per thread
  std::string wbuf_;         // output not yet written, up to 1 MiB
};

// Reads a shard through a memory map. Open checks the header and the index
// (their checksums, the tiling of blocks, the document table); each block's
// checksum is checked when the block is read. Thread-safe after Open.
class ShardReader {
 public:
  Status Open(const std::string& path);
  // The same checks on `size` bytes of memory named `name` (fuzz targets,
  // tests); the memory must outlive the reader.
  Status OpenMemory(const uint8_t* data, size_t size, const std::string& name);
  const ShardHeader& header() const { return h_; }
  const std::string& path() const { return map_.path(); }
  uint64_t file_size() const { return map_.size(); }
  const std::vector<SeekEntry>& seek() const { return seek_; }
  // Token offsets (within the shard) just past each document's end.
  const std::vector<uint64_t>& doc_ends() const { return docs_; }
  // Each document's position in the input of the lm-pack run that wrote it.
  const std::vector<uint64_t>& doc_numbers() const { return doc_numbers_; }
  uint64_t block_first_token(uint32_t b) const { return (uint64_t)b * h_.block_tokens; }
  uint32_t block_tokens(uint32_t b) const;

  // Checks block b's checksum and decodes it into out (raw token bytes,
  // token_width each). Decompresses zstd blocks; copies raw ones.
  Status ReadBlock(uint32_t b, std::string* out) const;
  // Checks block b's checksum (nothing else).
  Status CheckBlock(uint32_t b) const;
  // For an uncompressed shard: the raw bytes of block b in the map, unchecked
  // (call CheckBlock once first).
  const uint8_t* RawBlock(uint32_t b) const { return map_.data() + seek_[b].offset; }
  // Every token of a decoded block < vocab_size.
  Status CheckTokens(uint32_t b, const uint8_t* raw, size_t n_tokens) const;
  // Reads every block (checksums, sizes, token range) and checks the document
  // table against the end-of-text tokens: every end-of-text ends an entry,
  // and every entry ends with end-of-text, except one at the shard's end.
  // With open_ends, entries that end without end-of-text anywhere (the head
  // of a document cut between the splits, manifest.md) are accepted and
  // their indices appended instead. Names the first bad block.
  Status VerifyAll(std::vector<size_t>* open_ends = nullptr) const;

 private:
  Status Parse();  // Open's checks, on map_
  MappedFile map_;
  ShardHeader h_;
  std::vector<SeekEntry> seek_;
  std::vector<uint64_t> docs_, doc_numbers_;
};

}  // namespace lm
