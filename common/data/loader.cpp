// loader.cpp: Dataset (manifest, lazily mapped shards, block cache),
// BatchSampler (seeded per-epoch permutation of windows) and the cursor.
#include "data/loader.h"

#include <sys/stat.h>

#include <algorithm>
#include <list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "data/verify.h"
#include "format/manifest.h"
#include "format/shard.h"
#include "util/codec.h"
#include "util/file.h"
#include "util/hash.h"
#include "util/json.h"

namespace lm {

const char* SplitName(Split s) {
  return s == Split::kVal ? "val" : "train";
}

namespace {

constexpr size_t kDefaultCacheBytes = 64u << 20;

class DatasetImpl : public Dataset {
 public:
  Status Init(const std::string& dir);
  const DatasetInfo& info() const override { return info_; }
  Status Read(Split split, uint64_t start, size_t n, uint32_t* out) override;
  void SetCacheBytes(size_t bytes) override {
    std::lock_guard<std::mutex> lk(mu_);
    cache_limit_ = bytes;
    Evict();
  }
  Status DocumentEnds(Split split, uint64_t start, uint64_t n, std::vector<uint64_t>* out) override;
  Status CheckShards(Split split, uint64_t n) override;

 private:
  struct Shard {
    std::string path;
    ManifestShard entry;
    std::unique_ptr<ShardReader> reader;  // opened at first read
    std::vector<bool> checked;            // uncompressed blocks already verified
  };
  struct CacheEntry {
    std::string raw;
    std::list<uint64_t>::iterator lru;
  };
  Status OpenShard(Shard* s);
  Status BlockData(uint32_t shard, uint32_t b, const uint8_t** data);
  Status CheckRange(Split split, uint64_t start, uint64_t n) const;
  void Evict();

