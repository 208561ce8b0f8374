// shard.cpp: shard writer and reader (docs/formats/shard.md).
#include "format/shard.h"

#include <fcntl.h>
#include <omp.h>
#include <pthread.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <mutex>
#include <new>
#include <random>
#include <system_error>
#include <thread>

#include "util/codec.h"
#include "util/hash.h"

namespace lm {

namespace {

// Small writes (a compressed block is a few KB, rarely page-aligned) cost the
// kernel a partial-page zeroing each; gathering them into 1 MiB writes keeps
// the write path at the speed of a plain copy.
constexpr size_t kWriteBuffer = 1u << 20;

int WidthFor(uint32_t vocab_size) {
  return vocab_size <= 65536 ? 2 : 4;
}

std::string TempSuffix() {
  static std::mt19937_64 rng(std::random_device{}() ^ ((uint64_t)getpid() << 20));
  char b[48];
  snprintf(b, sizeof b, "%d.%016llx", (int)getpid(), (unsigned long long)rng());
  return b;
}

}  // namespace

// ---------------------------------------------------------------------------
// Header: magic | u16 version | u8 width | u8 flags | u32 vocab_size | u32 eot
// | u64 vocab_id | u64 tokens | u64 docs | u32 block_tokens | u32 blocks
// | u64 index_offset | u64 XXH3(bytes 0..55)

std::string EncodeShardHeader(const ShardHeader& h) {
  std::string s(kShardMagic, 4);
  PutU16(&s, kShardVersion);
  s.push_back((char)h.token_width);
  s.push_back((char)h.flags);
  PutU32(&s, h.vocab_size);
  PutU32(&s, h.eot_id);
  PutU64(&s, h.vocab_id);
  PutU64(&s, h.token_count);
  PutU64(&s, h.doc_count);
  PutU32(&s, h.block_tokens);
  PutU32(&s, h.block_count);
  PutU64(&s, h.index_offset);
  PutU64(&s, Hash64(s.data(), s.size()));
  return s;
}

Status DecodeShardHeader(const uint8_t* p, size_t n, ShardHeader* h) {
  if (n >= 4 && std::memcmp(p, kShardMagic, 4) != 0)
    return Status::Invalid("not a shard (bad magic; expected a .lms file written by lm-pack)");
  if (n < kShardHeaderSize)
    return Status::Corruption("truncated shard (" + std::to_string(n) +
                              " bytes; the header alone is 64)");
  uint16_t version = LoadU16(p + 4);
  if (version != kShardVersion)
    return Status::Invalid("unsupported shard version " + std::to_string(version) +
                           " (this build reads version 1)");
  if (LoadU64(p + 56) != Hash64(p, 56)) return Status::Corruption("shard header checksum mismatch");
  h->token_width = p[6];
  h->flags = p[7];
  h->vocab_size = LoadU32(p + 8);
  h->eot_id = LoadU32(p + 12);
  h->vocab_id = LoadU64(p + 16);
  h->token_count = LoadU64(p + 24);
  h->doc_count = LoadU64(p + 32);
  h->block_tokens = LoadU32(p + 40);
  h->block_count = LoadU32(p + 44);
  h->index_offset = LoadU64(p + 48);
  if (h->flags & ~kShardFlagZstd)
    return Status::Invalid("shard header: reserved flag bits are not zero");
  if (h->vocab_size == 0) return Status::Invalid("shard header: vocabulary size 0");
  if (h->token_width != WidthFor(h->vocab_size))
    return Status::Invalid("shard header: token width " + std::to_string(h->token_width) +
                           " does not fit vocabulary size " + std::to_string(h->vocab_size));
  if (h->eot_id != 0xffffffffu && h->eot_id >= h->vocab_size)
    return Status::Invalid("shard header: end-of-text id outside the vocabulary");
  if (h->token_count == 0) return Status::Invalid("shard header: no tokens");
  if (h->block_tokens == 0 || h->block_tokens > kShardMaxBlockTokens)
    return Status::Invalid("shard header: bad block size " + std::to_string(h->block_tokens));
  uint64_t blocks = (h->token_count - 1) / h->block_tokens + 1;
  if (blocks != h->block_count)
    return Status::Invalid("shard header: " + std::to_string(h->block_count) +
                           " blocks cannot hold " + std::to_string(h->token_count) + " tokens of " +
                           std::to_string(h->block_tokens) + " per block");
  if (h->doc_count > h->token_count)
    return Status::Invalid("shard header: more documents than tokens");
  if (h->index_offset < kShardHeaderSize) return Status::Invalid("shard header: bad index offset");
  return Status::OK();
}

// ---------------------------------------------------------------------------
// ShardWriter

// The thread that compresses one batch of blocks while the caller fills the
// next and writes the one before: reading and checking the input, the
// checksums and the writes then overlap the compression, as in zstd's command
// line (whose -T1 also has an I/O thread beside its compressing one).
struct ShardWriter::Worker {
  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  bool busy = false, stop = false;
};

Status ShardWriter::StartWorker() {
  std::unique_ptr<Worker> w(new Worker());
  // Started with the cleanup signals blocked, as are the OpenMP threads it
  // starts in turn: the caller's thread handles them.
  sigset_t block, old;
  sigemptyset(&block);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&block, sig);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  Status s;
  try {
    worker_ = std::move(w);
    worker_->thread = std::thread([this] { RunWorker(); });
  } catch (const std::system_error& e) {  // out of threads (ulimit -u) or memory
    worker_.reset();
    s = Status::Resource(path_ + ": cannot start the compression thread: " + e.what());
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return s;
}

void ShardWriter::RunWorker() {
  Worker& w = *worker_;
  std::unique_lock<std::mutex> lk(w.mu);
  for (;;) {
    w.cv.wait(lk, [&w] { return w.busy || w.stop; });
    if (!w.busy) return;
    lk.unlock();
    CompressBatch(inflight_.data(), inflight_len_, &batches_[slot_]);
    lk.lock();
    w.busy = false;
    w.cv.notify_all();
  }
}

void ShardWriter::WaitWorker() {
  if (!worker_) return;
  std::unique_lock<std::mutex> lk(worker_->mu);
  worker_->cv.wait(lk, [this] { return !worker_->busy; });
}

ShardWriter::ShardWriter() = default;

ShardWriter::~ShardWriter() {
  Abort();
  if (worker_) {
    {
      std::lock_guard<std::mutex> lk(worker_->mu);
      worker_->stop = true;
    }
    worker_->cv.notify_all();
    worker_->thread.join();
  }
  for (void* c : cctx_) ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(c));
}

