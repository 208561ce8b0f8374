// config.cpp: model sizes, presets, and config.json in the form transformers'
// LlamaConfig reads and writes.
#include "model/config.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "model/sampler.h"
#include "util/json.h"

namespace lm {

namespace {

using nlohmann::json;

// The shortest decimal that reads back as the same float, as a double, so that
// config.json says 1e-05 rather than 9.99999974737875e-06.
double ShortestDouble(float f) {
  char buf[64];
  for (int prec = 6; prec <= 9; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
    if (strtof(buf, nullptr) == f) break;
  }
  return strtod(buf, nullptr);
}

// Reads an integer field; `required` false leaves *out alone when absent.
Status GetInt(const json& j, const char* key, bool required, int* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return Status::Invalid(std::string("missing \"") + key + "\"");
    return Status::OK();
  }
  if (!it->is_number_integer())
    return Status::Invalid(std::string("\"") + key + "\" is not an integer");
  if (it->is_number_unsigned() && it->get<uint64_t>() > (uint64_t)1 << 30)
    return Status::Invalid(std::string("\"") + key +
                           "\" out of range: " + std::to_string(it->get<uint64_t>()));
  int64_t v = it->get<int64_t>();
  if (v < 0 || v > (int64_t)1 << 30)
    return Status::Invalid(std::string("\"") + key + "\" out of range: " + std::to_string(v));
  *out = (int)v;
  return Status::OK();
}

Status GetFloat(const json& j, const char* key, float* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::OK();
  if (!it->is_number()) return Status::Invalid(std::string("\"") + key + "\" is not a number");
  *out = (float)it->get<double>();
  return Status::OK();
}

// A field that must be absent, null or equal to `allowed` (settings we do not implement).
Status Refuse(const json& j, const char* key, const json& allowed, const char* why) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null() || *it == allowed) return Status::OK();
  return Status::Invalid(std::string("unsupported \"") + key + "\": " + it->dump() + " (" + why +
                         ")");
}

}  // namespace

uint64_t ModelConfig::num_params() const {
  uint64_t d = (uint64_t)dim, v = (uint64_t)vocab_size, f = (uint64_t)ffn_dim;
  uint64_t qd = (uint64_t)n_heads * (uint64_t)head_dim(), kvd = (uint64_t)kv_dim();
  uint64_t per_layer = 2 * d + d * qd + 2 * d * kvd + qd * d + 3 * d * f;
  return v * d + (uint64_t)n_layers * per_layer + d + (tied_embeddings ? 0 : v * d);
}

double ModelConfig::train_flops_per_token() const {
  return 6.0 * (double)num_params() + 12.0 * n_layers * (double)dim * context;
}

void ModelConfig::Pad() {
  padded_vocab = (vocab_size + 127) / 128 * 128;
}

Status ModelConfig::Validate() const {
  if (vocab_size <= 0) return Status::Invalid("model: vocabulary size must be positive");
  if (dim <= 0 || n_layers <= 0 || n_heads <= 0 || n_kv_heads <= 0 || ffn_dim <= 0 || context <= 0)
    return Status::Invalid("model: sizes must be positive (" + Describe() + ")");
  if (padded_vocab < vocab_size || padded_vocab % 128 != 0)
    return Status::Invalid("model: padded vocabulary " + std::to_string(padded_vocab) +
                           " is not vocab_size " + std::to_string(vocab_size) +
                           " rounded up to a multiple of 128 (call Pad)");
  if (dim % n_heads != 0)
    return Status::Invalid("model: " + std::to_string(n_heads) + " heads do not divide dim " +
                           std::to_string(dim));
  if (n_heads % n_kv_heads != 0)
    return Status::Invalid("model: " + std::to_string(n_kv_heads) + " kv heads do not divide " +
                           std::to_string(n_heads) + " heads");
  if (head_dim() % 2 != 0)
    return Status::Invalid("model: head dimension " + std::to_string(head_dim()) +
                           " must be even (RoPE rotates pairs)");
  if (!(rope_theta > 0) || !std::isfinite(rope_theta))
    return Status::Invalid("model: rope_theta must be positive");
  if (!(norm_eps > 0) || !std::isfinite(norm_eps))
    return Status::Invalid("model: rms_norm_eps must be positive");
  // Activations are indexed with int64, but single dimensions stay within int.
  if (dim > (1 << 20) || ffn_dim > (1 << 22) || context > (1 << 22) || n_layers > 4096 ||
      padded_vocab > (1 << 26))
    return Status::Invalid("model: sizes too large (" + Describe() + ")");
  return Status::OK();
}

