// gguf.cpp: a checkpoint as llama.cpp's llama architecture in GGUF: its
// tensor names, q/k rows in the order its rotary embedding pairs them, and
// its gpt2 BPE tokenizer (docs/export.md says which key holds what).
#include <cstdio>

#include "export.h"
#include "model/params.h"
#include "text/export.h"
#include "util/file.h"

namespace lm {

namespace {

// ggml's llama_ftype for an export of mostly `type` (1-D tensors stay F32).
uint32_t FileType(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
      return 0;  // ALL_F32
    case GgmlType::kF16:
      return 1;  // MOSTLY_F16
    case GgmlType::kQ8_0:
      return 7;  // MOSTLY_Q8_0
    case GgmlType::kBF16:
      return 32;  // MOSTLY_BF16
  }
  return 0;
}

// A Hugging Face Llama tensor name -> llama.cpp's ("" for none).
std::string LlamaCppName(const std::string& hf) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  const std::string layers = "model.layers.";
  if (hf.compare(0, layers.size(), layers) != 0) return "";
  size_t dot = hf.find('.', layers.size());
  if (dot == std::string::npos) return "";
  const std::string blk = "blk." + hf.substr(layers.size(), dot - layers.size()) + ".";
  const std::string part = hf.substr(dot + 1);
  static const char* const kParts[][2] = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},
  };
  for (const auto& p : kParts)
    if (part == p[0]) return blk + p[1];
  return "";
}

// The rows of a q or k projection [heads * d, in] in the order llama.cpp's
// rotary embedding expects. transformers rotates the two halves of each head
// (x_i with x_{i + d/2}); llama.cpp's LLAMA rope (ggml mode 0) rotates
// adjacent pairs (x_{2i} with x_{2i+1}). convert_hf_to_gguf.py's
// LlamaModel.permute does reshape(heads, 2, d/2, in).swapaxes(1, 2): output
// row h*d + 2i + j is input row h*d + j*d/2 + i.
std::vector<float> PermuteRotary(const float* w, int64_t heads, int64_t d, int64_t in) {
  std::vector<float> out((size_t)(heads * d * in));
  for (int64_t h = 0; h < heads; h++)
    for (int64_t i = 0; i < d / 2; i++)
      for (int64_t j = 0; j < 2; j++) {
        const float* src = w + (h * d + j * (d / 2) + i) * in;
        std::copy(src, src + in, out.begin() + (h * d + 2 * i + j) * in);
      }
  return out;
}

void AddModelKeys(const ExportSource& src, GgmlType type, GgufWriter* w) {
  const ModelConfig& c = src.ck.config;
  std::string name = BaseName(src.step_dir);
  const std::string parent = BaseName(DirName(src.step_dir));
  if (name.compare(0, 5, "step-") == 0 && parent != "." && parent != "/")
    name = parent + " " + name;
  w->AddString("general.architecture", "llama");
  w->AddString("general.name", name);
  w->AddU32("general.file_type", FileType(type));
  w->AddU32("general.quantization_version", 2);  // ggml's GGML_QNT_VERSION
  w->AddU32("llama.vocab_size", (uint32_t)c.vocab_size);
  w->AddU32("llama.context_length", (uint32_t)c.context);
  w->AddU32("llama.embedding_length", (uint32_t)c.dim);
  w->AddU32("llama.block_count", (uint32_t)c.n_layers);
  w->AddU32("llama.feed_forward_length", (uint32_t)c.ffn_dim);
  w->AddU32("llama.attention.head_count", (uint32_t)c.n_heads);
  w->AddU32("llama.attention.head_count_kv", (uint32_t)c.n_kv_heads);
  w->AddU32("llama.attention.key_length", (uint32_t)c.head_dim());
  w->AddU32("llama.attention.value_length", (uint32_t)c.head_dim());
  w->AddU32("llama.rope.dimension_count", (uint32_t)c.head_dim());
  w->AddF32("llama.rope.freq_base", c.rope_theta);
  w->AddF32("llama.attention.layer_norm_rms_epsilon", c.norm_eps);
}

