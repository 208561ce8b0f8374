// vocab.cpp: Vocab (common/text/vocab.h): loading, tiktoken-exact BPE encoding
// and decoding.
#include "text/vocab.h"

#include <algorithm>
#include <cstring>
#include <queue>

#include "text/pretokenize.h"
#include "util/hash.h"

namespace lm {

namespace {

inline uint64_t Mix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  return k;
}

// (left id, right id) -> id of their concatenation, open addressing.
class PairMap {
 public:
  void Init(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    keys_.assign(cap, kEmpty);
    vals_.assign(cap, 0);
    mask_ = cap - 1;
  }
  void Put(uint32_t a, uint32_t b, uint32_t v) {
    uint64_t k = ((uint64_t)a << 32) | b;
    for (size_t i = Mix(k) & mask_;; i = (i + 1) & mask_) {
      if (keys_[i] == kEmpty) {
        keys_[i] = k;
        vals_[i] = v;
        return;
      }
      if (keys_[i] == k) {
        if (v < vals_[i]) vals_[i] = v;
        return;
      }
    }
  }
  inline uint32_t Get(uint32_t a, uint32_t b) const {
    uint64_t k = ((uint64_t)a << 32) | b;
    for (size_t i = Mix(k) & mask_;; i = (i + 1) & mask_) {
      if (keys_[i] == k) return vals_[i];
      if (keys_[i] == kEmpty) return Vocab::kNoId;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~0ULL;
  std::vector<uint64_t> keys_;
  std::vector<uint32_t> vals_;
  size_t mask_ = 0;
};

}  // namespace

struct Vocab::Impl {
  VocabFile file;
  uint64_t id = 0;
  uint32_t byte_id[256];
  std::vector<uint8_t> kind;  // TokenKind per id
  // bytes -> id of non-special tokens, open addressing on Hash64; the tag (high
  // half of the hash) spares most byte comparisons. Token bytes live in one
  // arena so that a probe touches little memory.
  struct Slot {
    uint32_t id, tag;
  };
  std::vector<Slot> slots;
  size_t slot_mask = 0;
  std::string arena;
  std::vector<uint32_t> arena_off;  // id -> offset; size()+1 entries
  PairMap pairs;
  std::vector<std::pair<std::string, uint32_t>> specials;
  bool special_first[256] = {false};
  std::unique_ptr<Pretokenizer> pre;

  const std::string& bytes(uint32_t i) const { return file.tokens[i].bytes; }

  uint32_t Find(const char* p, size_t n) const { return Find(p, n, Hash64(p, n)); }
  uint32_t Find(const char* p, size_t n, uint64_t h) const {
    uint32_t tag = (uint32_t)(h >> 32);
    for (size_t i = h & slot_mask;; i = (i + 1) & slot_mask) {
      const Slot& s = slots[i];
      if (s.id == kNoId) return kNoId;
      if (s.tag != tag) continue;
      uint32_t o = arena_off[s.id], len = arena_off[s.id + 1] - o;
      if (len == n && std::memcmp(arena.data() + o, p, n) == 0) return s.id;
    }
  }

  // tiktoken's merge loop, O(n^2), on tok[0..n) with rank[i] the id that
  // tok[i], tok[i+1] join into (kNoId: none): repeatedly joins the pair of
  // lowest id, leftmost on ties. Calls before(i) ahead of joining tok[i] and
  // tok[i+1]; returns how many parts are left in tok.
  template <class Before>
  size_t MergeLoop(uint32_t* tok, uint32_t* rank, size_t n, Before&& before) const {
    for (size_t i = 0; i + 1 < n; i++) rank[i] = pairs.Get(tok[i], tok[i + 1]);
    size_t m = n;
    while (m > 1) {
      uint32_t best = kNoId;
      size_t bi = 0;
      for (size_t i = 0; i + 1 < m; i++)
        if (rank[i] < best) best = rank[i], bi = i;
      if (best == kNoId) break;
      before(bi);
      tok[bi] = best;
      std::memmove(tok + bi + 1, tok + bi + 2, (m - bi - 2) * sizeof(uint32_t));
      if (bi + 2 < m) std::memmove(rank + bi + 1, rank + bi + 2, (m - bi - 2) * sizeof(uint32_t));
      m--;
      if (bi > 0) rank[bi - 1] = pairs.Get(tok[bi - 1], tok[bi]);
      if (bi + 1 < m) rank[bi] = pairs.Get(tok[bi], tok[bi + 1]);
    }
    return m;
  }