std::string ModelConfig::Describe() const {
  char buf[256];
  double p = (double)num_params();
  char count[32];
  if (p >= 1e9)
    snprintf(count, sizeof count, "%.2fB", p / 1e9);
  else if (p >= 1e6)
    snprintf(count, sizeof count, "%.1fM", p / 1e6);
  else
    snprintf(count, sizeof count, "%.1fK", p / 1e3);
  snprintf(buf, sizeof buf, "%d layers, dim %d, %d heads (%d kv), ffn %d, ctx %d, %s params%s",
           n_layers, dim, n_heads, n_kv_heads, ffn_dim, context, count,
           tied_embeddings ? "" : " (untied head)");
  return buf;
}

namespace {
struct Preset {
  const char* name;
  int layers, dim, heads, ffn, ctx;
};
const Preset kPresets[] = {
    {"tiny", 2, 64, 4, 192, 128},
    {"small", 4, 192, 6, 512, 256},
    {"gpt2-124m", 12, 768, 12, 2048, 1024},
    {"gpt2-350m", 24, 1024, 16, 2816, 1024},
};
}  // namespace

Status PresetConfig(const std::string& name, int vocab_size, ModelConfig* out) {
  for (const Preset& p : kPresets) {
    if (name != p.name) continue;
    ModelConfig c;
    c.vocab_size = vocab_size;
    c.n_layers = p.layers;
    c.dim = p.dim;
    c.n_heads = p.heads;
    c.n_kv_heads = p.heads;
    c.ffn_dim = p.ffn;
    c.context = p.ctx;
    c.Pad();
    LM_RETURN_IF_ERROR(c.Validate());
    *out = c;
    return Status::OK();
  }
  std::string names;
  for (const std::string& n : PresetNames()) names += (names.empty() ? "" : ", ") + n;
  return Status::Usage("unknown model preset '" + name + "' (expected one of: " + names + ")");
}

int DefaultFfnDim(int dim) {
  const int64_t f = (int64_t)dim * 8 / 3;
  return (int)((f + 127) / 128 * 128);
}

std::vector<std::string> PresetNames() {
  std::vector<std::string> v;
  for (const Preset& p : kPresets) v.push_back(p.name);
  return v;
}

std::string ConfigToHfJson(const ModelConfig& c, int eot_id, const std::string& torch_dtype) {
  json j = json::object();
  j["architectures"] = json::array({"LlamaForCausalLM"});
  j["model_type"] = "llama";
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.dim;
  j["intermediate_size"] = c.ffn_dim;
  j["num_hidden_layers"] = c.n_layers;
  j["num_attention_heads"] = c.n_heads;
  j["num_key_value_heads"] = c.n_kv_heads;
  j["head_dim"] = c.head_dim();
  j["hidden_act"] = "silu";
  j["max_position_embeddings"] = c.context;
  j["rms_norm_eps"] = ShortestDouble(c.norm_eps);
  j["rope_theta"] = ShortestDouble(c.rope_theta);
  j["rope_scaling"] = nullptr;
  j["attention_bias"] = false;
  j["attention_dropout"] = 0.0;
  j["mlp_bias"] = false;
  j["pretraining_tp"] = 1;
  j["initializer_range"] = 0.02;
  j["tie_word_embeddings"] = c.tied_embeddings;
  j["use_cache"] = true;
  j["torch_dtype"] = torch_dtype;
  if (eot_id >= 0) {
    j["bos_token_id"] = eot_id;
    j["eos_token_id"] = eot_id;
  } else {
    j["bos_token_id"] = nullptr;
    j["eos_token_id"] = nullptr;
  }
  return j.dump(2) + "\n";
}

