// shards.h: how data-parallel ranks split the optimizer (ZeRO-1): the flat
// parameter buffer (ParamLayout order, params.h) cut into one contiguous range
// per rank, each a run of whole tensors, so that an optimizer that works on
// whole matrices (Muon) finds every matrix on one rank. Rank r keeps the
// optimizer state of its range only, steps it, and sends the new weights to
// the others (backend/comm.h).
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "model/params.h"

namespace lm {

struct ParamShards {
  // ranks() + 1 offsets (floats): rank r owns [bounds[r], bounds[r + 1]);
  // bounds[0] = 0, the last is the layout's total; a range may be empty.
  std::vector<size_t> bounds{0, 0};
  int ranks() const { return (int)bounds.size() - 1; }
  size_t lo(int r) const { return bounds[(size_t)r]; }
  size_t hi(int r) const { return bounds[(size_t)r + 1]; }
  size_t count(int r) const { return hi(r) - lo(r); }
  // The part of [begin, end) that rank r owns: [first, second), empty when
  // first >= second.
  std::pair<size_t, size_t> Part(int r, size_t begin, size_t end) const {
    return {std::max(begin, lo(r)), std::min(end, hi(r))};
  }
};

// The split for `ranks` ranks: each cut at the tensor boundary nearest to an
// even share (k * total / ranks), never before the previous cut. Depends only
// on the layout and the rank count, so every rank (and a later resume) computes
// the same split. One rank: everything.
ParamShards MakeParamShards(const ParamLayout& layout, int ranks);

// trainer-state.json's record of the split: {"ranks": N, "shards": [{"rank":
// r, "begin": b, "end": e, "first": NAME, "last": NAME}, ...]} (begin/end in
// floats of the internal layout, first/last the tensors it holds; an empty
// shard has neither).
std::string ShardsJson(const ParamLayout& layout, const ParamShards& s);

}  // namespace lm
