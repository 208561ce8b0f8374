// params_test.cpp: the flat parameter layout (names, shapes, order, offsets)
// and the deterministic initialisation.
#include <cmath>
#include <vector>

#include "../test.h"
#include "model/params.h"

using namespace lm;

static ModelConfig Small(bool tied) {
  ModelConfig c;
  c.vocab_size = 300;
  c.dim = 32;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.ffn_dim = 48;
  c.context = 64;
  c.tied_embeddings = tied;
  c.Pad();
  return c;
}

TEST(layout_order_names_and_shapes) {
  ModelConfig c = Small(false);
  ParamLayout L = MakeParamLayout(c);
  std::vector<std::string> want = {"model.embed_tokens.weight"};
  for (int i = 0; i < 2; i++) {
    std::string p = "model.layers." + std::to_string(i) + ".";
    for (const char* n :
         {"input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
          "self_attn.v_proj.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
          "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"})
      want.push_back(p + n);
  }
  want.push_back("model.norm.weight");
  want.push_back("lm_head.weight");
  CHECK_EQ(L.tensors.size(), want.size());
  size_t off = 0;
  for (size_t i = 0; i < want.size() && i < L.tensors.size(); i++) {
    const TensorInfo& t = L.tensors[i];
    CHECK_EQ(t.name, want[i]);
    CHECK_EQ(t.offset, off);
    size_t n = 1;
    for (int64_t d : t.shape) n *= (size_t)d;
    CHECK_EQ(t.numel, n);
    off += t.numel;
    CHECK_EQ(t.decay, t.shape.size() == 2);
    CHECK_EQ(t.vocab_rows, t.name == "model.embed_tokens.weight" || t.name == "lm_head.weight");
    CHECK_EQ((int)L.Find(t.name), (int)i);
  }
  CHECK_EQ(L.total, off);
  CHECK_EQ(L.Find("nope"), -1);
  auto shape = [&](const char* n) { return L.tensors[L.Find(n)].shape; };
  CHECK(shape("model.embed_tokens.weight") == std::vector<int64_t>({384, 32}));
  CHECK(shape("model.layers.0.self_attn.q_proj.weight") == std::vector<int64_t>({32, 32}));
  CHECK(shape("model.layers.0.self_attn.k_proj.weight") == std::vector<int64_t>({16, 32}));
  CHECK(shape("model.layers.1.self_attn.o_proj.weight") == std::vector<int64_t>({32, 32}));
  CHECK(shape("model.layers.1.mlp.gate_proj.weight") == std::vector<int64_t>({48, 32}));
  CHECK(shape("model.layers.1.mlp.down_proj.weight") == std::vector<int64_t>({32, 48}));
  CHECK(shape("model.norm.weight") == std::vector<int64_t>({32}));
  // Stored parameters plus padding rows are what the buffer holds.
  CHECK_EQ(L.total, (size_t)c.num_params() + 2 * (384 - 300) * 32);
  ParamLayout tied = MakeParamLayout(Small(true));
  CHECK_EQ(tied.Find("lm_head.weight"), -1);
  CHECK_EQ(tied.total, L.total - 384 * 32);
}

TEST(init_is_deterministic_and_shaped) {
  ModelConfig c = Small(false);
  ParamLayout L = MakeParamLayout(c);
  std::vector<float> a(L.total), b(L.total), d(L.total);
  InitParams(c, L, 42, a.data());
  InitParams(c, L, 42, b.data());
  InitParams(c, L, 43, d.data());
  CHECK(a == b);
  CHECK(a != d);
  for (const TensorInfo& t : L.tensors) {
    const float* p = a.data() + t.offset;
    if (t.shape.size() == 1) {
      for (size_t i = 0; i < t.numel; i++) CHECK_EQ(p[i], 1.0f);
      continue;
    }
    size_t real = t.vocab_rows ? (size_t)c.vocab_size * c.dim : t.numel;
    for (size_t i = real; i < t.numel; i++) CHECK_EQ(p[i], 0.0f);  // padding rows
    double s = 0, s2 = 0;
    for (size_t i = 0; i < real; i++) s += p[i], s2 += (double)p[i] * p[i];
    double mean = s / real, sd = std::sqrt(s2 / real - mean * mean);
    bool resid =
        t.name.find("o_proj") != std::string::npos || t.name.find("down_proj") != std::string::npos;
    double want = resid ? 0.02 / std::sqrt(2.0 * c.n_layers) : 0.02;
    CHECK_NEAR(sd, want, 0.15 * want);
    CHECK_NEAR(mean, 0.0, 0.2 * want);
  }
  // A tensor's values depend on the seed and its name only: the tied model's
  // shared tensors are initialised identically.
  ModelConfig ct = Small(true);
  ParamLayout Lt = MakeParamLayout(ct);
  std::vector<float> t(Lt.total);
  InitParams(ct, Lt, 42, t.data());
  for (size_t i = 0; i < Lt.total; i++)
    if (t[i] != a[i]) {
      CHECK_EQ(t[i], a[i]);
      break;
    }
  // Known answers (to 6 decimals, so a last-bit libm difference cannot matter).
  const TensorInfo& q = L.tensors[L.Find("model.layers.0.self_attn.q_proj.weight")];
  CHECK_NEAR(a[q.offset], 0.004636, 1e-6);
  CHECK_NEAR(a[q.offset + 1], -0.023762, 1e-6);
  CHECK_NEAR(a[q.offset + 2], 0.012678, 1e-6);
  CHECK_NEAR(a[q.offset + 3], 0.018345, 1e-6);
}

TEST_MAIN()
