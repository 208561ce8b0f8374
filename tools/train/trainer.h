// trainer.h: lm-train's training state and the work of one step, one
// validation pass, one sample and one checkpoint. main.cpp owns the options,
// the signals and the loop; everything here returns Status and prints nothing
// except through LogInfo/LogWarn.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "data/loader.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/schedule.h"
#include "text/vocab.h"
#include "util/file.h"
#include "util/status.h"

namespace lm {

struct TrainerOptions {
  std::string data_dir, vocab_path, out_dir;
  std::string device = "auto";
  int threads = 0;
  bool recompute = false;  // CUDA: recompute activations in backward (larger models)
  double peak_flops = 0;   // MFU denominator override (FLOP/s); 0: the backend's table
  uint64_t seed = 1;
  bool resume = false;  // insist on continuing an existing run

  // The model: from flags (have_model) or, when resuming without flags, the checkpoint.
  bool have_model = false;
  ModelConfig model;  // vocab_size is filled in from the vocabulary

  // Length: exactly one of steps (>= 0), tokens (> 0), budget_seconds (> 0).
  int64_t steps = -1;
  uint64_t tokens = 0;
  double budget_seconds = 0;

  int64_t batch_tokens = 0;  // 0: one micro-batch per step
  int micro_batch = 8;
  AdamWConfig adam;
  // The options the command line set (names without "--"); when resuming, the
  // batch, optimizer, schedule and seed options not among them are the run's.
  std::set<std::string> given;
  bool Given(const std::string& name) const { return given.count(name) > 0; }
  Schedule schedule;
  // Warmup as given: steps, a fraction of the run, or seconds of a budget.
  int64_t warmup_steps = -1;
  double warmup_fraction = -1;
  double warmup_seconds = -1;

  int64_t val_every_steps = 0;  // 0: time-based or off
  double val_every_seconds = 0;
  uint64_t val_tokens = 32768;
  int64_t sample_every_steps = 0;
  double sample_every_seconds = 0;
  int sample_tokens = 48;
  int64_t ckpt_every_steps = 0;
  double ckpt_every_seconds = 1800;
  int keep = 3;
  int64_t stop_at = -1;  // stop (checkpointing) once this step is reached
  int max_bad_steps = 10;
  std::vector<std::string> command_line;
};

struct StepStats {
  int64_t step = 0;  // steps done after this one
  float loss = 0, grad_norm = 0;
  double lr = 0;
  bool skipped = false;
  bool abandoned = false;  // interrupted between micro-steps: nothing changed
  double seconds = 0;      // wall time of the step
  uint64_t tokens = 0;     // tokens trained on in this step
};

class Trainer {
 public:
  // Everything that can be refused is refused here, before any training:
  // options, data, vocabulary, model shape, memory, an existing run.
  Status Setup(const TrainerOptions& opt);
  // After a failed Setup: removes the run directory when Setup made it and it
  // holds nothing but the lock, so that a refused run leaves nothing behind.
  void RemoveEmptyRunDirectory();

  bool resumed() const { return resumed_; }
  const std::string& resumed_from() const { return resumed_from_; }
  const ModelConfig& config() const { return cfg_; }
  Backend* backend() { return backend_.get(); }
  int64_t step() const { return step_; }
  int64_t total_steps() const { return total_steps_; }  // -1 under a budget
  uint64_t tokens_seen() const { return tokens_seen_; }
  uint64_t tokens_per_step() const { return (uint64_t)micro_batch_ * T_ * micro_steps_; }
  int micro_steps() const { return micro_steps_; }
  int micro_batch() const { return micro_batch_; }
  int seq_len() const { return T_; }
  double elapsed() const;  // training-clock seconds, including earlier sessions
  double budget() const { return opt_.budget_seconds; }
  // Fraction of the run done, the schedule's input.
  double progress() const;
  // True once the step count or the budget is reached.
  bool Finished() const;
  // Under --budget: the next step would end well past the deadline, so the
  // run ends here; recorded in the checkpoint, so that rerunning the same
  // command leaves the run alone.
  void EndAtDeadline() { ended_ = true; }
  bool has_val() const { return !val_windows_.empty(); }
  const Schedule& schedule() const { return opt_.schedule; }

  // One optimizer step over micro_steps micro-batches.
  Status Step(StepStats* st);
  // Asked between the micro-steps of a step: when it returns true, the step is
  // abandoned (st->abandoned; the weights and data position are as before it),
  // so that a stop request waits for one micro-step, not a whole step.
  void SetInterrupt(std::function<bool()> f) { interrupt_ = std::move(f); }
  // Mean loss (nats/token) and bits per byte over the fixed validation windows.
  Status Validate(double* loss, double* bpb);
  // A short greedy continuation of a prompt drawn from the validation data.
  Status Sample(std::string* prompt, std::string* text);
  // Writes RUN/step-NNNNNNN and re-points RUN/latest.
  Status Save(std::string* dir);
  int64_t last_saved_step() const { return last_saved_; }

  // metrics.jsonl lines (appended, one JSON object each).
  Status LogStep(const StepStats& st, double tokens_per_s);
  Status LogVal(double loss, double bpb);

 private:
  Status CheckRunDirectory(Checkpoint* ck, bool* have);
  Status ResumeSettings(const Checkpoint& meta, int* given);
  Status RestoreCursors(const Checkpoint& ck);
  Status ResolveLength(const Checkpoint* resumed);
  Status LoadValWindows();
  Status RestoreFrom(const Checkpoint& meta);
  Status PrepareMetrics(int64_t keep_upto_step, double* lost_elapsed);
  Status AppendMetrics(const std::string& line);
  std::string ExtraStateJson();

  TrainerOptions opt_;
  ModelConfig cfg_;
  Vocab vocab_;
  std::string vocab_bytes_;  // tok.bpe as loaded, copied into each checkpoint
  std::unique_ptr<Dataset> ds_;
  std::unique_ptr<BatchSampler> sampler_;
  std::unique_ptr<Backend> backend_;
  FileLock lock_;
  bool made_dir_ = false, locked_ = false;  // by Setup: the run directory, its lock
  int T_ = 0, micro_batch_ = 0, micro_steps_ = 1;
  int64_t total_steps_ = -1;
  int64_t step_ = 0;
  uint64_t tokens_seen_ = 0;
  double elapsed_base_ = 0;  // seconds trained before this session
  std::chrono::steady_clock::time_point session_start_;
  uint64_t rng_ = 0;  // splitmix64 state: picks the sample prompts
  bool resumed_ = false;
  bool ended_ = false;  // EndAtDeadline, or a checkpoint of the same budget that did
  std::string resumed_from_;
  int64_t last_saved_ = -1;
  std::vector<uint32_t> batch_;
  std::vector<int32_t> inputs_, targets_;
  // Validation: windows of val_T_+1 tokens, and the bytes their targets stand for.
  int val_T_ = 0;
  std::vector<uint32_t> val_windows_;
  uint64_t val_bytes_ = 0;
  int metrics_fd_ = -1;
  std::function<bool()> interrupt_;
};

}  // namespace lm
