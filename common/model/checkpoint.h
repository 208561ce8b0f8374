// checkpoint.h: reading checkpoints written by lm-train (the trainer owns the
// writing side, in model/checkpoint.cpp too). Layout of a run directory:
//
//   RUN/step-NNNNNNN/{model.safetensors, optimizer.safetensors, config.json,
//                     trainer-state.json, tok.bpe}
//   RUN/latest        -> the newest complete step directory (a symlink or a file naming it)
//
// A step directory is complete only once renamed into place; readers never
// see a half-written one. LoadCheckpoint verifies every file's XXH3 against
// trainer-state.json and the config against the tensors before returning.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/params.h"
#include "util/status.h"

namespace lm {

struct Checkpoint {
  std::string dir;  // the step directory
  ModelConfig config;
  int eot_id = -1;
  int64_t step = 0;
  uint64_t tokens_seen = 0;
  double elapsed_seconds = 0;
  std::string vocab_path;       // dir/tok.bpe
  uint64_t vocab_id = 0;        // identity hash of that vocabulary
  std::vector<float> params;    // MakeParamLayout(config) order, padding rows zero
};

// RUN (via RUN/latest) or a step directory -> the step directory.
Status ResolveCheckpoint(const std::string& path, std::string* step_dir);
// Complete step directories of RUN, oldest first.
Status ListCheckpoints(const std::string& run, std::vector<std::string>* step_dirs);
// Loads and verifies. With load_params false, only the metadata (fast).
Status LoadCheckpoint(const std::string& step_dir, bool load_params, Checkpoint* out);

}  // namespace lm
