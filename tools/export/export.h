// export.h: what lm-export's parts share: the checkpoint and vocabulary read
// once (source.cpp), and the two writers, a GGUF file for llama.cpp
// (gguf.cpp) and a Hugging Face model directory (hf.cpp, card.cpp).
#pragma once

#include <cstdint>
#include <string>

#include "format/gguf.h"
#include "model/checkpoint.h"
#include "text/vocab.h"
#include "util/status.h"

namespace lm {

struct ExportSource {
  std::string step_dir;
  Checkpoint ck;  // weights loaded and verified (MakeParamLayout order, padding rows zero)
  Vocab vocab;    // its tok.bpe
};

// Resolves `path` (a run or a step directory) and loads it, verified as
// lm-eval and lm-sample verify it.
Status LoadSource(const std::string& path, ExportSource* out);

struct GgufReport {
  uint64_t bytes = 0;
  int tensors = 0;
  int f16_fallback = 0;        // --type q8_0 tensors whose rows are no whole blocks: F16
  std::string pre;             // tokenizer.ggml.pre
  size_t merges = 0;           // tokenizer.ggml.merges
  size_t whole_only = 0;       // tokens no merge makes (text/export.h MergeList)
  bool ignore_merges = false;  // llama.cpp looks whole chunks up first for `pre`
};

// `path` as a GGUF v3 file of llama.cpp's llama architecture (docs/export.md),
// written atomically. Invalid when the vocabulary's pattern has no llama.cpp
// twin.
Status WriteGguf(const ExportSource& src, GgmlType type, const std::string& path, GgufReport* r);

struct HfReport {
  uint64_t weight_bytes = 0;
};

// `dir` as an inference-only Hugging Face model directory: model.safetensors
// (F32 or BF16), config.json, generation_config.json, the tokenizer files and
// README.md, assembled beside it and renamed into place. A `dir` that exists
// must be empty or hold only files lm-export writes (a previous export).
Status WriteHfDir(const ExportSource& src, bool bf16, const std::string& dir, HfReport* r);

// README.md of that directory: a model card with the figures of the
// checkpoint's trainer-state.json and of RUN/metrics.jsonl when the step
// directory is in a run.
std::string ModelCard(const ExportSource& src, bool bf16);

}  // namespace lm
