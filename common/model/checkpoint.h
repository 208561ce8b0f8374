// checkpoint.h: reading checkpoints written by lm-train (the trainer owns the
// writing side, in model/checkpoint.cpp too). Layout of a run directory:
//
//   RUN/step-NNNNNNN/{model.safetensors, config.json, generation_config.json,
//                     tokenizer.json, tokenizer_config.json, tok.bpe,
//                     trainer-state.json, optimizer/optimizer.safetensors}
//   RUN/latest        -> the newest complete step directory (a symlink or a file naming it)
//   RUN/best          -> the step directory with the lowest validation loss (lm-train's)
//
// A step directory is a Hugging Face model directory as it is; the optimizer
// state sits in a subdirectory so that no loader takes it for weights.
// Version 1 (optimizer.safetensors beside the weights, no Hugging Face files
// but config.json) is still read and resumed.
//
// A step directory is complete only once renamed into place; readers never
// see a half-written one. LoadCheckpoint verifies every file's XXH3 against
// trainer-state.json and the config against the tensors before returning.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>
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
  std::string vocab_path;     // dir/tok.bpe
  uint64_t vocab_id = 0;      // identity hash of that vocabulary
  std::vector<float> params;  // MakeParamLayout(config) order, padding rows zero
  std::string state_json;     // trainer-state.json as read (the trainer's own fields)
};

// RUN (via RUN/latest) or a step directory -> the step directory.
Status ResolveCheckpoint(const std::string& path, std::string* step_dir);
// Complete step directories of RUN, oldest first.
Status ListCheckpoints(const std::string& run, std::vector<std::string>* step_dirs);
// Loads and verifies. With load_params false, only the metadata (fast).
Status LoadCheckpoint(const std::string& step_dir, bool load_params, Checkpoint* out);

// trainer-state.json's text: parses it and checks its checksum and the types
// of every field LoadCheckpoint reads, touching no file (the files it lists
// are LoadCheckpoint's to check). `path` names it in errors.
Status ParseTrainerState(const std::string& text, const std::string& path, nlohmann::json* state);
// The bytes of trainer-state.json for a state object that holds no
// "checksum": its dump(2) with the checksum member sealing it.
std::string SealTrainerState(const nlohmann::json& state);

// ---------------------------------------------------------------------------
// Writing (lm-train). docs/formats/checkpoint.md describes every file.

// "step-0000100": at least 7 digits, so that names sort by step.
std::string CheckpointDirName(int64_t step);

// What a step directory holds. The pointers must cover MakeParamLayout(config)
// .total floats; padding vocabulary rows are not written.
struct CheckpointContents {
  ModelConfig config;
  int eot_id = -1;
  int64_t step = 0;
  uint64_t tokens_seen = 0;
  double elapsed_seconds = 0;
  uint64_t vocab_id = 0;
  std::string vocab_path;   // the tok.bpe to copy in...
  std::string vocab_bytes;  // ...or its contents, used instead when not empty
  // More files for the step directory, name -> bytes (the tokenizer files,
  // which model/ cannot make: text/export.h's HfTokenizerFiles). Each is
  // listed in trainer-state.json's files; a name must be a plain file name
  // that is none of the writer's own.
  std::vector<std::pair<std::string, std::string>> extra_files;
  const float* params = nullptr;
  const float* adam_m = nullptr;  // null: no optimizer.safetensors
  const float* adam_v = nullptr;
  int64_t adam_step = 0;
  // Muon's state: adam_m holds the hidden matrices' (ParamGroup::kMatrix)
  // momentum buffers, written as momentum_buffer.NAME; their adam_v is not written.
  bool muon = false;
  // A JSON object whose members are added to trainer-state.json (the trainer's
  // RNG, loader cursor, command line, ...). Must not reuse the reserved keys.
  std::string extra_json = "{}";
};

// Writes RUN/step-NNNNNNN: every file into a temporary directory, each
// fsynced, then the directory renamed into place and RUN fsynced. *step_dir
// (optional) gets the directory written. Diverged (non-finite) weights or
// moments are refused (Invalid).
Status WriteCheckpoint(const std::string& run, const CheckpointContents& c, std::string* step_dir);
// Re-points RUN/latest at step_dir (a symlink written beside it and renamed
// over it), then fsyncs RUN.
Status PointLatest(const std::string& run, const std::string& step_dir);
// Points RUN/best at step_dir the same way: the checkpoint with the lowest
// validation loss so far, which PruneCheckpoints never deletes.
Status PointBest(const std::string& run, const std::string& step_dir);
// Deletes the oldest step directories beyond `keep` (keep <= 0 keeps all),
// never `spare` nor the one RUN/best names; each is renamed to .old-step-NNNNNNN-PID first, so that
// a reader never sees a half-deleted one, even when this process is killed.
Status PruneCheckpoints(const std::string& run, int keep, const std::string& spare);
// WriteCheckpoint, PointLatest, then PruneCheckpoints. With prune_error
// given, a failure to prune goes there and the save still succeeds (the
// checkpoint is complete); without it, it is returned.
Status SaveCheckpoint(const std::string& run, const CheckpointContents& c, int keep,
                      std::string* step_dir, Status* prune_error = nullptr);

// Reads optimizer.safetensors of a step directory (verified against
// trainer-state.json) into m and v, layout.total floats each, padding rows zero.
// Under Muon (format lm-muon), m holds the matrices' momentum buffers and their
// v is zero, as the backends hold them. *optimizer (optional): "adamw" or "muon".
Status LoadOptimizerState(const std::string& step_dir, const ModelConfig& config,
                          std::vector<float>* m, std::vector<float>* v, int64_t* adam_step,
                          std::string* optimizer = nullptr);

}  // namespace lm
