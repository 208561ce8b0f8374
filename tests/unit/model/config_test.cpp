// config_test.cpp: model sizes, presets, validation, and config.json in
// transformers' LlamaConfig form (ours and transformers' own).
#include <nlohmann/json.hpp>

#include "../test.h"
#include "model/config.h"

using namespace lm;

TEST(presets_match_their_documentation) {
  ModelConfig c;
  CHECK_OK(PresetConfig("tiny", 1000, &c));
  CHECK_EQ(c.n_layers, 2);
  CHECK_EQ(c.dim, 64);
  CHECK_EQ(c.n_heads, 4);
  CHECK_EQ(c.n_kv_heads, 4);
  CHECK_EQ(c.ffn_dim, 192);
  CHECK_EQ(c.context, 128);
  CHECK_EQ(c.vocab_size, 1000);
  CHECK_EQ(c.padded_vocab, 1024);
  CHECK_OK(PresetConfig("small", 1000, &c));
  CHECK_EQ(c.dim, 192);
  CHECK_EQ(c.n_heads, 6);
  CHECK_EQ(c.ffn_dim, 512);
  CHECK_EQ(c.context, 256);
  CHECK_OK(PresetConfig("gpt2-124m", 50257, &c));
  CHECK_EQ(c.padded_vocab, 50304);
  // 50257*768 + 12 * (2*768 + 4*768^2 + 3*768*2048) + 768, tied.
  CHECK_EQ(c.num_params(),
           (uint64_t)50257 * 768 + 12ull * (2 * 768 + 4 * 768 * 768 + 3 * 768 * 2048) + 768);
  CHECK_EQ(c.Describe(),
           std::string("12 layers, dim 768, 12 heads (12 kv), ffn 2048, ctx 1024, 123.6M params"));
  CHECK_NEAR(c.train_flops_per_token(), 6.0 * c.num_params() + 12.0 * 12 * 768 * 1024, 1.0);
  CHECK_OK(PresetConfig("gpt2-350m", 50257, &c));
  CHECK_EQ(c.n_layers, 24);
  CHECK_EQ(c.dim, 1024);
  CHECK_EQ(c.ffn_dim, 2816);
  Status s = PresetConfig("huge", 100, &c);
  CHECK_EQ(s.code(), Status::kUsage);
  CHECK(s.message().find("tiny") != std::string::npos);
  CHECK_EQ(PresetNames().size(), (size_t)4);
}

TEST(num_params_counts_grouped_heads_and_untied_head) {
  ModelConfig c;
  c.vocab_size = 100;
  c.dim = 32;
  c.n_layers = 3;
  c.n_heads = 8;
  c.n_kv_heads = 2;
  c.ffn_dim = 40;
  c.context = 64;
  c.tied_embeddings = false;
  c.Pad();
  CHECK_OK(c.Validate());
  const uint64_t kvd = 2 * 4;
  const uint64_t layer = 2 * 32 + 32 * 32 + 2 * 32 * kvd + 32 * 32 + 3 * 32 * 40;
  CHECK_EQ(c.num_params(), 2 * 100 * 32 + 3 * layer + 32);
  CHECK(c.Describe().find("(untied head)") != std::string::npos);
}

TEST(validate_refuses_impossible_sizes) {
  ModelConfig ok;
  CHECK_OK(PresetConfig("tiny", 500, &ok));
  ModelConfig c = ok;
  c.n_heads = 5;  // does not divide 64
  CHECK_EQ(c.Validate().code(), Status::kInvalid);
  c = ok;
  c.n_kv_heads = 3;  // does not divide 4 heads
  CHECK_EQ(c.Validate().code(), Status::kInvalid);
  c = ok;
  c.dim = 60;
  c.n_heads = 4;
  c.n_kv_heads = 4;  // head_dim 15 is odd
  CHECK_EQ(c.Validate().code(), Status::kInvalid);
  c = ok;
  c.ffn_dim = 0;
  CHECK_EQ(c.Validate().code(), Status::kInvalid);
  c = ok;
  c.vocab_size = 0;
  CHECK_EQ(c.Validate().code(), Status::kInvalid);
  c = ok;
  c.padded_vocab = 500;  // not padded
  CHECK_EQ(c.Validate().code(), Status::kInvalid);
  c = ok;
  c.norm_eps = 0;
  CHECK_EQ(c.Validate().code(), Status::kInvalid);
}

