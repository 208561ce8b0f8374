// config_fuzz.cpp: config.json (docs/formats/checkpoint.md) through
// ConfigFromHfJson, as LoadCheckpoint reads it, then the parameter layout
// that every reader builds from it next.
//
// An accepted config must be valid (Validate), and ConfigToHfJson (what
// lm-train writes) must give text that reads back to the same config.
#include <string>

#include "model/config.h"
#include "model/params.h"
#include "tests/fuzz/fuzz.h"

namespace {

bool Same(const lm::ModelConfig& a, const lm::ModelConfig& b) {
  return a.vocab_size == b.vocab_size && a.padded_vocab == b.padded_vocab && a.dim == b.dim &&
         a.n_layers == b.n_layers && a.n_heads == b.n_heads && a.n_kv_heads == b.n_kv_heads &&
         a.ffn_dim == b.ffn_dim && a.context == b.context && a.rope_theta == b.rope_theta &&
         a.norm_eps == b.norm_eps && a.tied_embeddings == b.tied_embeddings;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lm::ModelConfig c;
  if (!lm::ConfigFromHfJson(std::string((const char*)data, size), &c).ok()) return 0;
  lm_fuzz::Accepted()++;
  FUZZ_CHECK(c.Validate().ok());
  const std::string text = lm::ConfigToHfJson(c, c.vocab_size - 1);
  lm::ModelConfig again;
  lm::Status s = lm::ConfigFromHfJson(text, &again);
  if (!s.ok()) fprintf(stderr, "%s\n%s", s.ToString().c_str(), text.c_str());
  FUZZ_CHECK(s.ok());
  FUZZ_CHECK(Same(c, again));
  FUZZ_CHECK(lm::ConfigToHfJson(again, again.vocab_size - 1) == text);
  // What LoadCheckpoint does next; a few layers are enough to see the sums.
  if (c.n_layers <= 64) {
    lm::ParamLayout layout = lm::MakeParamLayout(c);
    FUZZ_CHECK(layout.total > 0);
  }
  return 0;
}