Status ShardWriter::Open(const std::string& path, const Options& opt) {
  Abort();
  opt_ = opt;
  if (opt.vocab_size == 0) return Status::Invalid(path + ": vocabulary size 0");
  if (opt.block_tokens == 0 || opt.block_tokens > kShardMaxBlockTokens)
    return Status::Invalid("block size must be 1.." + std::to_string(kShardMaxBlockTokens) +
                           " tokens");
  if (opt.level < 0 || opt.level > ZSTD_maxCLevel())
    return Status::Invalid("compression level must be 0.." + std::to_string(ZSTD_maxCLevel()));
  if (opt_.threads < 1) opt_.threads = 1;
  width_ = WidthFor(opt.vocab_size);
  path_ = path;
  tmp_ = opt.temp_path.empty()
             ? JoinPath(DirName(path), "." + BaseName(path) + ".tmp." + TempSuffix())
             : opt.temp_path;
  fd_ = open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    Status s = Status::FromErrno(path, "cannot create temporary file " + tmp_);
    tmp_.clear();
    return s;
  }
  tokens_ = 0;
  synced_ = 0;
  written_ = 0;
  wbuf_.clear();
  wbuf_.reserve(kWriteBuffer);
  seek_.clear();
  docs_.clear();
  doc_numbers_.clear();
  pending_len_ = 0;
  // A batch handed to the worker holds about 1 MB of tokens, 2 MB per thread
  // with several: small batches cost more in thread wake-ups than they gain,
  // badly so on a busy machine. Memory stays bounded by these buffers.
  size_t block_bytes = (size_t)opt_.block_tokens * width_;
  // (At most 256 blocks per thread, so that tiny blocks do not make batches
  // of countless buffers.)
  flush_blocks_ = std::min<size_t>(256, std::max<size_t>(1, (1u << 20) / block_bytes));
  if (opt_.threads > 1)
    flush_blocks_ =
        (size_t)opt_.threads * std::min<size_t>(256, std::max<size_t>(1, (2u << 20) / block_bytes));
  // Sized once: a std::string that grows zero-fills its new bytes.
  for (std::string* b : {&pending_, &inflight_})
    if (b->size() != flush_blocks_ * block_bytes) b->assign(flush_blocks_ * block_bytes, '\0');
  unwritten_ = false;  // the worker is idle: Abort waited for it
  if (opt_.level > 0) {
    while ((int)cctx_.size() < opt_.threads) {
      ZSTD_CCtx* c = ZSTD_createCCtx();
      if (!c) return Status::Resource("cannot create a zstd context");
      cctx_.push_back(c);
    }
    if (!worker_) LM_RETURN_IF_ERROR(StartWorker());
  }
  // The header goes last (it holds the counts); reserve its place.
  std::string zeros(kShardHeaderSize, '\0');
  file_off_ = 0;
  return WriteOut(zeros.data(), zeros.size());
}

