// split.h: the train/val split of docs/formats/manifest.md ("The train/val
// split rule"), as pure functions of (seed, document number, document), and
// SplitRouter, which applies it to a writer's input as it streams.
//
// Under a fraction F, a document of at most kValCutTokens tokens goes whole
// to one split, by a hash of the seed, its number and its first tokens; a
// longer one is cut: its last ValTailTokens(n, F) tokens go to val, the rest
// to train. Long documents thus give exactly F of their tokens, and only the
// short ones leave the share to chance, so the val share of the tokens is F
// within a few standard deviations of sqrt(F (1 - F) sum n^2) / N over the
// short ones (manifest.md gives the bound). Every decision is a function of
// one document and its number alone, so it does not depend on how the input
// is cut into chunks, and parallel writers (each numbering its own input)
// decide independently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/spool.h"
#include "util/status.h"

namespace lm {

// Documents are hashed by their first tokens (at most this many).
constexpr size_t kSplitHeadTokens = 64;
// Under a fraction split, documents longer than this many tokens are cut.
constexpr uint64_t kValCutTokens = 1024;

// True when a whole document goes to val under a fraction split: with
// head_hash the XXH3-64 of its first (up to kSplitHeadTokens) tokens as u32
// little-endian, the top 53 bits of XXH3-64(u64 seed | u64 index | u64
// head_hash) over 2^53 are < fraction. `index` is the document's number in
// its writer's input.
bool IsValDocument(uint64_t seed, uint64_t index, uint64_t head_hash, double fraction);

// The tokens of an n-token document cut under `fraction` that go to val (its
// last ones): floor(fraction * n + 1/2), in IEEE double, at most n.
uint64_t ValTailTokens(uint64_t n, double fraction);

struct SplitRule {
  double val_fraction = 0;  // share of the tokens held out
  int64_t val_docs = -1;    // >= 0: the first val_docs documents go to val instead
  uint64_t seed = 0;
  uint64_t cut_tokens = kValCutTokens;  // fraction split: longer documents are cut
};

// Routes the tokens of one input, document by document, to the splits. Under
// a fraction split it holds each document back until the rule knows where it
// goes: a short one until its end (at most cut_tokens), a long one's tail
// until its end says how long the tail is, in a TokenSpool (bounded memory).
class SplitRouter {
 public:
  // Tokens of the current document for a split (0 train, 1 val).
  using AddFn = std::function<Status(int split, const uint32_t* ids, size_t n)>;
  // The current document's part in a split ends; `number` is the document's.
  using EndFn = std::function<void(int split, uint64_t number)>;

  // The spool's file, if one is needed, goes in spool_dir; memory_tokens
  // bounds what it holds in memory (TokenSpool).
  SplitRouter(const SplitRule& rule, const std::string& spool_dir, AddFn add, EndFn end,
              size_t memory_tokens = TokenSpool::kDefaultMemoryTokens);

  // Tokens of the current document (the first call begins one).
  Status Add(const uint32_t* ids, size_t n);
  // Ends the current document, if one was begun; the next Add begins another.
  Status EndDocument();
  bool in_document() const { return in_doc_; }
  uint64_t documents() const { return index_; }  // documents ended so far
  uint64_t cut() const { return cut_; }          // of them, cut between the splits

 private:
  int FixedSplit() const;  // the split of the current document, or -1 when it waits
  Status Release(uint64_t upto);
  Status Send(int split, uint64_t n);

  SplitRule rule_;
  AddFn add_;
  EndFn end_;
  TokenSpool held_;             // the current document's tokens not yet sent
  std::vector<uint32_t> head_;  // its first kSplitHeadTokens tokens
  uint64_t len_ = 0;            // its tokens so far
  uint64_t sent_ = 0;           // of them, sent to train (a long document's head)
  bool in_doc_ = false;
  uint64_t index_ = 0, cut_ = 0;
};

}  // namespace lm