TEST(hf_json_round_trip) {
  ModelConfig c;
  c.vocab_size = 4097;
  c.dim = 96;
  c.n_layers = 3;
  c.n_heads = 6;
  c.n_kv_heads = 2;
  c.ffn_dim = 256;
  c.context = 512;
  c.rope_theta = 500000.0f;
  c.norm_eps = 1e-5f;
  c.tied_embeddings = false;
  c.Pad();
  std::string js = ConfigToHfJson(c, 4096);
  nlohmann::json j = nlohmann::json::parse(js);
  CHECK_EQ(j["architectures"][0].get<std::string>(), std::string("LlamaForCausalLM"));
  CHECK_EQ(j["model_type"].get<std::string>(), std::string("llama"));
  CHECK_EQ(j["vocab_size"].get<int>(), 4097);  // the real vocabulary, not the padded one
  CHECK_EQ(j["num_key_value_heads"].get<int>(), 2);
  CHECK_EQ(j["hidden_act"].get<std::string>(), std::string("silu"));
  CHECK_EQ(j["tie_word_embeddings"].get<bool>(), false);
  CHECK_EQ(j["bos_token_id"].get<int>(), 4096);
  CHECK_EQ(j["eos_token_id"].get<int>(), 4096);
  CHECK_EQ(j["torch_dtype"].get<std::string>(), std::string("float32"));
  // Written as the short decimal, not float noise.
  CHECK(js.find("\"rms_norm_eps\": 1e-05") != std::string::npos);
  CHECK(js.find("\"rope_theta\": 500000.0") != std::string::npos);
  ModelConfig back;
  CHECK_OK(ConfigFromHfJson(js, &back));
  CHECK_EQ(back.vocab_size, c.vocab_size);
  CHECK_EQ(back.padded_vocab, c.padded_vocab);
  CHECK_EQ(back.dim, c.dim);
  CHECK_EQ(back.n_layers, c.n_layers);
  CHECK_EQ(back.n_heads, c.n_heads);
  CHECK_EQ(back.n_kv_heads, c.n_kv_heads);
  CHECK_EQ(back.ffn_dim, c.ffn_dim);
  CHECK_EQ(back.context, c.context);
  CHECK_EQ(back.rope_theta, c.rope_theta);
  CHECK_EQ(back.norm_eps, c.norm_eps);
  CHECK_EQ(back.tied_embeddings, false);
}

TEST(reads_a_transformers_written_config) {
  // As LlamaConfig.save_pretrained writes it (TinyLlama-like), with defaults left out.
  const char* js = R"({
    "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 2048,
    "initializer_range": 0.02, "intermediate_size": 5632, "max_position_embeddings": 2048,
    "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 22,
    "num_key_value_heads": 4, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": null,
    "rope_theta": 10000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
    "transformers_version": "4.35.0", "use_cache": true, "vocab_size": 32000})";
  ModelConfig c;
  CHECK_OK(ConfigFromHfJson(js, &c));
  CHECK_EQ(c.n_kv_heads, 4);
  CHECK_EQ(c.head_dim(), 64);
  CHECK_EQ(c.padded_vocab, 32000);
  CHECK_EQ(c.num_params(), (uint64_t)1100048384);  // TinyLlama-1.1B's published count
  // LlamaConfig's defaults: kv heads = heads, eps 1e-6, theta 1e4, untied.
  ModelConfig d;
  CHECK_OK(ConfigFromHfJson(R"({"vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
    "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 4})",
                            &d));
  CHECK_EQ(d.n_kv_heads, 2);
  CHECK_EQ(d.norm_eps, 1e-6f);
  CHECK_EQ(d.rope_theta, 10000.0f);
  CHECK_EQ(d.tied_embeddings, false);
}

TEST(refuses_unsupported_or_malformed_configs) {
  ModelConfig base;
  CHECK_OK(PresetConfig("tiny", 300, &base));
  nlohmann::json good = nlohmann::json::parse(ConfigToHfJson(base, 0));
  auto with = [&](const char* key, nlohmann::json v) {
    nlohmann::json j = good;
    j[key] = v;
    ModelConfig c;
    return ConfigFromHfJson(j.dump(), &c);
  };
  CHECK_EQ(with("rope_scaling", {{"type", "linear"}, {"factor", 2.0}}).code(), Status::kInvalid);
  CHECK_EQ(with("attention_bias", true).code(), Status::kInvalid);
  CHECK_EQ(with("mlp_bias", true).code(), Status::kInvalid);
  CHECK_EQ(with("hidden_act", "gelu").code(), Status::kInvalid);
  CHECK_EQ(with("model_type", "gpt2").code(), Status::kInvalid);
  CHECK_EQ(with("num_attention_heads", 5).code(), Status::kInvalid);
  CHECK_EQ(with("hidden_size", "64").code(), Status::kInvalid);
  CHECK_EQ(with("hidden_size", -64).code(), Status::kInvalid);
  CHECK_EQ(with("head_dim", 32).code(), Status::kInvalid);
  CHECK_EQ(with("tie_word_embeddings", "yes").code(), Status::kInvalid);
  CHECK_OK(with("rope_scaling", nullptr));
  // A huge unsigned value is named as written, not wrapped to -1; a zero
  // hidden_size is a size error, not a head_dim one.
  Status big = with("vocab_size", nlohmann::json(18446744073709551615ull));
  CHECK_EQ(big.code(), Status::kInvalid);
  CHECK(big.message().find("18446744073709551615") != std::string::npos);
  Status zero = with("hidden_size", 0);
  CHECK_EQ(zero.code(), Status::kInvalid);
  CHECK(zero.message().find("head_dim") == std::string::npos);
  // A NUL byte would end nlohmann's input: what follows it must not be ignored.
  {
    ModelConfig c0;
    CHECK_EQ(ConfigFromHfJson(good.dump() + std::string(1, '\0') + "garbage", &c0).code(),
             Status::kInvalid);
  }
  nlohmann::json j = good;
  j.erase("vocab_size");
  ModelConfig c;
  Status s = ConfigFromHfJson(j.dump(), &c);
  CHECK_EQ(s.code(), Status::kInvalid);
  CHECK(s.message().find("vocab_size") != std::string::npos);
  CHECK_EQ(ConfigFromHfJson("{not json", &c).code(), Status::kInvalid);
  CHECK_EQ(ConfigFromHfJson("[1,2]", &c).code(), Status::kInvalid);
  CHECK_EQ(ConfigFromHfJson("", &c).code(), Status::kInvalid);
}

TEST_MAIN()
