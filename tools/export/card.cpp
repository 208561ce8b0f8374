// card.cpp: README.md of lm-export --hf, a model card with the model's shape
// and the training figures of trainer-state.json and RUN/metrics.jsonl. It
// names no path and no command line: the directory is meant to be uploaded.
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "export.h"
#include "format/vocab.h"
#include "model/params.h"
#include "util/file.h"
#include "util/human.h"
#include "util/json.h"

namespace lm {

namespace {

using json = nlohmann::json;

std::string Fmt(const char* f, double x) {
  char b[64];
  snprintf(b, sizeof b, f, x);
  return b;
}

// "12.3M", "1.05B", "980k".
std::string Big(double n) {
  if (n >= 1e9) return Fmt("%.3gB", n / 1e9);
  if (n >= 1e6) return Fmt("%.3gM", n / 1e6);
  if (n >= 1e3) return Fmt("%.3gk", n / 1e3);
  return Fmt("%.0f", n);
}

// The run's figures at the checkpoint's step, from RUN/metrics.jsonl (the
// step directory's parent): the mean train loss of the last 50 steps, the
// last validation. "" when there is none.
std::string MetricsRows(const std::string& step_dir, int64_t step) {
  std::string text;
  if (!ReadFile(JoinPath(DirName(step_dir), "metrics.jsonl"), &text).ok()) return "";
  std::vector<double> losses;
  json val;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    json j;
    bool ok = ParseJsonText(text.substr(pos, nl - pos), &j).ok() && j.is_object();
    pos = nl + 1;
    if (!ok || !j.contains("step") || !j["step"].is_number() || j["step"].get<int64_t>() > step)
      continue;
    if (j.contains("loss") && j["loss"].is_number()) losses.push_back(j["loss"].get<double>());
    if (j.contains("val_loss") && j["val_loss"].is_number()) val = j;
  }
  std::string rows;
  if (!losses.empty()) {
    size_t k = std::min<size_t>(losses.size(), 50);
    double sum = 0;
    for (size_t i = losses.size() - k; i < losses.size(); i++) sum += losses[i];
    rows += "| train loss (mean of the last " + std::to_string(k) + " steps) | " +
            Fmt("%.4f", sum / k) + " nats/token |\n";
  }
  if (!val.is_null()) {
    rows += "| validation loss at step " + std::to_string(val["step"].get<int64_t>()) + " | " +
            Fmt("%.4f", val["val_loss"].get<double>()) + " nats/token (perplexity " +
            Fmt("%.2f", std::exp(val["val_loss"].get<double>())) + ") |\n";
    if (val.contains("val_bpb") && val["val_bpb"].is_number())
      rows += "| validation bits per byte | " + Fmt("%.4f", val["val_bpb"].get<double>()) + " |\n";
  }
  return rows;
}

std::string ModelRows(const ExportSource& src, bool bf16) {
  const ModelConfig& c = src.ck.config;
  const ParamLayout layout = MakeParamLayout(c);
  double total = 0, embed = 0;
  for (const TensorInfo& t : layout.tensors) {
    double n = (double)t.numel;
    if (t.vocab_rows) n = n / t.shape[0] * c.vocab_size;
    total += n;
    if (t.vocab_rows) embed += n;
  }
  std::string r;
  r += "| parameters | " + Big(total) + " (" + Big(total - embed) + " without the " +
       (c.tied_embeddings ? "embedding, tied to the output" : "embedding and output") + ") |\n";
  r += "| layers x width | " + std::to_string(c.n_layers) + " x " + std::to_string(c.dim) +
       ", FFN " + std::to_string(c.ffn_dim) + " (SwiGLU) |\n";
  r += "| attention heads | " + std::to_string(c.n_heads) + " (" + std::to_string(c.n_kv_heads) +
       " key/value heads), head size " + std::to_string(c.head_dim()) + ", RoPE theta " +
       Fmt("%g", c.rope_theta) + " |\n";
  r += "| context | " + std::to_string(c.context) + " tokens |\n";
  r += "| vocabulary | " + std::to_string(c.vocab_size) + " tokens, byte-level BPE, " +
       PatternName(src.vocab.pattern_kind()) + " pre-tokenizer |\n";
  r += std::string("| weights | ") + (bf16 ? "bfloat16" : "float32") + " |\n";
  return r;
}

std::string TrainingRows(const ExportSource& src) {
  json st;
  if (!ParseJsonText(src.ck.state_json, &st).ok() || !st.is_object()) st = json::object();
  std::string r;
  r += "| steps | " + std::to_string(src.ck.step) + " |\n";
  r += "| tokens | " + Big((double)src.ck.tokens_seen) + " |\n";
  std::string device = st.value("device", std::string());
  r += "| training time | " + FormatDuration(src.ck.elapsed_seconds) +
       (device.empty() ? "" : " on " + device) + " |\n";
  if (st.contains("train") && st["train"].is_object()) {
    const json& t = st["train"];
    if (t.contains("tokens_per_step") && t["tokens_per_step"].is_number())
      r += "| batch | " + Big(t["tokens_per_step"].get<double>()) + " tokens per step |\n";
    if (t.contains("lr") && t["lr"].is_number()) {
      std::string kind;
      if (st.contains("schedule") && st["schedule"].is_object())
        kind = st["schedule"].value("kind", std::string());
      r += "| peak learning rate | " + Fmt("%g", t["lr"].get<double>()) +
           (kind.empty() ? "" : ", " + kind + " schedule") + " (AdamW) |\n";
    }
  }
  return r;
}

}  // namespace

std::string ModelCard(const ExportSource& src, bool bf16) {
  std::string card =
      "---\nlibrary_name: transformers\npipeline_tag: text-generation\ntags:\n- llama\n- "
      "lm\n---\n\n";
  card += "# A small Llama-architecture language model\n\n";
  card +=
      "Trained from scratch with lm's lm-train and exported by lm-export from its checkpoint "
      "at step " +
      std::to_string(src.ck.step) + ".\n\n";
  card += "## Model\n\n| | |\n|---|---|\n" + ModelRows(src, bf16);
  card += "\n## Training\n\n| | |\n|---|---|\n" + TrainingRows(src) +
          MetricsRows(src.step_dir, src.ck.step);
  card +=
      "\n## Use\n\n"
      "```python\n"
      "from transformers import pipeline\n"
      "generate = pipeline(\"text-generation\", model=\"PATH/TO/THIS/DIRECTORY\")\n"
      "print(generate(\"Once upon a time\", max_new_tokens=50)[0][\"generated_text\"])\n"
      "```\n\n"
      "The tokenizer puts `<|endoftext|>` before every text, as the model saw at the start of "
      "each document in training (it is also the end-of-text token, where generation stops). "
      "The default sampling is lm-sample's: temperature 1, no top-k, no top-p. Needs "
      "transformers 4.40 or newer (tokenizers 0.19 or newer).\n";
  return card;
}

}  // namespace lm