std::string GenerationConfigToHfJson(int eot_id, const std::vector<uint32_t>& unused_ids) {
  const SamplerConfig lm_sample;  // its defaults
  json j = json::object();
  j["bos_token_id"] = eot_id;
  j["eos_token_id"] = eot_id;
  j["pad_token_id"] = eot_id;
  j["do_sample"] = lm_sample.temperature > 0;
  j["temperature"] = ShortestDouble(lm_sample.temperature);
  j["top_k"] = lm_sample.top_k;
  j["top_p"] = ShortestDouble(lm_sample.top_p);
  if (lm_sample.min_p > 0) j["min_p"] = ShortestDouble(lm_sample.min_p);
  if (lm_sample.repeat_penalty != 1)
    j["repetition_penalty"] = ShortestDouble(lm_sample.repeat_penalty);
  if (!unused_ids.empty()) j["suppress_tokens"] = unused_ids;
  return j.dump(2) + "\n";
}

Status ConfigFromHfJson(const std::string& text, ModelConfig* out) {
  json j;
  LM_RETURN_IF_ERROR(ParseJsonText(text, &j));
  if (!j.is_object()) return Status::Invalid("not a JSON object");
  auto mt = j.find("model_type");
  if (mt != j.end() && !(mt->is_string() && mt->get<std::string>() == "llama"))
    return Status::Invalid("model_type " + mt->dump() + " is not \"llama\"");
  LM_RETURN_IF_ERROR(Refuse(j, "hidden_act", "silu", "only silu is implemented"));
  LM_RETURN_IF_ERROR(Refuse(j, "hidden_activation", "silu", "only silu is implemented"));
  LM_RETURN_IF_ERROR(Refuse(j, "rope_scaling", nullptr, "RoPE scaling is not supported"));
  LM_RETURN_IF_ERROR(Refuse(j, "attention_bias", false, "biases are not supported"));
  LM_RETURN_IF_ERROR(Refuse(j, "mlp_bias", false, "biases are not supported"));

  ModelConfig c;
  LM_RETURN_IF_ERROR(GetInt(j, "vocab_size", true, &c.vocab_size));
  LM_RETURN_IF_ERROR(GetInt(j, "hidden_size", true, &c.dim));
  LM_RETURN_IF_ERROR(GetInt(j, "intermediate_size", true, &c.ffn_dim));
  LM_RETURN_IF_ERROR(GetInt(j, "num_hidden_layers", true, &c.n_layers));
  LM_RETURN_IF_ERROR(GetInt(j, "num_attention_heads", true, &c.n_heads));
  c.n_kv_heads = c.n_heads;  // transformers' default
  LM_RETURN_IF_ERROR(GetInt(j, "num_key_value_heads", false, &c.n_kv_heads));
  LM_RETURN_IF_ERROR(GetInt(j, "max_position_embeddings", true, &c.context));
  // LlamaConfig's defaults where a field is absent.
  c.rope_theta = 10000.0f;
  c.norm_eps = 1e-6f;
  c.tied_embeddings = false;
  LM_RETURN_IF_ERROR(GetFloat(j, "rope_theta", &c.rope_theta));
  LM_RETURN_IF_ERROR(GetFloat(j, "rms_norm_eps", &c.norm_eps));
  auto tie = j.find("tie_word_embeddings");
  if (tie != j.end() && !tie->is_null()) {
    if (!tie->is_boolean()) return Status::Invalid("tie_word_embeddings is not a boolean");
    c.tied_embeddings = tie->get<bool>();
  }
  if (c.n_heads > 0 && c.dim > 0 && c.dim % c.n_heads == 0) {
    int hd = c.head_dim();
    LM_RETURN_IF_ERROR(GetInt(j, "head_dim", false, &hd));
    if (hd != c.head_dim())
      return Status::Invalid("head_dim " + std::to_string(hd) +
                             " differs from hidden_size / num_attention_heads = " +
                             std::to_string(c.head_dim()) + " (not supported)");
  }
  c.Pad();
  LM_RETURN_IF_ERROR(c.Validate());
  *out = c;
  return Status::OK();
}

}  // namespace lm
