// trainer.h: lm-train's training state, the work of one step, one
// validation pass, one sample and one checkpoint, and the loop that drives
// them at the run's cadence. main.cpp owns the options and the signals;
// everything here returns Status and speaks only through LogInfo/LogWarn.
//
// Data parallelism (ranks.cpp): every rank of an mpirun/srun/torchrun launch
// runs this same code on its share of each global batch. The ranks agree at
// fixed points (Sync) on the clock, stop requests and failures, so that every
// decision (stop, validate, checkpoint, skip a step) is the same everywhere;
// rank 0 alone writes the run directory and the log.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "comm/comm.h"
#include "data/loader.h"
#include "engine/evaluate.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/schedule.h"
#include "text/vocab.h"
#include "util/cli.h"
#include "util/file.h"
#include "util/status.h"

namespace lm {

// When the periodic events of a run happen: every N steps or every T seconds
// (off: only at the end, or never for samples).
struct Cadence {
  cli::Every val, sample, ckpt;
  double log_seconds = 5;  // a progress line at most this often (0: every step)
};

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
  AdamWConfig adam;  // with Muon's settings and each group's learning rate
  // The rest of the recipe (recipe.h).
  std::string optimizer = "adamw";  // or "muon" (then adam.muon.enabled)
  InitOptions init;
  double batch_warmup = 0;  // the batch grows to full over this fraction of the run
  double max_epochs = 0;    // the run ends after this many passes over the train split (0: off)
  bool keep_best = true;    // RUN/best: the checkpoint of lowest validation loss
  // The options the command line set (names without "--"); when resuming, the
  // batch, optimizer, schedule and seed options not among them are the run's.
  std::set<std::string> given;
  bool Given(const std::string& name) const { return given.count(name) > 0; }
  Schedule schedule;
  // Warmup as given: steps, a fraction of the run, or seconds of a budget.
  int64_t warmup_steps = -1;
  double warmup_fraction = -1;
  double warmup_seconds = -1;

  Cadence cadence;
  uint64_t val_tokens = 32768;
  int sample_tokens = 48;
  int keep = 3;
  int64_t stop_at = -1;  // stop (checkpointing) once this step is reached
  int max_bad_steps = 10;
  std::vector<std::string> command_line;
  // Data parallelism: how long a collective waits for the other ranks, and
  // what ends the process then (comm/comm.h CommOptions).
  double comm_timeout = 600;
  std::function<void(const std::string& what, double seconds)> on_comm_timeout;
};

struct StepStats {
  int64_t step = 0;  // steps done after this one
  float loss = 0, grad_norm = 0;
  double lr = 0;
  bool skipped = false;
  bool abandoned = false;  // interrupted between micro-steps: nothing changed
  int signal = 0;          // the stop signal (of any rank) that abandoned it
  double seconds = 0;      // wall time of the step
  uint64_t tokens = 0;     // tokens trained on in this step
};

// What ended a call of Trainer::Train.
struct TrainOutcome {
  int signal = 0;           // the stop signal that ended it (checkpointed), or 0
  std::string stop_reason;  // "--stop-at N", or "" when the run reached its end
};

// The loop's view of the outside world (main.cpp's signal handlers).
struct StopRequests {
  std::function<int()> stop_signal;       // a stop signal received, or 0
  std::function<bool()> take_checkpoint;  // SIGUSR1 since the last call
};

class Trainer {
 public:
  // Everything that can be refused is refused here, before any training:
  // options, data, vocabulary, model shape, memory, an existing run.
  Status Setup(const TrainerOptions& opt);
  // After a failed Setup: removes the run directory when Setup made it and it
  // holds nothing but the lock, so that a refused run leaves nothing behind.
  void RemoveEmptyRunDirectory();
  // Setup found the run complete in a directory it cannot write (a finished
  // run on read-only storage): nothing to do, no backend was made.
  bool complete_read_only() const { return complete_read_only_; }

  // Logs the run's plan, then trains to the end of the run (or a stop
  // request), validating, sampling and checkpointing at opt.cadence.
  Status Train(const StopRequests& stop, TrainOutcome* out);

