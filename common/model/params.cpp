// params.cpp: the flat parameter layout (Hugging Face Llama names) and the
// deterministic initialisation.
#include "model/params.h"

#include "util/hash.h"

#include <cmath>

namespace lm {

int ParamLayout::Find(const std::string& name) const {
  for (size_t i = 0; i < tensors.size(); i++)
    if (tensors[i].name == name) return (int)i;
  return -1;
}

const char* ParamGroupName(ParamGroup g) {
  switch (g) {
    case ParamGroup::kEmbedding:
      return "embedding";
    case ParamGroup::kHead:
      return "head";
    case ParamGroup::kNorm:
      return "norm";
    case ParamGroup::kMatrix:
      break;
  }
  return "matrix";
}

ParamLayout MakeParamLayout(const ModelConfig& c) {
  ParamLayout L;
  auto add = [&L](const std::string& name, std::vector<int64_t> shape, bool decay, bool vocab) {
    TensorInfo t;
    t.name = name;
    t.shape = std::move(shape);
    t.numel = 1;
    for (int64_t d : t.shape) t.numel *= (size_t)d;
    t.offset = L.total;
    t.decay = decay;
    t.vocab_rows = vocab;
    t.group = vocab ? (name == "lm_head.weight" ? ParamGroup::kHead : ParamGroup::kEmbedding)
                    : (t.shape.size() == 1 ? ParamGroup::kNorm : ParamGroup::kMatrix);
    L.total += t.numel;
    L.tensors.push_back(std::move(t));
  };
  const int64_t d = c.dim, qd = (int64_t)c.n_heads * c.head_dim(), kvd = c.kv_dim(), f = c.ffn_dim,
                vp = c.padded_vocab;
  add("model.embed_tokens.weight", {vp, d}, true, true);
  for (int i = 0; i < c.n_layers; i++) {
    std::string p = "model.layers." + std::to_string(i) + ".";
    add(p + "input_layernorm.weight", {d}, false, false);
    add(p + "self_attn.q_proj.weight", {qd, d}, true, false);
    add(p + "self_attn.k_proj.weight", {kvd, d}, true, false);
    add(p + "self_attn.v_proj.weight", {kvd, d}, true, false);
    add(p + "self_attn.o_proj.weight", {d, qd}, true, false);
    add(p + "post_attention_layernorm.weight", {d}, false, false);
    add(p + "mlp.gate_proj.weight", {f, d}, true, false);
    add(p + "mlp.up_proj.weight", {f, d}, true, false);
    add(p + "mlp.down_proj.weight", {d, f}, true, false);
  }
  add("model.norm.weight", {d}, false, false);
  if (!c.tied_embeddings) add("lm_head.weight", {vp, d}, true, true);
  return L;
}

namespace {

// A uniform double in (0, 1) from 53 random bits, never 0 (log below).
double Uniform(uint64_t bits) {
  return ((double)(bits >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

// FNV-1a of the tensor's name, so that a tensor's values depend only on the seed
// and its name, not on which other tensors exist.
uint64_t NameKey(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char ch : s) h = (h ^ ch) * 0x100000001b3ULL;
  return h;
}

}  // namespace

void InitParams(const ModelConfig& c, const ParamLayout& layout, uint64_t seed, float* params,
                const InitOptions& opt) {
  const double base_std = 0.02;
  const double resid_std = base_std / std::sqrt(2.0 * c.n_layers);
  for (const TensorInfo& t : layout.tensors) {
    float* p = params + t.offset;
    if (t.shape.size() == 1) {  // norm weights
      for (size_t i = 0; i < t.numel; i++) p[i] = 1.0f;
      continue;
    }
    bool resid =
        t.name.find("o_proj") != std::string::npos || t.name.find("down_proj") != std::string::npos;
    const double sd = resid ? resid_std : base_std;
    const int64_t n = t.vocab_rows ? (int64_t)c.vocab_size * c.dim : (int64_t)t.numel;
    if (resid && opt.zero_out_proj) {
      for (size_t i = 0; i < t.numel; i++) p[i] = 0.0f;
      continue;
    }
    const uint64_t key = SplitMix64(seed ^ NameKey(t.name));
    // Box-Muller on a counter-based stream: pair i gives elements 2i and 2i+1,
    // so the loop parallelises without changing any value.
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < (n + 1) / 2; i++) {
      double u1 = Uniform(SplitMix64(key + 2 * (uint64_t)i));
      double u2 = Uniform(SplitMix64(key + 2 * (uint64_t)i + 1));
      double r = std::sqrt(-2.0 * std::log(u1)) * sd;
      double a = 6.283185307179586 * u2;
      p[2 * i] = (float)(r * std::cos(a));
      if (2 * i + 1 < n) p[2 * i + 1] = (float)(r * std::sin(a));
    }
    for (int64_t i = n; i < (int64_t)t.numel; i++) p[i] = 0.0f;  // padding rows
  }
}

}  // namespace lm
