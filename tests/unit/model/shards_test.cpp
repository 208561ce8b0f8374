// shards_test.cpp: the optimizer's split across data-parallel ranks
// (model/shards.h): contiguous runs of whole tensors that tile the buffer,
// balanced, the same for the same inputs.
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "../test.h"
#include "model/shards.h"

using namespace lm;

static ParamLayout Layout(int layers) {
  ModelConfig c;
  c.vocab_size = 300;
  c.dim = 32;
  c.n_layers = layers;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.ffn_dim = 96;
  c.context = 64;
  c.tied_embeddings = false;
  c.Pad();
  return MakeParamLayout(c);
}

TEST(shards_tile_the_buffer_at_tensor_boundaries) {
  const ParamLayout L = Layout(4);
  std::set<size_t> starts{L.total};
  for (const TensorInfo& t : L.tensors) starts.insert(t.offset);
  for (int ranks = 1; ranks <= 9; ranks++) {
    ParamShards s = MakeParamShards(L, ranks);
    CHECK_EQ(s.ranks(), ranks);
    CHECK_EQ(s.lo(0), (size_t)0);
    CHECK_EQ(s.hi(ranks - 1), L.total);
    for (int r = 0; r < ranks; r++) {
      CHECK(s.lo(r) <= s.hi(r));
      CHECK(starts.count(s.lo(r)) == 1);  // never inside a tensor
    }
  }
}

TEST(one_rank_owns_everything) {
  const ParamLayout L = Layout(2);
  ParamShards s = MakeParamShards(L, 1);
  CHECK_EQ(s.count(0), L.total);
}

// Each cut is the boundary nearest an even share, so no shard exceeds an
// even share by more than the largest tensor.
TEST(shards_are_balanced_within_one_tensor) {
  const ParamLayout L = Layout(6);
  size_t biggest = 0;
  for (const TensorInfo& t : L.tensors) biggest = std::max(biggest, t.numel);
  for (int ranks = 2; ranks <= 8; ranks++) {
    ParamShards s = MakeParamShards(L, ranks);
    for (int r = 0; r < ranks; r++) CHECK(s.count(r) <= L.total / ranks + biggest);
  }
}

// More ranks than tensors: the extra ranks own nothing, and still tile.
TEST(more_ranks_than_tensors_leaves_some_empty) {
  const ParamLayout L = Layout(1);
  const int ranks = (int)L.tensors.size() + 3;
  ParamShards s = MakeParamShards(L, ranks);
  size_t sum = 0, empty = 0;
  for (int r = 0; r < ranks; r++) {
    sum += s.count(r);
    empty += s.count(r) == 0;
  }
  CHECK_EQ(sum, L.total);
  CHECK(empty >= 3);
}

TEST(shards_json_names_the_tensors_of_each_rank) {
  const ParamLayout L = Layout(2);
  ParamShards s = MakeParamShards(L, 2);
  nlohmann::json j = nlohmann::json::parse(ShardsJson(L, s));
  CHECK_EQ(j["ranks"].get<int>(), 2);
  CHECK_EQ(j["shards"][0]["first"].get<std::string>(), std::string("model.embed_tokens.weight"));
  CHECK_EQ(j["shards"][1]["last"].get<std::string>(), std::string("lm_head.weight"));
  CHECK_EQ(j["shards"][1]["end"].get<size_t>(), L.total);
  CHECK_EQ(j["shards"][0]["end"].get<size_t>(), j["shards"][1]["begin"].get<size_t>());
}

TEST_MAIN()