  bool resumed() const { return resumed_; }
  const std::string& resumed_from() const { return resumed_from_; }
  const ModelConfig& config() const { return cfg_; }
  Backend* backend() { return backend_.get(); }
  int64_t step() const { return step_; }
  int64_t total_steps() const { return total_steps_; }  // -1 under a budget
  uint64_t tokens_seen() const { return tokens_seen_; }
  // The global batch: every rank's micro-steps.
  uint64_t tokens_per_step() const {
    return (uint64_t)micro_batch_ * T_ * micro_steps_ * (uint64_t)world();
  }
  int micro_steps() const { return micro_steps_; }  // per rank
  int rank() const { return comm_ ? comm_->rank() : 0; }
  int world() const { return comm_ ? comm_->size() : 1; }
  // A failed Status that every rank knows of (all return one); otherwise the
  // failing rank must end the job (Comm::Abort) so that none waits for it.
  bool failure_shared() const { return failure_shared_; }
  Comm* comm() { return comm_; }
  // The backend, then the collectives (MPI_Finalize): before dying of a signal.
  void CloseComm();
  int micro_batch() const { return micro_batch_; }
  int seq_len() const { return T_; }
  double elapsed() const;  // training-clock seconds, including earlier sessions
  double budget() const { return opt_.budget_seconds; }
  // Passes over the train split so far: tokens trained on / its tokens.
  double epochs() const;
  // Fraction of the run done, the schedule's input: of the steps, tokens or
  // budget, or of --max-epochs when that is further.
  double progress() const;
  // True once the step count or the budget is reached.
  bool Finished() const;
  bool has_val() const { return !val_plan_.empty(); }
  const Schedule& schedule() const { return opt_.schedule; }
  int64_t last_saved_step() const { return last_saved_; }

  // One optimizer step over micro_steps micro-batches.
  Status Step(StepStats* st);
  // Asked between the micro-steps of a step: a stop signal received, or 0.
  // When any rank has one, the step is abandoned on all (st->abandoned, with
  // st->signal; the weights and data position are as before it), so that a
  // stop request waits for one micro-step, not a whole step.
  void SetInterrupt(std::function<int()> f) { interrupt_ = std::move(f); }
  // Mean loss (nats/token) and bits per byte over the fixed validation
  // windows, by the evaluator lm-eval uses (engine/evaluate.h).
  Status Validate(double* loss, double* bpb);
  // A short greedy continuation of a prompt drawn from the validation data.
  Status Sample(std::string* prompt, std::string* text);
  // Writes RUN/step-NNNNNNN, re-points RUN/latest, prunes beyond --keep.
  Status Save(std::string* dir);

  // metrics.jsonl lines (appended, one JSON object each).
  Status LogStep(const StepStats& st, double tokens_per_s);
  Status LogVal(double loss, double bpb);

 private:
  struct Loop;  // the loop's clocks and counters (train_loop.cpp)
  // What the ranks agree on at a Sync: the largest stop signal any received,
  // and whether any had SIGUSR1.
  struct Agreed {
    int signal = 0;
    bool checkpoint = false;
  };

  // Data parallelism (ranks.cpp).
  Status StartComm();
  // Every rank calls it at the same points: the clock becomes the latest
  // session time of any rank (elapsed() reads it), and when `local` or
  // another rank failed, every rank returns an error (its own, or one naming
  // the rank that failed). With `stop`, the stop requests are shared too.
  Status Sync(Status local, const StopRequests* stop = nullptr, Agreed* out = nullptr);
  // root's Status, code and message, on every rank.
  Status ShareStatus(const Status& s, int root = 0);
  Status SameCheckpoint(const Checkpoint& meta, bool have_ckpt);
  Status ShareModel();
  Status ShareStartState(const std::vector<float>* params, const std::vector<float>* m,
                         const std::vector<float>* v, int64_t adam_step);
  Status GatherOptimizerState(std::vector<float>* m, std::vector<float>* v, int64_t* adam_step);
  std::string DataParallelJson() const;

