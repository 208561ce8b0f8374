// train.h: byte-level BPE training (lm-tokenize train).
//
// Two stages. ChunkCounter streams text through the pre-tokenizer and counts
// distinct chunks (memory grows with the number of distinct chunks, not with
// the input); several counters run in parallel and are merged. TrainBpe then
// merges pairs: pair counts live in a hash map with, per pair, the words that
// hold it; each merge rewrites only those words and updates the counts by
// difference; a max-heap with lazy invalidation picks the next pair.
//
// Ties: the pair with the highest count wins; among equal counts, the pair
// (left id, right id) that is smallest as the 64-bit number left*2^32+right.
// The result depends only on the multiset of chunks, so it is the same for any
// thread count and any run.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "format/vocab.h"
#include "text/pretokenize.h"
#include "util/status.h"

namespace lm {

// Chunks longer than this are counted as consecutive slices of this many
// bytes (so merges never span a slice boundary while training; encoding is
// not affected). Keeps training linear on pathological input and with
// pattern `none`, where a whole document is one chunk.
constexpr size_t kMaxTrainChunk = 1024;

class ChunkCounter {
 public:
  explicit ChunkCounter(const Pretokenizer* pre) : pre_(pre) {}
  // Counts the chunks of text[0, n) (one document or a safely split piece).
  Status Add(const char* text, size_t n);
  // Moves other's counts into this one.
  void Merge(ChunkCounter* other);
  const std::unordered_map<std::string, uint64_t>& counts() const { return counts_; }
  uint64_t bytes() const { return bytes_; }

 private:
  const Pretokenizer* pre_;
  std::unordered_map<std::string, uint64_t> counts_;
  std::vector<size_t> ends_;
  uint64_t bytes_ = 0;
};

struct TrainOptions {
  uint32_t vocab_size = 0;  // total ids, specials included
  PatternKind pattern_kind = PatternKind::kGpt2;
  std::string pattern;                // the regex (canonical text for named kinds)
  std::vector<std::string> specials;  // besides <|endoftext|>, which is always first
  uint64_t min_frequency = 0;         // stop when the best pair occurs fewer times
  // Called now and then with the number of merges done (for progress).
  std::function<void(uint32_t done, uint32_t total)> progress;
};

// The fewest ids a vocabulary with these specials holds: the 256 bytes,
// <|endoftext|>, and each other special.
uint32_t MinVocabSize(const std::vector<std::string>& specials);

// Ids: 0..255 are the bytes (id = byte value), then the merges in the order
// they were made, then <|endoftext|> and the other specials. When a merge
// produces bytes that are already a token (two different cuts of one string),
// its occurrences merge into that token and no id is spent. Fewer ids than
// asked result when the data runs out of pairs (or of pairs above
// min_frequency).
Status TrainBpe(const std::unordered_map<std::string, uint64_t>& counts, const TrainOptions& opt,
                VocabFile* out);

}  // namespace lm
