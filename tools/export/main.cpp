// main.cpp: lm-export, a checkpoint in the files other tools load: a GGUF
// file for llama.cpp (gguf.cpp) and an inference-only Hugging Face model
// directory (hf.cpp, card.cpp). Options and reporting here; the manual in
// manual.cpp.
#include <cstdio>
#include <string>

#include "export.h"
#include "manual.h"
#include "util/cli.h"
#include "util/human.h"
#include "util/progress.h"

namespace lm {
namespace {

struct Options {
  std::string ckpt, gguf, hf, type = "f32";
  bool quiet = false;
};

void Declare(cli::Command* cmd, Options* o) {
  cli::Options add(cmd);
  add("ckpt", &o->ckpt, "PATH", "run directory (its latest checkpoint) or a step directory")
      .Required();
  add("gguf", &o->gguf, "FILE", "write a GGUF file for llama.cpp");
  add("hf", &o->hf, "DIR", "write an inference-only Hugging Face model directory");
  add("type", &o->type, "T", "weights: f32, f16, bf16 or q8_0 (--hf: f32 or bf16)").Default("f32");
  add.Flag("quiet,q", &o->quiet, "no summary on stderr");
}

// "506.1 MiB", "1.25 GiB".
std::string Size(uint64_t bytes) {
  if (bytes >= (1ull << 30)) return FormatGib((double)bytes);
  char b[32];
  snprintf(b, sizeof b, "%.1f MiB", bytes / 1048576.0);
  return b;
}

Status Validate(const Options& o, GgmlType* type) {
  if (o.gguf.empty() && o.hf.empty()) return Status::Usage("give --gguf FILE, --hf DIR or both");
  static const std::pair<const char*, GgmlType> kTypes[] = {{"f32", GgmlType::kF32},
                                                            {"f16", GgmlType::kF16},
                                                            {"bf16", GgmlType::kBF16},
                                                            {"q8_0", GgmlType::kQ8_0}};
  bool known = false;
  for (const auto& t : kTypes)
    if (o.type == t.first) *type = t.second, known = true;
  if (!known) return Status::Usage("--type " + o.type + ": expected f32, f16, bf16 or q8_0");
  if (!o.hf.empty() && o.type != "f32" && o.type != "bf16")
    return Status::Usage("--type " + o.type + ": --hf writes f32 or bf16 weights");
  return Status::OK();
}

void SayGguf(const std::string& path, GgmlType type, const GgufReport& r) {
  fprintf(stderr,
          "lm-export: wrote %s: %d tensors, %s, %s; tokenizer gpt2, pre-tokenizer %s, %zu merges\n",
          path.c_str(), r.tensors, GgmlTypeName(type), Size(r.bytes).c_str(), r.pre.c_str(),
          r.merges);
  if (r.f16_fallback)
    fprintf(stderr,
            "lm-export: %d matrices have rows that are no whole blocks of 32: F16, not Q8_0\n",
            r.f16_fallback);
  if (r.whole_only && !r.ignore_merges)
    fprintf(stderr,
            "lm-export: note: %zu tokens are made by no merge; lm gives them for a chunk that is "
            "the whole token, llama.cpp's %s pre-tokenizer never does\n",
            r.whole_only, r.pre.c_str());
}

Status Run(int argc, char** argv) {
  Options o;
  cli::Command cmd;
  cmd.synopsis = kExportSynopsis;
  cmd.manual = kExportManual;
  Declare(&cmd, &o);
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&cmd, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  GgmlType type = GgmlType::kF32;
  LM_RETURN_IF_ERROR(Validate(o, &type));
  SetQuiet(o.quiet);
  ExportSource src;
  LM_RETURN_IF_ERROR(LoadSource(o.ckpt, &src));
  if (!o.gguf.empty()) {
    GgufReport r;
    LM_RETURN_IF_ERROR(WriteGguf(src, type, o.gguf, &r));
    if (!o.quiet) SayGguf(o.gguf, type, r);
  }
  if (!o.hf.empty()) {
    HfReport r;
    LM_RETURN_IF_ERROR(WriteHfDir(src, type == GgmlType::kBF16, o.hf, &r));
    if (!o.quiet)
      fprintf(stderr, "lm-export: wrote %s: weights %s (%s), config, tokenizer, model card\n",
              o.hf.c_str(), type == GgmlType::kBF16 ? "BF16" : "F32", Size(r.weight_bytes).c_str());
  }
  return Status::OK();
}

}  // namespace
}  // namespace lm

int main(int argc, char** argv) {
  return lm::cli::Main("lm-export", argc, argv, lm::Run);
}