  // The merge loop on a small array: fastest for short chunks.
  void BpeSmall(const uint8_t* p, size_t n, std::vector<uint32_t>* out) const {
    uint32_t tok[256], rank[256];
    for (size_t i = 0; i < n; i++) tok[i] = byte_id[p[i]];
    size_t m = MergeLoop(tok, rank, n, [](size_t) {});
    out->insert(out->end(), tok, tok + m);
  }

  // The same merges in O(n log n): a linked list of parts and a heap of
  // candidate pairs keyed (id, position), stale entries skipped on pop. Keeps
  // a 10 MB run of one letter linear-ish where tiktoken is quadratic.
  void BpeLarge(const uint8_t* p, size_t n, std::vector<uint32_t>* out) const {
    std::vector<uint32_t> tok(n), next(n), prev(n);
    for (size_t i = 0; i < n; i++) {
      tok[i] = byte_id[p[i]];
      next[i] = (uint32_t)(i + 1);
      prev[i] = (uint32_t)(i - 1);
    }
    struct Cand {
      uint32_t rank, left, right;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
    };
    std::vector<Cand> heap_store;
    heap_store.reserve(n);
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap(std::greater<Cand>(),
                                                                          std::move(heap_store));
    for (size_t i = 0; i + 1 < n; i++) {
      uint32_t r = pairs.Get(tok[i], tok[i + 1]);
      if (r != kNoId) heap.push({r, (uint32_t)i, (uint32_t)(i + 1)});
    }
    const uint32_t kDead = kNoId;
    while (!heap.empty()) {
      Cand c = heap.top();
      heap.pop();
      if (tok[c.left] == kDead || tok[c.right] == kDead || next[c.left] != c.right) continue;
      if (pairs.Get(tok[c.left], tok[c.right]) != c.rank) continue;
      tok[c.left] = c.rank;
      tok[c.right] = kDead;
      uint32_t nr = next[c.right];
      next[c.left] = nr;
      if (nr < n) prev[nr] = c.left;
      if (c.left > 0 || prev[c.left] != (uint32_t)-1) {
        uint32_t pl = prev[c.left];
        if (pl != (uint32_t)-1) {
          uint32_t r = pairs.Get(tok[pl], tok[c.left]);
          if (r != kNoId) heap.push({r, pl, c.left});
        }
      }
      if (nr < n) {
        uint32_t r = pairs.Get(tok[c.left], tok[nr]);
        if (r != kNoId) heap.push({r, c.left, nr});
      }
    }
    for (uint32_t i = 0; i < n; i = next[i]) out->push_back(tok[i]);
  }