  DatasetInfo info_;
  Manifest manifest_;  // vocabulary and writers (the shard list moved into shards_)
  std::vector<Shard> shards_;
  std::vector<uint32_t> split_shards_[2];  // indices into shards_, manifest order
  std::vector<uint64_t> split_starts_[2];  // first token of each, then the total
  std::mutex mu_;
  std::list<uint64_t> lru_;  // most recent first
  std::unordered_map<uint64_t, CacheEntry> cache_;
  size_t cache_bytes_ = 0, cache_limit_ = kDefaultCacheBytes;
  std::string spare_;  // the last evicted block's buffer
};

Status DatasetImpl::Init(const std::string& dir) {
  Manifest m;
  LM_RETURN_IF_ERROR(ReadManifest(dir, &m));
  info_.dir = dir;
  info_.vocab_size = m.vocab_size;
  info_.vocab_id = m.vocab_id;
  info_.eot_id = m.eot_id;
  info_.identity = m.Identity();
  manifest_.vocab_size = m.vocab_size;
  manifest_.vocab_id = m.vocab_id;
  manifest_.eot_id = m.eot_id;
  manifest_.token_width = m.token_width;
  manifest_.writers = m.writers;
  shards_.resize(m.shards.size());
  for (int k = 0; k < 2; k++) split_starts_[k].push_back(0);
  for (size_t i = 0; i < m.shards.size(); i++) {
    Shard& s = shards_[i];
    s.entry = m.shards[i];
    s.path = JoinPath(dir, s.entry.file);
    // Only a stat here: opening thousands of shards must stay fast.
    LM_RETURN_IF_ERROR(CheckShardFile(dir, s.entry));
    int k = s.entry.split == "val" ? 1 : 0;  // (the manifest parser keeps these sums < 2^63)
    split_shards_[k].push_back((uint32_t)i);
    split_starts_[k].push_back(split_starts_[k].back() + s.entry.tokens);
    info_.tokens[k] += s.entry.tokens;
    info_.documents[k] += s.entry.documents;
  }
  return Status::OK();
}

Status DatasetImpl::OpenShard(Shard* s) {
  std::unique_ptr<ShardReader> r(new ShardReader());
  LM_RETURN_IF_ERROR(r->Open(s->path));
  LM_RETURN_IF_ERROR(CheckShardMatchesManifest(*r, s->entry, manifest_));
  const ShardHeader& h = r->header();
  s->checked.assign(h.compressed() ? 0 : h.block_count, false);
  s->reader = std::move(r);
  return Status::OK();
}

void DatasetImpl::Evict() {
  while (cache_bytes_ > cache_limit_ && lru_.size() > 1) {
    uint64_t key = lru_.back();
    lru_.pop_back();
    auto it = cache_.find(key);
    cache_bytes_ -= it->second.raw.size();
    spare_ = std::move(it->second.raw);  // reused by the next miss: no allocation
    cache_.erase(it);
  }
}

// The decoded bytes of a block: in place for raw shards, else from the cache.
Status DatasetImpl::BlockData(uint32_t si, uint32_t b, const uint8_t** data) {
  Shard& s = shards_[si];
  const ShardReader& r = *s.reader;
  if (!r.header().compressed()) {
    if (!s.checked[b]) {
      LM_RETURN_IF_ERROR(r.CheckBlock(b));
      LM_RETURN_IF_ERROR(r.CheckTokens(b, r.RawBlock(b), r.block_tokens(b)));
      s.checked[b] = true;
    }
    *data = r.RawBlock(b);
    return Status::OK();
  }
  uint64_t key = ((uint64_t)si << 32) | b;
  auto it = cache_.find(key);
  if (it != cache_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    *data = reinterpret_cast<const uint8_t*>(it->second.raw.data());
    return Status::OK();
  }
  CacheEntry e;
  e.raw = std::move(spare_);
  spare_.clear();
  LM_RETURN_IF_ERROR(r.ReadBlock(b, &e.raw));
  LM_RETURN_IF_ERROR(
      r.CheckTokens(b, reinterpret_cast<const uint8_t*>(e.raw.data()), r.block_tokens(b)));
  lru_.push_front(key);
  e.lru = lru_.begin();
  cache_bytes_ += e.raw.size();
  auto ins = cache_.emplace(key, std::move(e)).first;
  *data = reinterpret_cast<const uint8_t*>(ins->second.raw.data());
  // The new block is at the front of the list, so eviction never frees it.
  Evict();
  return Status::OK();
}

Status DatasetImpl::CheckRange(Split split, uint64_t start, uint64_t n) const {
  uint64_t total = info_.tokens[(int)split];
  if (start > total || n > total - start)
    return Status::Invalid(info_.dir + ": tokens [" + std::to_string(start) + ", " +
                           std::to_string(start + n) + ") are outside the " + SplitName(split) +
                           " split (" + std::to_string(total) + " tokens)");
  return Status::OK();
}

Status DatasetImpl::Read(Split split, uint64_t start, size_t n, uint32_t* out) {
  LM_RETURN_IF_ERROR(CheckRange(split, start, n));
  int k = (int)split;
  const std::vector<uint64_t>& starts = split_starts_[k];
  std::lock_guard<std::mutex> lk(mu_);
  size_t i = std::upper_bound(starts.begin(), starts.end(), start) - starts.begin() - 1;
  while (n > 0) {
    uint32_t si = split_shards_[k][i];
    Shard& s = shards_[si];
    if (!s.reader) LM_RETURN_IF_ERROR(OpenShard(&s));
    const ShardReader& r = *s.reader;
    int width = r.header().token_width;
    uint64_t off = start - starts[i];
    while (n > 0 && off < s.entry.tokens) {
      uint32_t b = (uint32_t)(off / r.header().block_tokens);
      uint64_t in_block = off - r.block_first_token(b);
      uint64_t avail = r.block_tokens(b) - in_block;
      size_t take = n < avail ? n : (size_t)avail;
      const uint8_t* data = nullptr;
      LM_RETURN_IF_ERROR(BlockData(si, b, &data));
      DecodeTokens(data + in_block * width, width, take, out);
      out += take;
      n -= take;
      off += take;
      start += take;
    }
    i++;
  }
  return Status::OK();
}

Status DatasetImpl::CheckShards(Split split, uint64_t n) {
  int k = (int)split;
  std::lock_guard<std::mutex> lk(mu_);
  for (size_t i = 0; i < split_shards_[k].size() && split_starts_[k][i] < n; i++) {
    Shard& s = shards_[split_shards_[k][i]];
    if (!s.reader) LM_RETURN_IF_ERROR(OpenShard(&s));
  }
  return Status::OK();
}

Status DatasetImpl::DocumentEnds(Split split, uint64_t start, uint64_t n,
                                 std::vector<uint64_t>* out) {
  out->clear();
  LM_RETURN_IF_ERROR(CheckRange(split, start, n));
  int k = (int)split;
  const std::vector<uint64_t>& starts = split_starts_[k];
  std::lock_guard<std::mutex> lk(mu_);
  uint64_t end = start + n;
  size_t i = std::upper_bound(starts.begin(), starts.end(), start) - starts.begin() - 1;
  for (; i + 1 < starts.size() && starts[i] < end; i++) {
    Shard& s = shards_[split_shards_[k][i]];
    if (!s.reader) LM_RETURN_IF_ERROR(OpenShard(&s));
    for (uint64_t d : s.reader->doc_ends()) {
      uint64_t pos = starts[i] + d;
      if (pos > start && pos <= end) out->push_back(pos);
    }
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------
// The epoch's order: a keyed 4-round Feistel bijection on [0, 2^bits), with
// cycle-walking down to [0, windows). O(1) memory whatever the dataset size.

uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class Permutation {
 public:
  Permutation(uint64_t n, uint64_t seed, uint64_t epoch) : n_(n) {
    int bits = 2;
    while (bits < 64 && (1ULL << bits) < n) bits++;
    if (bits & 1) bits++;
    half_ = bits / 2;
    mask_ = half_ == 32 ? 0xffffffffULL : (1ULL << half_) - 1;
    for (int r = 0; r < 4; r++) {
      uint8_t b[24];
      StoreU64(b, seed);
      StoreU64(b + 8, epoch);
      StoreU64(b + 16, (uint64_t)r);
      keys_[r] = Hash64(b, sizeof b);
    }
  }
  uint64_t operator()(uint64_t x) const {
    do {
      uint64_t l = x >> half_, r = x & mask_;
      for (int i = 0; i < 4; i++) {
        uint64_t t = l ^ (Mix64(keys_[i] ^ r) & mask_);
        l = r;
        r = t;
      }
      x = (l << half_) | r;
    } while (x >= n_);
    return x;
  }

 private:
  uint64_t n_, mask_;
  int half_;
  uint64_t keys_[4];
};

class BatchSamplerImpl : public BatchSampler {
 public:
  BatchSamplerImpl(Dataset* ds, Split split, int T, uint64_t windows, uint64_t seed)
      : ds_(ds), split_(split), T_(T), windows_(windows) {
    cur_.seed = seed;
  }
  uint64_t windows_per_epoch() const override { return windows_; }
  Status Next(int global_batch, int row_begin, int rows, uint32_t* tokens) override {
    if (global_batch < 1 || row_begin < 0 || rows < 0 || row_begin + rows > global_batch)
      return Status::Invalid("batch rows [" + std::to_string(row_begin) + ", " +
                             std::to_string(row_begin + rows) + ") outside a global batch of " +
                             std::to_string(global_batch));
    for (int j = 0; j < rows; j++) {
      uint64_t g = cur_.index + (uint64_t)(row_begin + j);
      uint64_t epoch = cur_.epoch + g / windows_;
      uint64_t w = Perm(epoch)(g % windows_);
      LM_RETURN_IF_ERROR(
          ds_->Read(split_, w * (uint64_t)T_, (size_t)T_ + 1, tokens + (size_t)j * (T_ + 1)));
    }
    cur_.index += (uint64_t)global_batch;
    cur_.epoch += cur_.index / windows_;
    cur_.index %= windows_;
    return Status::OK();
  }
  BatchCursor cursor() const override { return cur_; }
  Status Seek(const BatchCursor& c) override {
    cur_ = c;
    cur_.epoch += cur_.index / windows_;
    cur_.index %= windows_;
    return Status::OK();
  }

 private:
  const Permutation& Perm(uint64_t epoch) {
    if (!perm_ || perm_epoch_ != epoch || perm_seed_ != cur_.seed) {
      perm_.reset(new Permutation(windows_, cur_.seed, epoch));
      perm_epoch_ = epoch;
      perm_seed_ = cur_.seed;
    }
    return *perm_;
  }
  Dataset* ds_;
  Split split_;
  int T_;
  uint64_t windows_;
  BatchCursor cur_;
  std::unique_ptr<Permutation> perm_;
  uint64_t perm_epoch_ = 0, perm_seed_ = 0;
};

}  // namespace

Status Dataset::Open(const std::string& dir, std::unique_ptr<Dataset>* out) {
  std::unique_ptr<DatasetImpl> d(new DatasetImpl());
  LM_RETURN_IF_ERROR(d->Init(dir));
  *out = std::move(d);
  return Status::OK();
}

Status BatchSampler::Create(Dataset* ds, Split split, int T, uint64_t seed,
                            std::unique_ptr<BatchSampler>* out) {
  if (T < 1) return Status::Invalid("sequence length must be at least 1");
  uint64_t n = ds->info().tokens[(int)split];
  if (n < (uint64_t)T + 1)
    return Status::Invalid(ds->info().dir + ": the " + SplitName(split) + " split has " +
                           std::to_string(n) + " tokens, fewer than one sequence of " +
                           std::to_string(T + 1));
  out->reset(new BatchSamplerImpl(ds, split, T, (n - 1) / (uint64_t)T, seed));
  return Status::OK();
}

std::string BatchCursor::ToJson() const {
  nlohmann::ordered_json j;
  j["seed"] = seed;
  j["epoch"] = epoch;
  j["index"] = index;
  return j.dump();
}

Status BatchCursor::FromJson(const std::string& text, BatchCursor* out) {
  nlohmann::json j;
  if (!ParseJsonText(text, &j).ok() || !j.is_object())
    return Status::Invalid("batch cursor: not a JSON object");
  BatchCursor c;
  uint64_t* fields[3] = {&c.seed, &c.epoch, &c.index};
  const char* names[3] = {"seed", "epoch", "index"};
  for (int i = 0; i < 3; i++) {
    auto it = j.find(names[i]);
    if (it == j.end() || !it->is_number_unsigned())
      return Status::Invalid(std::string("batch cursor: \"") + names[i] +
                             "\" must be a non-negative integer");
    *fields[i] = it->get<uint64_t>();
  }
  *out = c;
  return Status::OK();
}

SequentialReader::SequentialReader(Dataset* ds, Split split)
    : ds_(ds), split_(split), total_(ds->info().tokens[(int)split]) {}

Status SequentialReader::Next(size_t max, uint32_t* out, size_t* got) {
  uint64_t left = total_ - pos_;
  size_t n = max < left ? max : (size_t)left;
  *got = 0;
  if (n == 0) return Status::OK();
  LM_RETURN_IF_ERROR(ds_->Read(split_, pos_, n, out));
  pos_ += n;
  *got = n;
  return Status::OK();
}

Status SequentialReader::Seek(uint64_t pos) {
  if (pos > total_) return Status::Invalid("seek past the end of the split");
  pos_ = pos;
  return Status::OK();
}

}  // namespace lm