Status ShardWriter::WriteOut(const void* p, size_t n) {
  file_off_ += n;
  if (wbuf_.size() + n > kWriteBuffer) LM_RETURN_IF_ERROR(Drain());
  if (n >= kWriteBuffer) return WriteDirect(p, n);
  wbuf_.append(static_cast<const char*>(p), n);
  return Status::OK();
}

Status ShardWriter::Drain() {
  if (wbuf_.empty()) return Status::OK();
  Status s = WriteDirect(wbuf_.data(), wbuf_.size());
  wbuf_.clear();
  return s;
}

Status ShardWriter::WriteDirect(const void* p, size_t n) {
  LM_RETURN_IF_ERROR(WriteAll(fd_, p, n, path_));
  written_ += n;
  // Start writeback as the shard grows, so that the fsync at the end has
  // little left to wait for (the hint may fail harmlessly).
  constexpr uint64_t kWriteback = 8u << 20;
  if (written_ - synced_ >= kWriteback) {
    sync_file_range(fd_, (off_t)synced_, (off_t)(written_ - synced_), SYNC_FILE_RANGE_WRITE);
    synced_ = written_;
  }
  return Status::OK();
}

Status ShardWriter::Add(const uint32_t* ids, size_t n) {
  if (fd_ < 0) return Status::IOError(path_ + ": add to a shard that is not open");
  if (tokens_ + n > (uint64_t)0xffffffffULL * opt_.block_tokens)
    return Status::Invalid(path_ + ": a shard holds at most 2^32 - 1 blocks");
  size_t full = flush_blocks_ * opt_.block_tokens * width_;
  while (n > 0) {
    size_t room = (full - pending_len_) / width_;
    size_t take = n < room ? n : room;
    uint8_t* p = reinterpret_cast<uint8_t*>(&pending_[pending_len_]);
    // The range check is a branch-free max in the same pass as the stores,
    // so that the loop vectorizes; a bad id is refused before its block is
    // written, as every flush comes after a check.
    uint32_t mx = 0;
    if (width_ == 2) {
      for (size_t i = 0; i < take; i++) {
        StoreU16(p + 2 * i, (uint16_t)ids[i]);
        mx = ids[i] > mx ? ids[i] : mx;
      }
    } else {
      for (size_t i = 0; i < take; i++) {
        StoreU32(p + 4 * i, ids[i]);
        mx = ids[i] > mx ? ids[i] : mx;
      }
    }
    if (take > 0 && mx >= opt_.vocab_size)
      return Status::Invalid("token id " + std::to_string(mx) + " outside the vocabulary (size " +
                             std::to_string(opt_.vocab_size) + ")");
    pending_len_ += take * width_;
    ids += take;
    n -= take;
    tokens_ += take;
    if (pending_len_ == full) LM_RETURN_IF_ERROR(FlushBlocks());
  }
  return Status::OK();
}

