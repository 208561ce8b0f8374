// split.cpp: the train/val split rule and SplitRouter (see split.h).
#include "data/split.h"

#include <algorithm>
#include <cmath>

#include "util/codec.h"
#include "util/hash.h"

namespace lm {

bool IsValDocument(uint64_t seed, uint64_t index, uint64_t head_hash, double fraction) {
  uint8_t b[24];
  StoreU64(b, seed);
  StoreU64(b + 8, index);
  StoreU64(b + 16, head_hash);
  double u = (double)(Hash64(b, sizeof b) >> 11) * (1.0 / 9007199254740992.0);
  return u < fraction;
}

uint64_t ValTailTokens(uint64_t n, double fraction) {
  double v = std::floor(fraction * (double)n + 0.5);
  if (!(v > 0)) return 0;
  return v >= (double)n ? n : (uint64_t)v;
}

SplitRouter::SplitRouter(const SplitRule& rule, const std::string& spool_dir, AddFn add, EndFn end,
                         size_t memory_tokens)
    : rule_(rule), add_(std::move(add)), end_(std::move(end)), held_(spool_dir, memory_tokens) {}

// Documents whose split is known before their end: all of them under
// --val-docs, and under a fraction of 0 or 1 (every document's tokens go to
// train, or to val: F n rounds to n and u < 1).
int SplitRouter::FixedSplit() const {
  if (rule_.val_docs >= 0) return index_ < (uint64_t)rule_.val_docs ? 1 : 0;
  if (rule_.val_fraction <= 0) return 0;
  if (rule_.val_fraction >= 1) return 1;
  return -1;
}

Status SplitRouter::Send(int split, uint64_t n) {
  return held_.Pop(n, [&](const uint32_t* ids, size_t k) { return add_(split, ids, k); });
}

// Sends to train what is sure to be in the head of a long document: the
// tokens before its cut were it to end now. The cut only moves on as the
// document grows (ValTailTokens grows by at most one a token).
Status SplitRouter::Release(uint64_t upto) {
  if (upto <= sent_) return Status::OK();
  LM_RETURN_IF_ERROR(Send(0, upto - sent_));
  sent_ = upto;
  return Status::OK();
}

Status SplitRouter::Add(const uint32_t* ids, size_t n) {
  if (n == 0) return Status::OK();
  in_doc_ = true;
  const int fixed = FixedSplit();
  if (fixed >= 0) {
    len_ += n;
    return add_(fixed, ids, n);
  }
  if (head_.size() < kSplitHeadTokens)
    head_.insert(head_.end(), ids, ids + std::min(n, kSplitHeadTokens - head_.size()));
  LM_RETURN_IF_ERROR(held_.Push(ids, n));
  len_ += n;
  if (len_ > rule_.cut_tokens)
    LM_RETURN_IF_ERROR(Release(len_ - ValTailTokens(len_, rule_.val_fraction)));
  return Status::OK();
}

Status SplitRouter::EndDocument() {
  if (!in_doc_) return Status::OK();
  const int fixed = FixedSplit();
  if (fixed >= 0) {
    end_(fixed, index_);
  } else if (len_ <= rule_.cut_tokens) {
    uint8_t b[kSplitHeadTokens * 4];
    for (size_t i = 0; i < head_.size(); i++) StoreU32(b + 4 * i, head_[i]);
    const int k = IsValDocument(rule_.seed, index_, Hash64(b, head_.size() * 4), rule_.val_fraction);
    LM_RETURN_IF_ERROR(Send(k, held_.size()));
    end_(k, index_);
  } else {
    // The head (train) ends without end-of-text; the tail, a document of the
    // val split under the same number, follows that split's last end-of-text.
    const uint64_t head = std::max(sent_, len_ - ValTailTokens(len_, rule_.val_fraction));
    LM_RETURN_IF_ERROR(Release(head));
    if (head > 0) end_(0, index_);
    if (head < len_) {
      LM_RETURN_IF_ERROR(Send(1, len_ - head));
      end_(1, index_);
    }
    cut_ += head > 0 && head < len_;
  }
  head_.clear();
  len_ = sent_ = 0;
  in_doc_ = false;
  index_++;
  return Status::OK();
}

}  // namespace lm
