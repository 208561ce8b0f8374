// params.h: where each parameter tensor lives in the one flat fp32 buffer that
// backends load and store, under its Hugging Face Llama name.
//
// Order: model.embed_tokens.weight [padded_vocab, dim]; for each layer i:
// model.layers.i.input_layernorm.weight [dim], self_attn.q_proj.weight
// [n_heads*hd, dim], k_proj [n_kv*hd, dim], v_proj [n_kv*hd, dim], o_proj [dim,
// dim], post_attention_layernorm.weight [dim], mlp.gate_proj.weight [ffn, dim],
// mlp.up_proj.weight [ffn, dim], mlp.down_proj.weight [dim, ffn]; then
// model.norm.weight [dim]; then lm_head.weight [padded_vocab, dim] unless tied.
// Linear weights are [out, in] row-major, as torch stores them: y = x W^T.
// Rows vocab_size..padded_vocab-1 of the embedding and head are padding: zero at
// init, never written to a checkpoint, and their logits never count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace lm {

// The optimizer groups: each takes its own learning rate, and under Muon the
// hidden matrices take Muon's update while the others keep AdamW's.
enum class ParamGroup {
  kEmbedding,  // model.embed_tokens.weight (also the head when tied)
  kHead,       // lm_head.weight (untied models only)
  kNorm,       // the RMSNorm weights
  kMatrix,     // the 2-D weights inside the blocks: q/k/v/o, gate/up/down
};
const char* ParamGroupName(ParamGroup g);  // "embedding", "head", "norm", "matrix"

struct TensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // as held internally (vocab rows padded)
  size_t offset = 0;           // in floats, from the start of the buffer
  size_t numel = 0;
  bool decay = false;       // weight decay applies (matrices yes, norm weights no)
  bool vocab_rows = false;  // first dim is padded_vocab (embedding, lm_head)
  ParamGroup group = ParamGroup::kMatrix;
  int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
  int64_t cols() const { return shape.size() < 2 ? 1 : shape[1]; }
};

struct ParamLayout {
  std::vector<TensorInfo> tensors;
  size_t total = 0;  // floats
  // Index by name; -1 if absent.
  int Find(const std::string& name) const;
};

ParamLayout MakeParamLayout(const ModelConfig& c);

// Choices of the initialisation that leave the model a plain Llama.
struct InitOptions {
  // The residual output projections (o_proj, down_proj) start at zero, so each
  // block starts as the identity (modded-nanogpt's zero-init of c_proj).
  bool zero_out_proj = false;
};

// Deterministic initialisation from `seed` (identical on every machine):
// embedding and linear weights ~ N(0, 0.02), the residual output projections
// (o_proj, down_proj) scaled by 1/sqrt(2 * n_layers) (or zero, by `opt`), norm
// weights 1, padding 0.
void InitParams(const ModelConfig& c, const ParamLayout& layout, uint64_t seed, float* params,
                const InitOptions& opt = InitOptions());

}  // namespace lm