  // Setup's stages, in order.
  Status OpenRunDirectory(Checkpoint* meta, bool* have_ckpt);
  Status LoadDataAndVocab(const Checkpoint& meta, bool have_ckpt);
  Status ChooseModel(const Checkpoint& meta, bool have_ckpt);
  Status CheckModelData();
  Status PlanBatch(const Checkpoint* resumed);
  Status PlanRankBatch();
  Status NextMicroBatch(int B, int64_t* count);
  Status CheckHostMemory() const;
  Status StartBackend();
  Status InitBackend(const BackendOptions& bo);
  Status StartState(const Checkpoint& meta, bool have_ckpt);

  Status CheckRunDirectory(Checkpoint* ck, bool* have);
  Status ResumeSettings(const Checkpoint& meta, int* given);
  Status ReadProgress(const Checkpoint& meta);
  Status RestoreCursors(const Checkpoint& ck);
  Status ResolveLength(const Checkpoint* resumed);
  Status LoadValWindows();
  Status RestoreFrom(const Checkpoint& meta);
  Status PrepareMetrics(int64_t keep_upto_step, double* lost_elapsed);
  Status AppendMetrics(const std::string& line);
  std::string ExtraStateJson();
  Status WriteRun(const std::vector<float>& m, const std::vector<float>& v, int64_t adam_step,
                  std::string* dir);

  // The loop's parts (train_loop.cpp).
  void LogPlan() const;
  Status FinishWithoutSteps();
  bool ShouldStop(const Agreed& ag, Loop* lp, TrainOutcome* out);
  Status AfterStep(const StepStats& st, Loop* lp);
  Status Periodic(Loop* lp);
  Status RunValidation(Loop* lp);
  Status UpdateBest(double loss, Loop* lp);
  double LengthProgress() const;
  void RunSample();
  Status SaveFor(const char* why, Loop* lp);
  Status End(const TrainOutcome& out, Loop* lp);
  std::string LastGood() const;  // the newest checkpoint's path, or "none was written"

  TrainerOptions opt_;
  // Declared before the backend, which uses them: destroyed after it.
  LaunchInfo launch_;
  std::unique_ptr<Comm> host_comm_, device_comm_;
  Comm* comm_ = nullptr;       // control: host memory (none, MPI, or NCCL staged)
  Comm* data_comm_ = nullptr;  // the backend's: host (none, MPI) or device (NCCL)
  bool failure_shared_ = false;
  double clock_ = 0;  // session seconds at the last Sync (agreed over the ranks)
  ModelConfig cfg_;
  Vocab vocab_;
  std::string vocab_bytes_;  // tok.bpe as loaded, copied into each checkpoint
  std::unique_ptr<Dataset> ds_;
  std::unique_ptr<BatchSampler> sampler_;
  std::unique_ptr<Backend> backend_;
  FileLock lock_;
  bool made_dir_ = false, locked_ = false;  // by Setup: the run directory, its lock
  bool read_only_ = false;                  // the run directory cannot be written
  bool complete_read_only_ = false;
  int T_ = 0, micro_batch_ = 0, micro_steps_ = 1;
  int64_t total_steps_ = -1;
  int64_t step_ = 0;
  uint64_t tokens_seen_ = 0;
  double elapsed_base_ = 0;  // seconds trained before this session
  std::chrono::steady_clock::time_point session_start_;
  uint64_t rng_ = 0;  // SplitMix64 state: picks the sample prompts
  bool resumed_ = false;
  bool ended_ = false;  // ended at a --budget deadline (now or by a checkpoint of that budget)
  std::string resumed_from_;
  int64_t last_saved_ = -1;
  bool last_saved_ended_ = false;  // that checkpoint records the budget's end
  int64_t best_step_ = -1;  // the step RUN/best names, and its validation loss
  double best_loss_ = 0;
  bool warned_epochs_ = false;
  std::vector<uint32_t> batch_;
  std::vector<int32_t> inputs_, targets_;
  // Validation: the windows of the val split that lm-train scores
  // (SpreadWindows), and each token's UTF-8 length (-1: special).
  std::vector<EvalWindow> val_plan_;
  std::vector<EvalWindow> my_val_plan_;  // this rank's share (every world()-th window)
  std::vector<int32_t> token_bytes_;
  std::vector<uint32_t> val_buf_;
  int metrics_fd_ = -1;
  std::string metrics_pending_;  // lines not yet written (a full disk)
  bool metrics_held_ = false;
  std::function<int()> interrupt_;
};

}  // namespace lm