void ShardWriter::EndDocument(uint64_t number) {
  if (tokens_ == 0 || (!docs_.empty() && docs_.back() == tokens_)) return;
  docs_.push_back(tokens_);
  doc_numbers_.push_back(number);
}

// Hands the pending bytes to the worker, once it is done with the batch before,
// and writes that one meanwhile. At level 0 there is no compression to wait
// for: the blocks are written at once.
Status ShardWriter::FlushBlocks() {
  if (opt_.level == 0) {
    Status s = WriteRaw(pending_.data(), pending_len_);
    pending_len_ = 0;
    return s;
  }
  WaitWorker();
  int done = unwritten_ ? slot_ : -1;
  unwritten_ = false;
  if (pending_len_ > 0) {
    pending_.swap(inflight_);
    inflight_len_ = pending_len_;
    pending_len_ = 0;
    slot_ ^= 1;
    unwritten_ = true;
    {
      std::lock_guard<std::mutex> lk(worker_->mu);
      worker_->busy = true;
    }
    worker_->cv.notify_all();
  }
  return done >= 0 ? WriteBatch(batches_[done]) : Status::OK();
}

// Cuts n bytes of tokens into blocks (the last one may be short) and
// compresses them into *b. Runs on the worker.
// No exception leaves it (it runs on the worker and in OpenMP regions, where
// one would end the process): running out of memory becomes the batch's error.
void ShardWriter::CompressBatch(const char* base, size_t n, Batch* b) {
  size_t block_bytes = (size_t)opt_.block_tokens * width_;
  size_t nblocks = (n + block_bytes - 1) / block_bytes;
  b->out_of_memory = false;
  try {
    if (b->out.size() < nblocks) b->out.resize(nblocks);
    b->results.resize(nblocks);
    b->raw_sizes.resize(nblocks);
  } catch (const std::bad_alloc&) {
    b->blocks = 0;
    b->out_of_memory = true;
    return;
  }
  b->blocks = nblocks;
  // Blocks compress independently, so the blocks of a batch run in parallel;
  // they are written in order, so the output does not depend on -j.
  auto compress = [&](size_t i, int thread) {
    size_t off = i * block_bytes;
    size_t len = n - off < block_bytes ? n - off : block_bytes;
    std::string& out = b->out[i];
    b->raw_sizes[i] = len;
    try {
      if (out.size() < ZSTD_compressBound(len)) out.resize(ZSTD_compressBound(len));
    } catch (const std::bad_alloc&) {
      b->results[i] = (size_t)-ZSTD_error_memory_allocation;
      return;
    }
    b->results[i] = ZSTD_compressCCtx(static_cast<ZSTD_CCtx*>(cctx_[thread % cctx_.size()]),
                                      &out[0], out.size(), base + off, len, opt_.level);
  };
  if (opt_.threads > 1 && nblocks > 1) {
#pragma omp parallel for num_threads(opt_.threads) schedule(static, 1)
    for (size_t i = 0; i < nblocks; i++) compress(i, omp_get_thread_num());
  } else {
    // No OpenMP region at all: even an inactive one costs a futex call per batch.
    for (size_t i = 0; i < nblocks; i++) compress(i, 0);
  }
}

// Checksums and writes a compressed batch (on the caller's thread).
Status ShardWriter::WriteBatch(const Batch& b) {
  if (b.out_of_memory) return Status::Resource(path_ + ": out of memory compressing blocks");
  for (size_t i = 0; i < b.blocks; i++) {
    size_t z = b.results[i];
    if (ZSTD_isError(z))
      return Status::IOError(path_ + ": zstd compression failed: " + ZSTD_getErrorName(z));
    const char* c = b.out[i].data();
    seek_.push_back({file_off_, (uint32_t)z, (uint32_t)b.raw_sizes[i], Hash64(c, z)});
    LM_RETURN_IF_ERROR(WriteOut(c, z));
  }
  return Status::OK();
}

