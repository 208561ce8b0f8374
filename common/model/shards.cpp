// shards.cpp: the optimizer's split across data-parallel ranks (shards.h).
#include "model/shards.h"

#include <nlohmann/json.hpp>

namespace lm {

ParamShards MakeParamShards(const ParamLayout& layout, int ranks) {
  ParamShards s;
  if (ranks < 1) ranks = 1;
  s.bounds.assign((size_t)ranks + 1, layout.total);
  s.bounds[0] = 0;
  // Tensor boundaries, in order: 0, the end of each tensor.
  std::vector<size_t> ends{0};
  for (const TensorInfo& t : layout.tensors) ends.push_back(t.offset + t.numel);
  size_t i = 0;  // index into ends of the previous cut
  for (int k = 1; k < ranks; k++) {
    const double target = (double)layout.total * k / ranks;
    // The boundary at or after the previous cut nearest to the target.
    while (i + 1 < ends.size() && (double)ends[i + 1] <= target) i++;
    if (i + 1 < ends.size() && (double)ends[i + 1] - target < target - (double)ends[i]) i++;
    s.bounds[(size_t)k] = std::max(ends[i], s.bounds[(size_t)k - 1]);
  }
  return s;
}

std::string ShardsJson(const ParamLayout& layout, const ParamShards& s) {
  nlohmann::json j = {{"ranks", s.ranks()}, {"shards", nlohmann::json::array()}};
  for (int r = 0; r < s.ranks(); r++) {
    nlohmann::json e = {{"rank", r}, {"begin", s.lo(r)}, {"end", s.hi(r)}};
    for (const TensorInfo& t : layout.tensors) {
      if (t.offset < s.lo(r) || t.offset >= s.hi(r)) continue;
      if (!e.contains("first")) e["first"] = t.name;
      e["last"] = t.name;
    }
    j["shards"].push_back(e);
  }
  return j.dump();
}

}  // namespace lm