// gpt2 BPE: every id's text (an unused id "[PADn]", as llama.cpp's converter
// names it), its type, the merges, and <|endoftext|> as bos and eos with
// add_bos_token: llama.cpp then puts it before a prompt, as lm-sample does.
Status AddTokenizerKeys(const Vocab& v, GgufWriter* w, GgufReport* r) {
  LM_RETURN_IF_ERROR(LlamaCppPretokenizer(v, &r->pre));
  std::vector<std::string> texts;
  LM_RETURN_IF_ERROR(ByteLevelTexts(v, &texts));
  std::vector<int32_t> types(v.size());
  for (uint32_t i = 0; i < v.size(); i++) {
    types[i] = v.is_special(i) ? 3 : v.is_unused(i) ? 5 : 1;  // CONTROL, UNUSED, NORMAL
    if (v.is_unused(i)) texts[i] = "[PAD" + std::to_string(i) + "]";
  }
  std::vector<BpeMerge> merges;
  MergeList(v, &merges, &r->whole_only);
  std::vector<std::string> jm;
  jm.reserve(merges.size());
  for (const BpeMerge& m : merges) jm.push_back(texts[m.left] + " " + texts[m.right]);
  r->merges = jm.size();
  r->ignore_merges = r->pre == "llama-bpe";
  w->AddString("tokenizer.ggml.model", "gpt2");
  w->AddString("tokenizer.ggml.pre", r->pre);
  w->AddStringArray("tokenizer.ggml.tokens", texts);
  w->AddI32Array("tokenizer.ggml.token_type", types);
  w->AddStringArray("tokenizer.ggml.merges", jm);
  w->AddU32("tokenizer.ggml.bos_token_id", v.eot_id());
  w->AddU32("tokenizer.ggml.eos_token_id", v.eot_id());
  w->AddBool("tokenizer.ggml.add_bos_token", true);
  w->AddBool("tokenizer.ggml.add_eos_token", false);
  return Status::OK();
}

// Every tensor, in the checkpoint's order, under llama.cpp's name. Norms (1-D)
// stay F32, as llama.cpp's converter keeps them; a Q8_0 tensor whose rows are
// no whole blocks of 32 is F16, as there.
Status AddTensors(const ExportSource& src, GgmlType type, GgufWriter* w, GgufReport* r) {
  const ModelConfig& c = src.ck.config;
  const ParamLayout layout = MakeParamLayout(c);
  for (const TensorInfo& t : layout.tensors) {
    const std::string name = LlamaCppName(t.name);
    if (name.empty()) return Status::Invalid("no llama.cpp name for tensor " + t.name);
    std::vector<int64_t> shape = t.shape;
    if (t.vocab_rows) shape[0] = c.vocab_size;  // the real rows, as the checkpoint holds them
    GgmlType tt = shape.size() == 1 ? GgmlType::kF32 : type;
    if (shape.back() % GgmlBlockElems(tt) != 0) {
      tt = GgmlType::kF16;
      r->f16_fallback++;
    }
    int64_t heads = 0;
    if (name.find(".attn_q.") != std::string::npos) heads = c.n_heads;
    if (name.find(".attn_k.") != std::string::npos) heads = c.n_kv_heads;
    const float* data = src.ck.params.data() + t.offset;
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    auto produce = [=](std::string* out) {
      if (heads == 0) {
        GgmlEncode(tt, data, n, out);
      } else {
        std::vector<float> p = PermuteRotary(data, heads, c.head_dim(), shape[1]);
        GgmlEncode(tt, p.data(), n, out);
      }
      return Status::OK();
    };
    LM_RETURN_IF_ERROR(w->AddTensor(name, shape, tt, produce));
    r->tensors++;
  }
  return Status::OK();
}

}  // namespace

Status WriteGguf(const ExportSource& src, GgmlType type, const std::string& path, GgufReport* r) {
  *r = GgufReport();
  GgufWriter w;
  AddModelKeys(src, type, &w);
  LM_RETURN_IF_ERROR(AddTokenizerKeys(src.vocab, &w, r).With(src.ck.vocab_path));
  LM_RETURN_IF_ERROR(AddTensors(src, type, &w, r));
  AtomicFile f;
  LM_RETURN_IF_ERROR(f.Open(path));
  LM_RETURN_IF_ERROR(w.Write(&f));
  r->bytes = f.bytes_written();
  return f.Commit();
}

}  // namespace lm