// Writes n bytes of tokens as raw blocks (level 0).
Status ShardWriter::WriteRaw(const char* base, size_t n) {
  size_t block_bytes = (size_t)opt_.block_tokens * width_;
  for (size_t off = 0; off < n; off += block_bytes) {
    size_t len = n - off < block_bytes ? n - off : block_bytes;
    seek_.push_back({file_off_, (uint32_t)len, (uint32_t)len, Hash64(base + off, len)});
    LM_RETURN_IF_ERROR(WriteOut(base + off, len));
  }
  return Status::OK();
}

Status ShardWriter::Finish(ShardSummary* out) {
  if (fd_ < 0) return Status::IOError(path_ + ": finish of a shard that is not open");
  if (tokens_ == 0) return Status::Invalid(path_ + ": a shard needs at least one token");
  // The first hands the last batch over and writes the one before; the
  // second waits for the last and writes it.
  LM_RETURN_IF_ERROR(FlushBlocks());
  LM_RETURN_IF_ERROR(FlushBlocks());
  ShardHeader h;
  h.token_width = width_;
  h.flags = opt_.level > 0 ? kShardFlagZstd : 0;
  h.vocab_size = opt_.vocab_size;
  h.eot_id = opt_.eot_id;
  h.vocab_id = opt_.vocab_id;
  h.token_count = tokens_;
  h.doc_count = docs_.size();
  h.block_tokens = opt_.block_tokens;
  h.block_count = (uint32_t)seek_.size();
  h.index_offset = file_off_;
  std::string idx;
  idx.reserve(seek_.size() * kShardSeekEntrySize + docs_.size() * 16 + 8);
  for (const SeekEntry& e : seek_) {
    PutU64(&idx, e.offset);
    PutU32(&idx, e.stored_size);
    PutU32(&idx, e.raw_size);
    PutU64(&idx, e.hash);
  }
  for (uint64_t d : docs_) PutU64(&idx, d);
  for (uint64_t d : doc_numbers_) PutU64(&idx, d);
  PutU64(&idx, Hash64(idx.data(), idx.size()));
  LM_RETURN_IF_ERROR(WriteOut(idx.data(), idx.size()));
  LM_RETURN_IF_ERROR(Drain());
  std::string hdr = EncodeShardHeader(h);
  for (size_t done = 0; done < hdr.size();) {
    ssize_t w = pwrite(fd_, hdr.data() + done, hdr.size() - done, (off_t)done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Status::FromErrno(path_, "write failed");
    done += (size_t)w;
  }
  if (fsync(fd_) != 0) return Status::FromErrno(path_, "fsync failed");
  int fd = fd_;
  fd_ = -1;
  if (close(fd) != 0) return Status::FromErrno(path_, "close failed");
  // Hash the file as it now is on disk (the header went in last, at the
  // front, so the hash cannot be kept while writing). A map of the pages just
  // written costs no copy; this also proves the bytes landed.
  MappedFile back;
  LM_RETURN_IF_ERROR(back.Open(tmp_));
  if (back.size() != file_off_)
    return Status::IOError(path_ + ": wrote " + std::to_string(file_off_) +
                           " bytes but the file has " + std::to_string(back.size()));
  out->file_hash = Hash64(back.data(), back.size());
  if (rename(tmp_.c_str(), path_.c_str()) != 0)
    return Status::FromErrno(path_, "cannot rename " + tmp_ + " into place");
  tmp_.clear();
  out->path = path_;
  out->bytes = file_off_;
  out->tokens = tokens_;
  out->documents = docs_.size();
  out->blocks = seek_.size();
  return Status::OK();
}

void ShardWriter::Abort() {
  WaitWorker();  // the batch it compresses is dropped with the shard
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  if (!tmp_.empty()) unlink(tmp_.c_str());
  tmp_.clear();
}

// ---------------------------------------------------------------------------
// ShardReader

Status ShardReader::Open(const std::string& path) {
  LM_RETURN_IF_ERROR(map_.Open(path));
  return Parse();
}

Status ShardReader::OpenMemory(const uint8_t* data, size_t size, const std::string& name) {
  map_.Borrow(data, size, name);
  return Parse();
}

Status ShardReader::Parse() {
  const std::string& path = map_.path();
  const uint8_t* p = map_.data();
  size_t size = map_.size();
  if (size == 0) return Status::Corruption(path + ": empty file (truncated shard)");
  LM_RETURN_IF_ERROR(DecodeShardHeader(p, size, &h_).With(path));
  // Divide before multiplying so that absurd counts cannot overflow.
  if (h_.doc_count > size / 16 || h_.block_count > size / kShardSeekEntrySize)
    return Status::Corruption(path + ": truncated shard (the header's counts need more than the " +
                              std::to_string(size) + " bytes of the file)");
  uint64_t index_size = (uint64_t)h_.block_count * kShardSeekEntrySize + h_.doc_count * 16 + 8;
  if (h_.index_offset > size || size - h_.index_offset != index_size) {
    uint64_t want = h_.index_offset + index_size;
    if (h_.index_offset > size || want > size)
      return Status::Corruption(path + ": truncated shard (" + std::to_string(size) +
                                " bytes; the header says " + std::to_string(want) + ")");
    return Status::Corruption(path + ": " + std::to_string(size - want) +
                              " unexpected bytes after the shard's index");
  }
  const uint8_t* idx = p + h_.index_offset;
  if (LoadU64(idx + index_size - 8) != Hash64(idx, index_size - 8))
    return Status::Corruption(path + ": index (seek table and documents) checksum mismatch");
  seek_.resize(h_.block_count);
  uint64_t next = kShardHeaderSize;
  for (uint32_t b = 0; b < h_.block_count; b++) {
    const uint8_t* e = idx + (size_t)b * kShardSeekEntrySize;
    SeekEntry& s = seek_[b];
    s.offset = LoadU64(e);
    s.stored_size = LoadU32(e + 8);
    s.raw_size = LoadU32(e + 12);
    s.hash = LoadU64(e + 16);
    std::string where = path + ": block " + std::to_string(b) + ": ";
    if (s.offset != next) return Status::Corruption(where + "seek table offset out of place");
    if (s.stored_size == 0 || s.stored_size > h_.index_offset - s.offset)
      return Status::Corruption(where + "stored size runs past the blocks");
    if (s.raw_size != (uint64_t)block_tokens(b) * h_.token_width)
      return Status::Corruption(where + "size does not match the block's token count");
    if (!h_.compressed() && s.stored_size != s.raw_size)
      return Status::Corruption(where + "uncompressed block of the wrong size");
    next = s.offset + s.stored_size;
  }
  if (next != h_.index_offset)
    return Status::Corruption(path + ": blocks do not end where the index begins");
  docs_.resize(h_.doc_count);
  doc_numbers_.resize(h_.doc_count);
  const uint8_t* d = idx + (size_t)h_.block_count * kShardSeekEntrySize;
  const uint8_t* num = d + (size_t)h_.doc_count * 8;
  for (uint64_t i = 0; i < h_.doc_count; i++) {
    docs_[i] = LoadU64(d + 8 * i);
    doc_numbers_[i] = LoadU64(num + 8 * i);
    if (docs_[i] > h_.token_count || (i > 0 && docs_[i] <= docs_[i - 1]) || docs_[i] == 0)
      return Status::Corruption(path + ": document table entry " + std::to_string(i) +
                                " out of order");
    if (i > 0 && doc_numbers_[i] <= doc_numbers_[i - 1])
      return Status::Corruption(path + ": document number " + std::to_string(i) + " out of order");
  }
  return Status::OK();
}

uint32_t ShardReader::block_tokens(uint32_t b) const {
  uint64_t first = (uint64_t)b * h_.block_tokens;
  uint64_t left = h_.token_count - first;
  return left < h_.block_tokens ? (uint32_t)left : h_.block_tokens;
}

Status ShardReader::CheckBlock(uint32_t b) const {
  if (b >= seek_.size())
    return Status::Invalid(path() + ": block " + std::to_string(b) + " out of range");
  const SeekEntry& s = seek_[b];
  if (Hash64(map_.data() + s.offset, s.stored_size) != s.hash)
    return Status::Corruption(path() + ": block " + std::to_string(b) + ": checksum mismatch");
  return Status::OK();
}

Status ShardReader::ReadBlock(uint32_t b, std::string* out) const {
  LM_RETURN_IF_ERROR(CheckBlock(b));
  const SeekEntry& s = seek_[b];
  const uint8_t* src = map_.data() + s.offset;
  out->resize(s.raw_size);
  if (!h_.compressed()) {
    std::memcpy(&(*out)[0], src, s.raw_size);
    return Status::OK();
  }
  struct DCtx {
    ZSTD_DCtx* c = ZSTD_createDCtx();
    ~DCtx() { ZSTD_freeDCtx(c); }
  };
  thread_local DCtx dctx;
  if (!dctx.c) return Status::Resource("cannot create a zstd context");
  size_t r = ZSTD_decompressDCtx(dctx.c, &(*out)[0], out->size(), src, s.stored_size);
  if (ZSTD_isError(r) || r != s.raw_size)
    return Status::Corruption(
        path() + ": block " + std::to_string(b) + ": does not decompress to " +
        std::to_string(s.raw_size) + " bytes" +
        (ZSTD_isError(r) ? std::string(" (") + ZSTD_getErrorName(r) + ")" : ""));
  return Status::OK();
}

Status ShardReader::CheckTokens(uint32_t b, const uint8_t* raw, size_t n) const {
  if (h_.token_width == 2 && h_.vocab_size >= 65536) return Status::OK();
  uint32_t limit = h_.vocab_size;
  uint32_t bad = 0;
  if (h_.token_width == 2) {
    uint16_t mx = 0;
    for (size_t i = 0; i < n; i++) {
      uint16_t t = LoadU16(raw + 2 * i);
      mx = t > mx ? t : mx;
    }
    if (mx < limit) return Status::OK();
    bad = mx;
  } else {
    uint32_t mx = 0;
    for (size_t i = 0; i < n; i++) {
      uint32_t t = LoadU32(raw + 4 * i);
      mx = t > mx ? t : mx;
    }
    if (mx < limit) return Status::OK();
    bad = mx;
  }
  return Status::Corruption(path() + ": block " + std::to_string(b) + ": token id " +
                            std::to_string(bad) + " outside the vocabulary (size " +
                            std::to_string(limit) + ")");
}

Status ShardReader::VerifyAll(std::vector<size_t>* open_ends) const {
  std::string raw;
  size_t doc = 0;
  for (uint32_t b = 0; b < h_.block_count; b++) {
    LM_RETURN_IF_ERROR(ReadBlock(b, &raw));
    uint32_t n = block_tokens(b);
    const uint8_t* p = reinterpret_cast<const uint8_t*>(raw.data());
    LM_RETURN_IF_ERROR(CheckTokens(b, p, n));
    if (h_.eot_id == 0xffffffffu) continue;
    // Every end-of-text token ends a document, and every document ends with
    // end-of-text but one cut by the end of the input (or, with open_ends,
    // by the split).
    uint64_t first = block_first_token(b);
    for (uint32_t i = 0; i < n; i++) {
      uint32_t t = h_.token_width == 2 ? LoadU16(p + 2 * i) : LoadU32(p + 4 * i);
      uint64_t pos = first + i + 1;
      bool is_end = doc < docs_.size() && docs_[doc] == pos;
      if (t == h_.eot_id) {
        if (!is_end)
          return Status::Corruption(path() + ": block " + std::to_string(b) +
                                    ": end-of-text token at " + std::to_string(pos - 1) +
                                    " missing from the document table");
      } else if (is_end && open_ends) {
        open_ends->push_back(doc);
      } else if (is_end && pos != h_.token_count) {
        return Status::Corruption(path() + ": document table entry " + std::to_string(doc) +
                                  " does not end with end-of-text");
      }
      if (is_end) doc++;
    }
  }
  return Status::OK();
}

}  // namespace lm
