// config.h: the model's shape, and its Hugging Face LlamaForCausalLM config.json.
//
// The model is exactly transformers' LlamaForCausalLM: token embedding; per
// layer RMSNorm -> attention (RoPE, rotate-half convention, grouped-query heads,
// no biases) -> residual -> RMSNorm -> SwiGLU MLP down(silu(gate(x)) * up(x)) ->
// residual; final RMSNorm; LM head (tied to the embedding or not).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace lm {

struct ModelConfig {
  int vocab_size = 0;    // tokens that exist (config.json's vocab_size)
  int padded_vocab = 0;  // rows held internally: vocab_size rounded up to a multiple of 128
  int dim = 0;           // hidden_size
  int n_layers = 0;      // num_hidden_layers
  int n_heads = 0;       // num_attention_heads
  int n_kv_heads = 0;    // num_key_value_heads (== n_heads: no grouping)
  int ffn_dim = 0;       // intermediate_size
  int context = 0;       // max_position_embeddings: the longest sequence trained or sampled
  float rope_theta = 10000.0f;
  float norm_eps = 1e-5f;       // rms_norm_eps
  bool tied_embeddings = true;  // tie_word_embeddings

  int head_dim() const { return n_heads ? dim / n_heads : 0; }
  int kv_dim() const { return n_kv_heads * head_dim(); }
  // Parameters counted with the real vocabulary (as a checkpoint holds them).
  uint64_t num_params() const;
  // FLOPs per trained token: 6 * params + 12 * layers * dim * context (issue 6's MFU formula).
  double train_flops_per_token() const;
  // Sets padded_vocab from vocab_size.
  void Pad();
  // Heads divide dim, kv heads divide heads, head_dim even (RoPE), sizes positive.
  Status Validate() const;
  // One line: "12 layers, dim 768, 12 heads (12 kv), ffn 2048, ctx 1024, 124.4M params".
  std::string Describe() const;
};

// Named presets, sized for vocab_size (which the preset does not fix):
//   tiny   (CPU tests)    2 layers, dim 64,  4 heads, ffn 192,  ctx 128
//   small  (CPU demo)     4 layers, dim 192, 6 heads, ffn 512,  ctx 256
//   gpt2-124m             12 layers, dim 768, 12 heads, ffn 2048, ctx 1024
//   gpt2-350m             24 layers, dim 1024, 16 heads, ffn 2816, ctx 1024
// (SwiGLU ffn sizes are 8/3 * dim rounded, keeping the parameter count of the
// GPT-2 shape with a 4*dim GELU MLP.)
Status PresetConfig(const std::string& name, int vocab_size, ModelConfig* out);
// The SwiGLU hidden size for a width when none is given: Llama's rule, 8/3 of
// dim (the parameters of a 4*dim GELU MLP) rounded up to a multiple of 128.
int DefaultFfnDim(int dim);
std::vector<std::string> PresetNames();

// config.json for transformers (architectures LlamaForCausalLM, model_type llama,
// bos/eos = the end-of-text id), torch_dtype as given ("float32" for a
// checkpoint's F32 weights, "bfloat16" for an export's).
std::string ConfigToHfJson(const ModelConfig& c, int eot_id,
                           const std::string& torch_dtype = "float32");
// generation_config.json for transformers: bos, eos and pad = the end-of-text
// id (generation stops there, as lm-sample's does), lm-sample's default
// sampling (model/sampler.h: temperature 1, no top-k, no top-p), and the
// vocabulary's unused ids as suppress_tokens (lm-sample never draws them).
std::string GenerationConfigToHfJson(int eot_id, const std::vector<uint32_t>& unused_ids);
// Reads a config.json (ours or transformers'); refuses unsupported settings
// (rope_scaling, attention/mlp bias, hidden_act other than silu).
Status ConfigFromHfJson(const std::string& json, ModelConfig* out);

}  // namespace lm
