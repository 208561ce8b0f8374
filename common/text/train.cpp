// train.cpp: BPE training with incremental pair counts (see train.h).
#include "text/train.h"

#include <algorithm>
#include <queue>

namespace lm {

Status ChunkCounter::Add(const char* text, size_t n) {
  ends_.clear();
  LM_RETURN_IF_ERROR(pre_->Split(text, n, &ends_));
  size_t s = 0;
  std::string key;
  for (size_t e : ends_) {
    // A huge chunk (a megabyte of one letter) would cost its full length at
    // every merge that touches it; counted in slices it stays cheap.
    for (size_t b = s; b < e; b += kMaxTrainChunk) {
      key.assign(text + b, std::min(kMaxTrainChunk, e - b));
      counts_[key]++;
    }
    s = e;
  }
  bytes_ += n;
  return Status::OK();
}

void ChunkCounter::Merge(ChunkCounter* other) {
  if (counts_.empty()) {
    counts_.swap(other->counts_);
  } else {
    for (auto& kv : other->counts_) counts_[kv.first] += kv.second;
    other->counts_.clear();
  }
  bytes_ += other->bytes_;
  other->bytes_ = 0;
}

uint32_t MinVocabSize(const std::vector<std::string>& specials) {
  uint32_t n = 256 + 1;  // the bytes and <|endoftext|>
  for (const std::string& s : specials) n += s != "<|endoftext|>";
  return n;
}

namespace {

inline uint64_t Key(uint32_t a, uint32_t b) {
  return ((uint64_t)a << 32) | b;
}

struct PairInfo {
  int64_t count = 0;
  std::vector<uint32_t> words;  // may hold stale or repeated entries
};

struct HeapItem {
  int64_t count;
  uint64_t pair;
  // priority_queue pops the largest: higher count, then smaller pair.
  bool operator<(const HeapItem& o) const {
    return count != o.count ? count < o.count : pair > o.pair;
  }
};

}  // namespace

Status TrainBpe(const std::unordered_map<std::string, uint64_t>& counts, const TrainOptions& opt,
                VocabFile* out) {
  const uint32_t least = MinVocabSize(opt.specials);
  if (opt.vocab_size < least)
    return Status::Invalid("a vocabulary of " + std::to_string(opt.vocab_size) +
                           " ids cannot hold the 256 bytes and " + std::to_string(least - 256) +
                           " special token(s)");
  uint32_t target = opt.vocab_size - (least - 256);  // ids before the specials

  // Words in a fixed order (sorted by bytes) so that nothing depends on hash order.
  std::vector<const std::pair<const std::string, uint64_t>*> sorted;
  sorted.reserve(counts.size());
  for (auto& kv : counts) sorted.push_back(&kv);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
  std::vector<std::vector<uint32_t>> words(sorted.size());
  std::vector<int64_t> wcount(sorted.size());
  for (size_t i = 0; i < sorted.size(); i++) {
    const std::string& s = sorted[i]->first;
    words[i].assign((const uint8_t*)s.data(), (const uint8_t*)s.data() + s.size());
    wcount[i] = (int64_t)sorted[i]->second;
  }
  sorted.clear();

  std::unordered_map<uint64_t, PairInfo> pairs;
  pairs.reserve(words.size() * 2);
  for (uint32_t w = 0; w < words.size(); w++) {
    auto& ws = words[w];
    for (size_t i = 0; i + 1 < ws.size(); i++) {
      PairInfo& p = pairs[Key(ws[i], ws[i + 1])];
      p.count += wcount[w];
      if (p.words.empty() || p.words.back() != w) p.words.push_back(w);
    }
  }
  std::priority_queue<HeapItem> heap;
  for (auto& kv : pairs) heap.push({kv.second.count, kv.first});

  VocabFile v;
  v.pattern_kind = opt.pattern_kind;
  v.pattern = opt.pattern;
  v.tokens.resize(256);
  std::unordered_map<std::string, uint32_t> index;
  for (int b = 0; b < 256; b++) {
    v.tokens[b].kind = TokenKind::kByte;
    v.tokens[b].bytes.assign(1, (char)b);
    index[v.tokens[b].bytes] = (uint32_t)b;
  }

  std::vector<uint32_t> merged;
  std::vector<uint8_t> created;  // merged[i] was made by this merge
  std::vector<size_t> affected;  // indices of old pairs that change
  std::vector<uint64_t> touched;
  uint32_t steps = 0;
  while (v.tokens.size() < target && !heap.empty()) {
    HeapItem top = heap.top();
    heap.pop();
    auto it = pairs.find(top.pair);
    if (it == pairs.end() || it->second.count <= 0) continue;
    if (it->second.count != top.count) {
      heap.push({it->second.count, top.pair});
      continue;
    }
    if (opt.min_frequency && (uint64_t)top.count < opt.min_frequency) break;
    uint32_t a = (uint32_t)(top.pair >> 32), b = (uint32_t)top.pair;
    std::string bytes = v.tokens[a].bytes + v.tokens[b].bytes;
    uint32_t t;
    auto found = index.find(bytes);
    if (found != index.end()) {
      t = found->second;
    } else {
      t = (uint32_t)v.tokens.size();
      VocabToken tok;
      tok.kind = TokenKind::kMerge;
      tok.left = a;
      tok.right = b;
      tok.bytes = bytes;
      index.emplace(bytes, t);
      v.tokens.push_back(std::move(tok));
    }
    std::vector<uint32_t> where = std::move(it->second.words);
    std::sort(where.begin(), where.end());
    where.erase(std::unique(where.begin(), where.end()), where.end());
    touched.clear();
    for (uint32_t w : where) {
      auto& ws = words[w];
      merged.clear();
      created.clear();
      affected.clear();
      for (size_t i = 0; i < ws.size(); i++) {
        if (i + 1 < ws.size() && ws[i] == a && ws[i + 1] == b) {
          // Old pairs i-1, i, i+1 change; the rest map one to one onto new pairs.
          for (size_t j = i == 0 ? 0 : i - 1; j <= i + 1 && j + 1 < ws.size(); j++)
            if (affected.empty() || affected.back() < j) affected.push_back(j);
          merged.push_back(t);
          created.push_back(1);
          i++;
        } else {
          merged.push_back(ws[i]);
          created.push_back(0);
        }
      }
      if (affected.empty()) continue;
      int64_t c = wcount[w];
      for (size_t j : affected) pairs[Key(ws[j], ws[j + 1])].count -= c;
      for (size_t i = 0; i + 1 < merged.size(); i++) {
        if (!created[i] && !created[i + 1]) continue;
        uint64_t k = Key(merged[i], merged[i + 1]);
        PairInfo& p = pairs[k];
        p.count += c;
        if (p.words.empty() || p.words.back() != w) p.words.push_back(w);
        touched.push_back(k);
      }
      ws.swap(merged);
    }
    pairs.erase(top.pair);
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (uint64_t k : touched) {
      auto p = pairs.find(k);
      if (p != pairs.end() && p->second.count > 0) heap.push({p->second.count, k});
    }
    if (opt.progress && (++steps & 255) == 0)
      opt.progress((uint32_t)v.tokens.size() - 256, target - 256);
  }
  VocabToken eot;
  eot.kind = TokenKind::kSpecial;
  eot.bytes = "<|endoftext|>";
  v.eot_id = (uint32_t)v.tokens.size();
  v.tokens.push_back(eot);
  for (auto& s : opt.specials) {
    if (s == "<|endoftext|>") continue;
    for (auto& t : v.tokens)
      if (t.kind == TokenKind::kSpecial && t.bytes == s)
        return Status::Usage("special token " + s + " given twice");
    VocabToken sp;
    sp.kind = TokenKind::kSpecial;
    sp.bytes = s;
    v.tokens.push_back(sp);
  }
  *out = std::move(v);
  return Status::OK();
}

}  // namespace lm
