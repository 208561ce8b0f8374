// pack.cpp: the dataset writer behind lm-pack (see pack.h).
#include "data/pack.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <ctime>
#include <random>

#include "util/codec.h"
#include "util/file.h"
#include "util/hash.h"
#include "util/human.h"
#include "util/signals.h"

namespace lm {

namespace {

const char* const kSplitNames[2] = {"train", "val"};
const char* const kExistingDataset = ": already holds a dataset";

// ---------------------------------------------------------------------------
// Signal cleanup. Shard names are fixed by (dir, writer id, split, sequence
// number), so a handler can rebuild and unlink them from plain memory without
// allocating.

constexpr int kMaxDir = 4000;

}  // namespace

// What the signal handler needs to remove a live writer's files, in plain memory.
struct ShardCleanup {
  char dir[kMaxDir];
  char id[17];
  std::atomic<uint64_t> count[2];    // shards begun per split
  std::atomic<bool> created{false};  // the writer made dir: remove it if empty
};

namespace {

// Writes "DIR/[.]SPLIT-ID-NNNNNN.lms[.tmp]" into buf (async-signal-safe).
void FormatShardPath(char* buf, const char* dir, const char* split, const char* id, uint64_t seq,
                     bool temp) {
  char* p = buf;
  for (const char* s = dir; *s;) *p++ = *s++;
  if (p != buf && p[-1] != '/') *p++ = '/';
  if (temp) *p++ = '.';
  for (const char* s = split; *s;) *p++ = *s++;
  *p++ = '-';
  for (const char* s = id; *s;) *p++ = *s++;
  *p++ = '-';
  char digits[24];
  int n = 0;
  do {
    digits[n++] = (char)('0' + seq % 10);
    seq /= 10;
  } while (seq > 0 || n < 6);
  while (n > 0) *p++ = digits[--n];
  for (const char* s = ".lms"; *s;) *p++ = *s++;
  if (temp)
    for (const char* s = ".tmp"; *s;) *p++ = *s++;
  *p = 0;
}

// Writes "DIR/.writer-ID.lock" into buf (async-signal-safe).
void FormatWriterLockPath(char* buf, const char* dir, const char* id) {
  char* p = buf;
  for (const char* s = dir; *s;) *p++ = *s++;
  if (p != buf && p[-1] != '/') *p++ = '/';
  for (const char* s = ".writer-"; *s;) *p++ = *s++;
  for (const char* s = id; *s;) *p++ = *s++;
  for (const char* s = ".lock"; *s;) *p++ = *s++;
  *p = 0;
}

// Removes a live writer's shards, temporaries and lock (async-signal-safe).
void RemoveShardsOnSignal(const void* arg) {
  const ShardCleanup& c = *static_cast<const ShardCleanup*>(arg);
  char path[kMaxDir + 128];
  for (int k = 0; k < 2; k++) {
    uint64_t n = c.count[k].load();
    for (uint64_t q = 0; q < n; q++) {
      FormatShardPath(path, c.dir, kSplitNames[k], c.id, q, false);
      unlink(path);
      FormatShardPath(path, c.dir, kSplitNames[k], c.id, q, true);
      unlink(path);
    }
  }
  FormatWriterLockPath(path, c.dir, c.id);
  unlink(path);
  if (c.created.load()) rmdir(c.dir);
}

// The index of the first `t` in ids[i, n), or n. Eight at a time through a
// branch-free test that vectorizes; documents run to thousands of tokens.
size_t FindToken(const uint32_t* ids, size_t i, size_t n, uint32_t t) {
  for (; i + 8 <= n; i += 8) {
    uint32_t hit = 0;
    for (size_t k = 0; k < 8; k++) hit |= ids[i + k] == t;
    if (hit) break;
  }
  while (i < n && ids[i] != t) i++;
  return i;
}

Status CheckVocab(const Manifest& m, const TokenStreamInfo& v, const std::string& dir) {
  if (m.vocab_id != v.vocab_id || m.vocab_size != v.vocab_size)
    return Status::Invalid(JoinPath(dir, kManifestName) + ": the dataset's vocabulary is " +
                           HashHex(m.vocab_id) + " (size " + std::to_string(m.vocab_size) +
                           ") but the input's is " + HashHex(v.vocab_id) + " (size " +
                           std::to_string(v.vocab_size) + "); a dataset holds one vocabulary");
  if (m.eot_id != v.eot_id)
    return Status::Invalid(JoinPath(dir, kManifestName) + ": the dataset's end-of-text id is " +
                           EotName(m.eot_id) + " but the input's is " + EotName(v.eot_id));
  return Status::OK();
}

}  // namespace

bool IsExistingDataset(const Status& s) {
  const std::string& m = s.message();
  const size_t n = strlen(kExistingDataset);
  return s.code() == Status::kInvalid && m.size() >= n &&
         m.compare(m.size() - n, n, kExistingDataset) == 0;
}

uint64_t MaxShardTokens(uint32_t block_tokens) {
  return 0xffffffffULL * block_tokens;
}

Status CheckPackOptions(const PackOptions& opt) {
  if (opt.dir.empty()) return Status::Invalid("no dataset directory");
  if (opt.block_tokens == 0 || opt.block_tokens > kShardMaxBlockTokens)
    return Status::Invalid("blocks of " + std::to_string(opt.block_tokens) +
                           " tokens: a block holds 1 to " + std::to_string(kShardMaxBlockTokens) +
                           " tokens");
  if (opt.shard_tokens == 0 || opt.shard_tokens > MaxShardTokens(opt.block_tokens))
    return Status::Invalid("shards of " + std::to_string(opt.shard_tokens) +
                           " tokens: a shard holds at least 1 token and at most 2^32 - 1 blocks");
  if (!(opt.val_fraction >= 0 && opt.val_fraction <= 1))
    return Status::Invalid("a val fraction of " + std::to_string(opt.val_fraction) +
                           ": a fraction is in [0, 1]");
  if (opt.level < 0 || opt.level > 22)
    return Status::Invalid("zstd level " + std::to_string(opt.level) + ": levels are 0 to 22");
  return Status::OK();
}

Status DatasetWriter::Create(const PackOptions& opt, const TokenStreamInfo& vocab,
                             std::unique_ptr<DatasetWriter>* out) {
  LM_RETURN_IF_ERROR(CheckPackOptions(opt));
  if (PathExists(opt.dir) && !IsDirectory(opt.dir))
    return Status::Invalid(opt.dir + ": exists and is not a directory");
  bool created = !PathExists(opt.dir);
  LM_RETURN_IF_ERROR(MakeDirs(opt.dir));
  // Refuse early what the commit would refuse (it checks again under the lock).
  Manifest m;
  Status s = ReadManifest(opt.dir, &m);
  if (s.ok()) {
    if (!opt.append) return Status::Invalid(opt.dir + kExistingDataset);
    LM_RETURN_IF_ERROR(CheckVocab(m, vocab, opt.dir));
  } else if (s.code() != Status::kNotFound) {
    return s;
  }
  std::unique_ptr<DatasetWriter> w(new DatasetWriter());
  w->opt_ = opt;
  w->created_dir_ = created;
  if (w->opt_.threads < 1) w->opt_.threads = 1;
  w->vocab_ = vocab;
  SplitRule rule;
  rule.val_fraction = opt.val_fraction;
  rule.val_docs = opt.val_docs;
  rule.seed = opt.seed;
  DatasetWriter* self = w.get();
  w->router_.reset(new SplitRouter(
      rule, opt.dir,
      [self](int k, const uint32_t* ids, size_t n) { return self->AddRun(k, ids, n); },
      [self](int k, uint64_t number) { self->EndPart(k, number); }));
  std::random_device rd;
  uint64_t r = ((uint64_t)rd() << 32) ^ rd() ^ ((uint64_t)getpid() << 16) ^ (uint64_t)time(nullptr);
  w->id_ = HashHex(Hash64(&r, sizeof r));
  w->stats_.writer = w->id_;
  if (opt.dir.size() < (size_t)kMaxDir) {
    w->cleanup_.reset(new ShardCleanup());
    ShardCleanup& c = *w->cleanup_;
    std::memcpy(c.dir, opt.dir.c_str(), opt.dir.size() + 1);
    std::memcpy(c.id, w->id_.c_str(), sizeof c.id);
    c.count[0].store(0);
    c.count[1].store(0);
    c.created.store(created);
    w->slot_ = RegisterCleanup(RemoveShardsOnSignal, w->cleanup_.get());
  }
  // Held until the run ends, before any shard exists: lm-pack clean removes
  // only the files of writers whose lock is free (killed ones).
  std::string lock = JoinPath(opt.dir, WriterLockName(w->id_));
  s = w->lock_.LockRemovable(lock);
  if (!s.ok() && !PathExists(opt.dir)) {
    // A concurrent writer that made DIR, then failed, removed it while empty.
    LM_RETURN_IF_ERROR(MakeDirs(opt.dir));
    w->created_dir_ = true;
    if (w->cleanup_) w->cleanup_->created.store(true);
    s = w->lock_.LockRemovable(lock);
  }
  LM_RETURN_IF_ERROR(s);
  *out = std::move(w);
  return Status::OK();
}

DatasetWriter::~DatasetWriter() {
  if (!committed_) RemoveFiles();
  lock_.RemoveAndUnlock();  // after the files: clean must not take them for a dead writer's
  // A directory this writer made goes too if it failed, when nothing else is
  // in it (rmdir fails otherwise, e.g. when a concurrent writer uses it).
  if (!committed_ && created_dir_) rmdir(opt_.dir.c_str());
  UnregisterCleanup(slot_);
}

std::string WriterLockName(const std::string& writer_id) {
  return ".writer-" + writer_id + ".lock";
}

std::string DatasetWriter::ShardName(int split, uint64_t seq) const {
  char b[64];
  snprintf(b, sizeof b, "%s-%s-%06llu.lms", kSplitNames[split], id_.c_str(),
           (unsigned long long)seq);
  return b;
}

void DatasetWriter::RemoveFiles() {
  for (int k = 0; k < 2; k++) writers_[k].Abort();
  for (const ManifestShard& s : done_) unlink(JoinPath(opt_.dir, s.file).c_str());
  done_.clear();
}

Status DatasetWriter::CloseShard(int k) {
  if (!writers_[k].is_open()) return Status::OK();
  ShardSummary sum;
  LM_RETURN_IF_ERROR(writers_[k].Finish(&sum));
  ManifestShard e;
  e.file = BaseName(sum.path);
  e.split = kSplitNames[k];
  e.bytes = sum.bytes;
  e.tokens = sum.tokens;
  e.documents = sum.documents;
  e.blocks = sum.blocks;
  e.hash = sum.file_hash;
  e.level = opt_.level;
  e.writer = id_;
  done_.push_back(e);
  stats_.shards[k]++;
  stats_.bytes += sum.bytes;
  return Status::OK();
}

Status DatasetWriter::AddRun(int k, const uint32_t* ids, size_t n) {
  while (n > 0) {
    ShardWriter& w = writers_[k];
    if (w.is_open() && w.tokens() >= opt_.shard_tokens) LM_RETURN_IF_ERROR(CloseShard(k));
    if (!w.is_open()) {
      ShardWriter::Options o;
      o.vocab_size = vocab_.vocab_size;
      o.eot_id = vocab_.eot_id;
      o.vocab_id = vocab_.vocab_id;
      o.block_tokens = opt_.block_tokens;
      o.level = opt_.level;
      o.threads = opt_.threads;
      std::string name = ShardName(k, seq_[k]);
      o.temp_path = JoinPath(opt_.dir, "." + name + ".tmp");
      // Count it before the file exists, so that a signal handler sees it.
      if (cleanup_) cleanup_->count[k].store(seq_[k] + 1);
      seq_[k]++;
      // DIR cannot have gone meanwhile: this writer's lock file, made in
      // Create, keeps it from being empty, so another writer's rmdir fails.
      LM_RETURN_IF_ERROR(w.Open(JoinPath(opt_.dir, name), o));
    }
    uint64_t room = opt_.shard_tokens - w.tokens();
    size_t take = n < room ? n : (size_t)room;
    LM_RETURN_IF_ERROR(w.Add(ids, take));
    stats_.tokens[k] += take;
    ids += take;
    n -= take;
  }
  return Status::OK();
}

void DatasetWriter::EndPart(int k, uint64_t number) {
  writers_[k].EndDocument(number);
  stats_.docs[k]++;
}

Status DatasetWriter::Add(const uint32_t* ids, size_t n) {
  if (committed_) return Status::Invalid("add to a dataset writer already finished");
  size_t i = 0;
  while (i < n) {
    // The run up to and including the next end-of-text.
    size_t j = FindToken(ids, i, n, vocab_.eot_id);
    bool ends = j < n;
    if (ends) j++;
    LM_RETURN_IF_ERROR(router_->Add(ids + i, j - i));
    if (ends) LM_RETURN_IF_ERROR(router_->EndDocument());
    i = j;
  }
  return Status::OK();
}

// Under DIR/.lock: the manifest to add to, or a new one for a new dataset.
Status DatasetWriter::LoadManifest(Manifest* m) const {
  Status s = ReadManifest(opt_.dir, m);
  if (s.ok())
    return opt_.append ? CheckVocab(*m, vocab_, opt_.dir)
                       : Status::Invalid(opt_.dir + kExistingDataset);
  if (s.code() != Status::kNotFound) return s;
  *m = Manifest();
  m->vocab_size = vocab_.vocab_size;
  m->vocab_id = vocab_.vocab_id;
  m->eot_id = vocab_.eot_id;
  m->token_width = vocab_.width();
  return Status::OK();
}

ManifestWriter DatasetWriter::WriterEntry() const {
  ManifestWriter w;
  w.id = id_;
  w.seed = opt_.seed;
  w.val_fraction = opt_.val_fraction;
  w.val_docs = opt_.val_docs;
  if (opt_.val_docs < 0) w.val_cut = kValCutTokens;
  w.documents = stats_.documents;
  w.documents_known = true;
  w.created = NowUtcIso();
  w.label = opt_.label;
  return w;
}

// Adds this run's shards and entry to m and writes it; committed_ once the
// rename happened.
Status DatasetWriter::Commit(Manifest* m) {
  m->shards.insert(m->shards.end(), done_.begin(), done_.end());
  m->writers.push_back(WriterEntry());
  SignalBlock block;
  Status s = WriteManifest(opt_.dir, *m);
  if (!s.ok()) {
    // The rename may have happened before the failure (a directory fsync):
    // then the manifest lists the shards and they must stay.
    Manifest now;
    if (ReadManifest(opt_.dir, &now).ok() && !done_.empty())
      for (const ManifestShard& e : now.shards)
        if (e.file == done_[0].file) committed_ = true;
  } else {
    committed_ = true;
  }
  if (committed_) {
    UnregisterCleanup(slot_);
    slot_ = -1;
    // A signal that came during the commit is pending; delivered now, it
    // would end with 128+N a run whose shards are already in the manifest,
    // and a script trusting the status would pack the input again. The run
    // is done: take the signal here and say so.
    while (int sig = TakePendingStopSignal()) stats_.late_signals.push_back(sig);
  }
  return s;
}

Status DatasetWriter::Finish(PackStats* stats) {
  if (committed_) return Status::Invalid("dataset writer already finished");
  // The input's last document may have no end-of-text: it still ends here.
  Status s = router_->EndDocument();
  stats_.documents = router_->documents();
  stats_.cut = router_->cut();
  if (s.ok() && stats_.tokens[0] + stats_.tokens[1] == 0)
    s = Status::Invalid("empty input: no tokens to pack");
  for (int k = 0; k < 2 && s.ok(); k++) s = CloseShard(k);
  if (s.ok()) s = SyncDir(opt_.dir);
  FileLock lock;
  const std::string lock_path = JoinPath(opt_.dir, ".lock");
  bool held = false;
  if (s.ok()) s = lock.TryLock(lock_path, &held);
  if (s.ok() && !held) {
    // Another writer is committing (or hung holding the lock): say why we stop.
    if (opt_.waiting) opt_.waiting(lock_path);
    s = lock.Lock(lock_path);
  }
  Manifest m;
  if (s.ok()) s = LoadManifest(&m);
  if (s.ok()) s = Commit(&m);
  if (!s.ok()) {
    if (!committed_) RemoveFiles();
    return s;
  }
  *stats = stats_;
  return Status::OK();
}

}  // namespace lm