  // The same merges for very long chunks (a megabyte of one letter): one
  // bucket of positions per rank instead of a heap. Ranks are visited lowest
  // first; a bucket is walked left to right, which is tiktoken's leftmost-first
  // order because a merge never creates a pair of its own rank (the pair's
  // bytes are longer). A merge that creates a pair of lower rank suspends the
  // bucket until that rank is done.
  void BpeHuge(const uint8_t* p, size_t n, std::vector<uint32_t>* out) const {
    const uint32_t kDead = kNoId;
    std::vector<uint32_t> tok(n), next(n), prev(n);
    for (size_t i = 0; i < n; i++) {
      tok[i] = byte_id[p[i]];
      next[i] = (uint32_t)(i + 1);
      prev[i] = (uint32_t)(i - 1);
    }
    std::vector<std::vector<uint32_t>> bucket(kind.size());
    std::priority_queue<uint32_t, std::vector<uint32_t>, std::greater<uint32_t>> ranks;
    auto add = [&](uint32_t r, uint32_t pos) {
      if (bucket[r].empty()) ranks.push(r);
      bucket[r].push_back(pos);
    };
    for (size_t i = 0; i + 1 < n; i++) {
      uint32_t r = pairs.Get(tok[i], tok[i + 1]);
      if (r != kNoId) add(r, (uint32_t)i);
    }
    std::vector<uint32_t> v;
    while (!ranks.empty()) {
      uint32_t r = ranks.top();
      ranks.pop();
      if (bucket[r].empty()) continue;
      v.swap(bucket[r]);
      bucket[r].clear();
      if (!std::is_sorted(v.begin(), v.end())) std::sort(v.begin(), v.end());
      for (size_t k = 0; k < v.size(); k++) {
        uint32_t i = v[k];
        if (tok[i] == kDead) continue;
        uint32_t j = next[i];
        if (j >= n || pairs.Get(tok[i], tok[j]) != r) continue;
        tok[i] = r;
        tok[j] = kDead;
        uint32_t nx = next[j];
        next[i] = nx;
        if (nx < n) prev[nx] = i;
        bool suspend = false;
        uint32_t pl = prev[i];
        if (pl != (uint32_t)-1) {
          uint32_t r1 = pairs.Get(tok[pl], tok[i]);
          if (r1 != kNoId) add(r1, pl), suspend |= r1 < r;
        }
        if (nx < n) {
          uint32_t r2 = pairs.Get(tok[i], tok[nx]);
          if (r2 != kNoId) add(r2, i), suspend |= r2 < r;
        }
        if (suspend && k + 1 < v.size()) {
          if (bucket[r].empty()) ranks.push(r);
          bucket[r].insert(bucket[r].end(), v.begin() + (long)k + 1, v.end());
          break;
        }
      }
      v.clear();
    }
    for (uint32_t i = 0; i < n; i = next[i]) out->push_back(tok[i]);
  }
};

Vocab::Vocab() : impl_(new Impl) {}
Vocab::~Vocab() {
  delete impl_;
}
Vocab::Vocab(Vocab&& o) noexcept : impl_(o.impl_) {
  o.impl_ = new Impl;
}
Vocab& Vocab::operator=(Vocab&& o) noexcept {
  std::swap(impl_, o.impl_);
  return *this;
}

Status Vocab::Load(const std::string& path, Vocab* out) {
  VocabFile f;
  uint64_t id;
  LM_RETURN_IF_ERROR(ReadVocabFile(path, &f, &id));
  return FromFile(std::move(f), id, out).With(path);
}

Status Vocab::FromFile(VocabFile file, uint64_t id, Vocab* out) {
  Vocab v;
  Impl& m = *v.impl_;
  m.file = std::move(file);
  m.id = id;
  Status pattern = Pretokenizer::Create(m.file.pattern_kind, m.file.pattern, false, &m.pre);
  // A pattern read from a file is part of the file: a bad one makes the file
  // invalid, not the command line.
  if (!pattern.ok()) return Status::Invalid(pattern.message());
  size_t n = m.file.tokens.size();
  m.kind.resize(n);
  size_t plain = 0;
  for (size_t i = 0; i < n; i++) {
    const VocabToken& t = m.file.tokens[i];
    m.kind[i] = (uint8_t)t.kind;
    if (t.kind == TokenKind::kByte) m.byte_id[(uint8_t)t.bytes[0]] = (uint32_t)i;
    if (t.kind == TokenKind::kByte || t.kind == TokenKind::kMerge || t.kind == TokenKind::kLiteral)
      plain++;
    if (t.kind == TokenKind::kSpecial) {
      m.specials.push_back({t.bytes, (uint32_t)i});
      m.special_first[(uint8_t)t.bytes[0]] = true;
    }
  }
  size_t cap = 16;
  while (cap < plain * 2) cap <<= 1;
  m.slots.assign(cap, Impl::Slot{kNoId, 0});
  m.slot_mask = cap - 1;
  m.arena_off.resize(n + 1);
  for (size_t i = 0; i < n; i++) {
    m.arena_off[i] = (uint32_t)m.arena.size();
    uint8_t k = m.kind[i];
    if (k == (uint8_t)TokenKind::kUnused || k == (uint8_t)TokenKind::kSpecial) continue;
    m.arena += m.file.tokens[i].bytes;
  }
  m.arena_off[n] = (uint32_t)m.arena.size();
  for (size_t i = 0; i < n; i++) {
    uint8_t k = m.kind[i];
    if (k == (uint8_t)TokenKind::kUnused || k == (uint8_t)TokenKind::kSpecial) continue;
    const std::string& b = m.file.tokens[i].bytes;
    uint64_t h = Hash64(b.data(), b.size());
    size_t s = h & m.slot_mask;
    while (m.slots[s].id != kNoId) s = (s + 1) & m.slot_mask;
    m.slots[s] = Impl::Slot{(uint32_t)i, (uint32_t)(h >> 32)};
  }
  // Every way to cut each token into two tokens is a pair that merges into it
  // (tiktoken ranks concatenations, not recorded merges). Only cuts into two
  // lengths that some token has can be such a pair: without that filter, each
  // cut hashes its prefix, quadratic in a token's length (minutes for a
  // vocabulary of 64 KiB tokens, which the format allows).
  std::vector<bool> has_length;
  for (size_t i = 0; i < n; i++) {
    uint8_t k = m.kind[i];
    if (k == (uint8_t)TokenKind::kUnused || k == (uint8_t)TokenKind::kSpecial) continue;
    size_t len = m.file.tokens[i].bytes.size();
    if (len >= has_length.size()) has_length.resize(len + 1, false);
    has_length[len] = true;
  }
  m.pairs.Init(plain * 4);
  for (size_t i = 0; i < n; i++) {
    uint8_t k = m.kind[i];
    if (k != (uint8_t)TokenKind::kMerge && k != (uint8_t)TokenKind::kLiteral) continue;
    const std::string& b = m.file.tokens[i].bytes;
    for (size_t cut = 1; cut < b.size(); cut++) {
      if (!has_length[cut] || !has_length[b.size() - cut]) continue;
      uint32_t a = m.Find(b.data(), cut);
      if (a == kNoId) continue;
      uint32_t c = m.Find(b.data() + cut, b.size() - cut);
      if (c == kNoId) continue;
      m.pairs.Put(a, c, (uint32_t)i);
    }
  }
  *out = std::move(v);
  return Status::OK();
}

uint32_t Vocab::size() const {
  return (uint32_t)impl_->file.tokens.size();
}
uint64_t Vocab::id() const {
  return impl_->id;
}
uint32_t Vocab::eot_id() const {
  return impl_->file.eot_id;
}
bool Vocab::is_special(uint32_t id) const {
  return id < size() && impl_->kind[id] == (uint8_t)TokenKind::kSpecial;
}
bool Vocab::is_unused(uint32_t id) const {
  return id < size() && impl_->kind[id] == (uint8_t)TokenKind::kUnused;
}
const std::string& Vocab::token_bytes(uint32_t id) const {
  static const std::string kEmpty;
  return id < size() ? impl_->file.tokens[id].bytes : kEmpty;
}
const VocabFile& Vocab::file() const {
  return impl_->file;
}
PatternKind Vocab::pattern_kind() const {
  return impl_->file.pattern_kind;
}
const std::string& Vocab::pattern() const {
  return impl_->file.pattern;
}
const Pretokenizer& Vocab::pretokenizer() const {
  return *impl_->pre;
}
uint32_t Vocab::Lookup(const char* p, size_t n) const {
  return impl_->Find(p, n);
}

void Vocab::EncodeChunkForTest(const char* p, size_t n, int algo,
                               std::vector<uint32_t>* out) const {
  if (n == 0) return;
  if (algo == 0 && n <= 256)
    impl_->BpeSmall((const uint8_t*)p, n, out);
  else if (algo == 1)
    impl_->BpeLarge((const uint8_t*)p, n, out);
  else if (algo == 2)
    impl_->BpeHuge((const uint8_t*)p, n, out);
  else
    EncodeChunk(p, n, out);
}

bool Vocab::LastMerge(uint32_t id, uint32_t* left, uint32_t* right) const {
  const Impl& m = *impl_;
  if (id >= size()) return false;
  if (m.kind[id] != (uint8_t)TokenKind::kMerge && m.kind[id] != (uint8_t)TokenKind::kLiteral)
    return false;
  const std::string& b = m.bytes(id);
  std::vector<uint32_t> tok(b.size()), rank(b.size());
  for (size_t i = 0; i < b.size(); i++) tok[i] = m.byte_id[(uint8_t)b[i]];
  uint32_t a = kNoId, c = kNoId;
  size_t left_over = m.MergeLoop(tok.data(), rank.data(), b.size(), [&](size_t i) {
    a = tok[i];
    c = tok[i + 1];
  });
  if (left_over != 1 || tok[0] != id) return false;
  *left = a;
  *right = c;
  return true;
}

uint32_t Vocab::SpecialId(const std::string& text) const {
  for (auto& s : impl_->specials)
    if (s.first == text) return s.second;
  return kNoId;
}

namespace {

// A per-thread direct-mapped cache of short chunks that needed merging: prose
// repeats its multi-token words, and a hit skips the merge loop.
struct ChunkCache {
  static constexpr size_t kSlots = 1 << 14, kMaxBytes = 24, kMaxIds = 6;
  struct Entry {
    uint64_t hash;
    uint8_t len, nids;
    char bytes[kMaxBytes];
    uint32_t ids[kMaxIds];
  };
  const void* owner = nullptr;
  uint64_t owner_id = 0;
  std::vector<Entry> e;
};
thread_local ChunkCache t_cache;
// Chunks this long use the bucket merge (BpeHuge).
constexpr size_t kHugeChunk = 1 << 16;

}  // namespace

void Vocab::EncodeChunk(const char* p, size_t n, std::vector<uint32_t>* out) const {
  const Impl& m = *impl_;
  if (n == 0) return;
  if (n == 1) {
    out->push_back(m.byte_id[(uint8_t)p[0]]);
    return;
  }
  uint64_t h = Hash64(p, n);
  uint32_t whole = m.Find(p, n, h);
  if (whole != kNoId) {
    out->push_back(whole);
    return;
  }
  if (n > ChunkCache::kMaxBytes) {
    if (n <= 256)
      m.BpeSmall((const uint8_t*)p, n, out);
    else if (n < kHugeChunk)
      m.BpeLarge((const uint8_t*)p, n, out);
    else
      m.BpeHuge((const uint8_t*)p, n, out);
    return;
  }
  ChunkCache& c = t_cache;
  if (c.owner != impl_ || c.owner_id != m.id || c.e.empty()) {
    c.e.assign(ChunkCache::kSlots, ChunkCache::Entry{0, 0, 0, {}, {}});
    c.owner = impl_;
    c.owner_id = m.id;
  }
  ChunkCache::Entry& e = c.e[(h ^ (h >> 29)) & (ChunkCache::kSlots - 1)];
  if (e.hash == h && e.len == n && std::memcmp(e.bytes, p, n) == 0) {
    out->insert(out->end(), e.ids, e.ids + e.nids);
    return;
  }
  size_t before = out->size();
  m.BpeSmall((const uint8_t*)p, n, out);
  size_t k = out->size() - before;
  if (k <= ChunkCache::kMaxIds) {
    e.hash = h;
    e.len = (uint8_t)n;
    e.nids = (uint8_t)k;
    std::memcpy(e.bytes, p, n);
    std::memcpy(e.ids, out->data() + before, k * sizeof(uint32_t));
  }
}

Status Vocab::EncodeOrdinary(const char* p, size_t n, std::vector<uint32_t>* out) const {
  if (!impl_->pre) return Status::Invalid("vocabulary not loaded");
  std::vector<size_t> ends;
  LM_RETURN_IF_ERROR(impl_->pre->Split(p, n, &ends));
  size_t s = 0;
  for (size_t e : ends) {
    EncodeChunk(p + s, e - s, out);
    s = e;
  }
  return Status::OK();
}

Status Vocab::Encode(const std::string& text, bool allow_special,
                     std::vector<uint32_t>* out) const {
  const Impl& m = *impl_;
  if (!allow_special || m.specials.empty()) return EncodeOrdinary(text.data(), text.size(), out);
  size_t start = 0;
  for (size_t i = 0; i < text.size(); i++) {
    if (!m.special_first[(uint8_t)text[i]]) continue;
    size_t best_len = 0;
    uint32_t best = kNoId;
    for (auto& s : m.specials)
      if (s.first.size() > best_len && text.compare(i, s.first.size(), s.first) == 0)
        best_len = s.first.size(), best = s.second;
    if (best == kNoId) continue;
    LM_RETURN_IF_ERROR(EncodeOrdinary(text.data() + start, i - start, out));
    out->push_back(best);
    i += best_len - 1;
    start = i + 1;
  }
  return EncodeOrdinary(text.data() + start, text.size() - start, out);
}

Status Vocab::Decode(const uint32_t* ids, size_t n, std::string* out) const {
  const Impl& m = *impl_;
  for (size_t i = 0; i < n; i++) {
    uint32_t id = ids[i];
    if (id >= m.kind.size())
      return Status::Invalid("token id " + std::to_string(id) + " outside the vocabulary (size " +
                             std::to_string(m.kind.size()) + ")");
    if (m.kind[id] == (uint8_t)TokenKind::kUnused)
      return Status::Invalid("token id " + std::to_string(id) + " is unused in this vocabulary");
    out->append(m.file.tokens[id].bytes);
  }
  return Status::OK();
}

}  // namespace lm
