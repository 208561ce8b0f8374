// main.cpp: lm-train, training a Llama-architecture model on packed shards to
// a step count, a token count or a wall-clock budget, with checkpoints that
// resume bit-exactly (on the CPU) and load in transformers.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "backend/autosize.h"
#ifdef LM_HAVE_CUDA
#include "cuda/profile.h"
#endif
#include "trainer.h"
#include "util/cli.h"
#include "util/file.h"
#include "util/human.h"
#include "util/progress.h"
#include "util/signals.h"

namespace lm {
namespace {

std::atomic<int> g_stop{0};        // the signal that asked to stop
std::atomic<int> g_checkpoint{0};  // SIGUSR1: checkpoint now

void OnStop(int sig) {
  if (g_stop.load()) {
    // A second request while finishing the step: stop now. The step directory
    // being written (if any) is a temporary that the next run removes.
    DieOfSignal(sig);
    return;
  }
  g_stop = sig;
  // Said at once (write(2) is safe here): a long step or save gives no other
  // sign that the first Ctrl-C was heard, and a second one loses the save.
  const char* m = sig == SIGINT    ? "lm-train: SIGINT: "
                  : sig == SIGTERM ? "lm-train: SIGTERM: "
                                   : "lm-train: SIGHUP: ";
  const char* tail =
      "stopping after this micro-step and saving a checkpoint; "
      "send it again to stop at once without saving\n";
  ssize_t ignored = write(STDERR_FILENO, m, strlen(m));
  ignored = write(STDERR_FILENO, tail, strlen(tail));
  (void)ignored;
}
void OnUsr1(int) {
  g_checkpoint = 1;
}

void InstallSignals() {
  struct sigaction sa = {};
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = OnStop;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);  // a closed terminal or ssh session: save, then stop
  sa.sa_handler = OnUsr1;
  sigaction(SIGUSR1, &sa, nullptr);
  // Past `ulimit -f` a write then fails with EFBIG, reported like any write error.
  signal(SIGXFSZ, SIG_IGN);
  // stderr piped into a `tee` that has gone (killed, its pane closed): the
  // log lines are lost, not the run, which would otherwise die at its next
  // line without a checkpoint. metrics.jsonl still records every step.
  signal(SIGPIPE, SIG_IGN);
}

bool AllDigits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// "500" (steps, also "10k") or "30m" (a duration: s, m, h, d).
Status ParseEvery(const std::string& opt, const std::string& v, int64_t* steps, double* seconds) {
  *steps = 0;
  *seconds = 0;
  if (v == "0" || v == "off" || v == "never") return Status::OK();
  uint64_t n;
  if (AllDigits(v) ||
      (v.size() > 1 && (v.back() == 'k' || v.back() == 'M') && cli::ParseCount(v, &n).ok())) {
    LM_RETURN_IF_ERROR(cli::ParseCount(v, &n).With(opt));
    *steps = (int64_t)n;
    return Status::OK();
  }
  Status s = cli::ParseDuration(v, seconds);
  if (!s.ok() || *seconds <= 0)
    return Status::Usage(opt + ": expected a step count (500) or a duration (30m), got '" + v +
                         "'");
  return Status::OK();
}

Status ParseWarmup(const std::string& v, TrainerOptions* o) {
  o->warmup_steps = -1;
  o->warmup_fraction = -1;
  o->warmup_seconds = -1;
  if (!v.empty() && v.back() == '%') {
    char* end;
    double f = strtod(v.c_str(), &end);
    if (end != v.c_str() + v.size() - 1 || !(f >= 0 && f < 100))
      return Status::Usage("--warmup: bad percentage '" + v + "'");
    o->warmup_fraction = f / 100;
    return Status::OK();
  }
  if (AllDigits(v)) {
    o->warmup_steps = std::stoll(v);
    return Status::OK();
  }
  char* end;
  double f = strtod(v.c_str(), &end);
  if (end == v.c_str() + v.size() && !v.empty()) {
    if (!(f >= 0 && f < 1))
      return Status::Usage("--warmup: a fraction must lie in [0, 1), got '" + v + "'");
    o->warmup_fraction = f;
    return Status::OK();
  }
  double s;
  if (!cli::ParseDuration(v, &s).ok())
    return Status::Usage(
        "--warmup: expected steps (200), a fraction (0.02 or 2%) or a duration (5m), got '" + v +
        "'");
  o->warmup_seconds = s;
  return Status::OK();
}

const char* kManual = R"(DESCRIPTION
  Trains a decoder-only transformer (exactly the architecture of Hugging Face
  transformers' LlamaForCausalLM) on a dataset packed by lm-pack, with AdamW
  (decoupled weight decay, none on norm weights), gradient clipping and
  gradient accumulation up to --batch-tokens per optimizer step.

  The length of the run is one of --steps, --tokens or --budget. Under
  --budget the learning rate follows the fraction of the budget elapsed:
  warmup, a stable phase, then a decay that reaches zero at the deadline,
  where training stops; the final validation and checkpoint come after it
  (budget a few minutes for them). Under --steps/--tokens the same schedule
  runs on steps.

  Checkpoints go to RUN/step-NNNNNNN/ (model.safetensors, config.json,
  optimizer.safetensors, trainer-state.json, tok.bpe): transformers loads a
  step directory with from_pretrained as it is. RUN/latest points at the newest
  complete one and is updated last; older ones beyond --keep are then deleted.
  A checkpoint is written every --ckpt-every, on SIGUSR1, on SIGINT/SIGTERM/SIGHUP
  (after the current micro-step: a step that is not finished is dropped and
  redone on resume; the run then dies of that signal, so that a shell sees
  status 128+N (130 for SIGINT) and a script running it stops too; a second
  signal stops at once without saving, leaving the previous checkpoint) and
  at the end.
  docs/formats/checkpoint.md describes the files.

  Rerunning the same command on an existing RUN (or adding --resume) continues
  from RUN/latest: the data order, optimizer and schedule continue where they
  were, and on the CPU backend the result is bitwise identical to a run that
  was never interrupted. Under --budget, time already trained counts, including
  the work lost after the last checkpoint of a crashed run. Options left out
  when resuming take the run's values: the model, the length, the vocabulary
  (the checkpoint's copy), the batch geometry, the optimizer (--lr, --beta1,
  --beta2, --weight-decay, --grad-clip) and the schedule (--schedule,
  --warmup, --decay). One given with another value than the run's applies
  from then on, with a warning; --seed is always the run's.

  The model is a --preset, explicit sizes, or --auto-size: a few seconds of
  throughput probes of a ladder of shapes on the device (--probe-seconds each),
  then the largest shape whose compute-optimal token count (20 tokens per
  parameter) fits the budget at the measured speed. The table of candidates
  and the reason for the choice are printed before training and saved in
  RUN/auto-size.json. A new run with --budget and no model named is sized this
  way. --context sets the probed context (default 1024).

  MFU is 6 x parameters + 12 x layers x dim x context FLOPs per token over the
  device's peak dense bf16 rate, from a table of GPUs (H100/H200 SXM 989
  TFLOP/s, A100 312) or --peak-flops; for other devices it says unknown.
  --recompute trades a third more work for much less activation memory (CUDA).

  A step whose loss or gradient is NaN or Inf is skipped with a warning;
  --max-bad-steps of them in a row stop the run (exit 1), leaving the last good
  checkpoint.

  On stderr, a line every --log-every seconds: step, loss, learning rate,
  gradient norm, tokens/s, MFU (when the device's peak is known), elapsed and
  time left. Every step goes to RUN/metrics.jsonl, with the validation loss
  (nats/token and bits per byte) every --val-every; scripts/plot-metrics RUN
  draws it. A short greedy sample from a validation prompt is logged every
  --sample-every.

  Refused before any work: data packed with another vocabulary than --vocab, a
  context longer than the train split, a RUN holding a different model,
  impossible shapes (heads not dividing dim, ...), and a model that does not
  fit in memory.

  Steps-or-duration options take a plain count for steps (500, 10k) or a
  duration with a unit (90s, 30m, 2h); 0 (or off) turns off the periodic
  event: --val-every 0 still validates at the end, --ckpt-every 0 still
  checkpoints at the end and on signals, and --sample-every follows
  --val-every unless given.

PRESETS
  tiny (CPU tests), small (CPU demo), gpt2-124m, gpt2-350m. Size options
  given with --preset override its fields.

EXAMPLES
  lm-train --data shards/ --vocab tok.bpe --out run/ --preset tiny --steps 200
  lm-train --data shards/ --vocab tok.bpe --out run/ --preset gpt2-124m \
      --budget 24h --batch-tokens 524288 --micro-batch 16 --device cuda
  lm-train --data shards/ --vocab tok.bpe --out run/ --budget 24h --auto-size
  kill -USR1 $(pgrep lm-train)     # checkpoint now, keep training

EXIT STATUS
  0  trained to the end (or to --stop-at)
  1  bad input (data, vocabulary, run directory), out of memory, too many
     non-finite steps, or an I/O error
  2  usage error
  stopped by SIGINT, SIGTERM or SIGHUP: it checkpoints, then dies of that
  signal (a shell shows 130, 143 or 129); rerun the same command to continue
)";

Status Run(int argc, char** argv) {
  cli::Command cmd;
  cmd.synopsis =
      "lm-train --data DIR --vocab tok.bpe --out RUN [--preset NAME | sizes]\n"
      "                (--steps N | --tokens N | --budget DURATION) [options]";
  cmd.manual = kManual;
  std::string preset, length_steps, tokens, budget, batch_tokens, warmup = "0.02", schedule = "wsd";
  std::string val_every = "200", ckpt_every = "30m", sample_every = "0", val_tokens = "32k";
  int layers = 0, dim = 0, heads = 0, kv_heads = 0, ffn = 0, context = 0;
  double rope_theta = 0, log_every = 5, probe_seconds = 8;
  std::string peak_flops;
  TrainerOptions o;
  float lr = 6e-4f;
  auto& add = cmd.options;
  add.add_options()("data", cli::po::value(&o.data_dir)->value_name("DIR"),
                    "packed dataset (lm-pack's output)")(
      "vocab", cli::po::value(&o.vocab_path)->value_name("FILE"),
      "the vocabulary the data was encoded with (tok.bpe); optional when resuming")(
      "out,o", cli::po::value(&o.out_dir)->value_name("RUN"),
      "run directory (created; resumed when it holds checkpoints)")(
      "preset", cli::po::value(&preset)->value_name("NAME"),
      "model preset: tiny, small, gpt2-124m, gpt2-350m")(
      "model", cli::po::value(&preset)->value_name("NAME"), "same as --preset")(
      "auto-size", "pick the model for --budget by probing the device's throughput")(
      "layers", cli::po::value(&layers)->value_name("N"), "transformer layers")(
      "dim", cli::po::value(&dim)->value_name("N"), "hidden size")(
      "heads", cli::po::value(&heads)->value_name("N"), "attention heads")(
      "kv-heads", cli::po::value(&kv_heads)->value_name("N"),
      "key/value heads (grouped-query attention; default: heads)")(
      "ffn-dim", cli::po::value(&ffn)->value_name("N"), "SwiGLU hidden size")(
      "context", cli::po::value(&context)->value_name("T"),
      "sequence length trained on (max_position_embeddings)")(
      "rope-theta", cli::po::value(&rope_theta)->value_name("X"), "RoPE base (default 10000)")(
      "untied", "separate LM head (default: tied to the embedding)")(
      "steps", cli::po::value(&length_steps)->value_name("N"),
      "train for N optimizer steps (0: save the initial weights)")(
      "tokens", cli::po::value(&tokens)->value_name("N"),
      "train for N tokens (rounded up to whole steps)")(
      "budget", cli::po::value(&budget)->value_name("DURATION"),
      "train until this much time has elapsed (24h, 90m)")(
      "batch-tokens", cli::po::value(&batch_tokens)->value_name("N"),
      "tokens per optimizer step, by gradient accumulation (default: one micro-batch)")(
      "micro-batch", cli::po::value(&o.micro_batch)->default_value(8)->value_name("B"),
      "sequences per forward/backward")(
      "lr", cli::po::value(&lr)->default_value(6e-4f, "6e-4")->value_name("X"),
      "peak learning rate")("warmup",
                            cli::po::value(&warmup)->default_value("0.02")->value_name("W"),
                            "warmup: steps (200), fraction of the run (0.02, 2%) or duration (5m)")(
      "schedule", cli::po::value(&schedule)->default_value("wsd")->value_name("S"),
      "wsd or cosine")(
      "decay",
      cli::po::value(&o.schedule.decay_fraction)->default_value(0.2, "0.2")->value_name("F"),
      "wsd: fraction of the run spent decaying to zero")(
      "weight-decay",
      cli::po::value(&o.adam.weight_decay)->default_value(0.1f, "0.1")->value_name("X"),
      "AdamW decoupled weight decay (matrices only)")(
      "beta1", cli::po::value(&o.adam.beta1)->default_value(0.9f, "0.9")->value_name("X"),
      "AdamW beta1")("beta2",
                     cli::po::value(&o.adam.beta2)->default_value(0.95f, "0.95")->value_name("X"),
                     "AdamW beta2")(
      "grad-clip", cli::po::value(&o.adam.grad_clip)->default_value(1.0f, "1.0")->value_name("X"),
      "clip the global gradient norm (0: off)")(
      "val-every", cli::po::value(&val_every)->default_value("200")->value_name("N|DURATION"),
      "validation loss every N steps or DURATION (0: only at the end)")(
      "val-tokens", cli::po::value(&val_tokens)->default_value("32k")->value_name("N"),
      "validation tokens per evaluation, in windows spread over the val split (0: none)")(
      "sample-every", cli::po::value(&sample_every)->default_value("0")->value_name("N|DURATION"),
      "log a short greedy sample (default: with each validation)")(
      "sample-tokens", cli::po::value(&o.sample_tokens)->default_value(48)->value_name("N"),
      "tokens per sample")(
      "ckpt-every", cli::po::value(&ckpt_every)->default_value("30m")->value_name("N|DURATION"),
      "checkpoint every N steps or DURATION")(
      "keep", cli::po::value(&o.keep)->default_value(3)->value_name("K"),
      "step directories kept (0: all)")(
      "device", cli::po::value(&o.device)->default_value("auto")->value_name("D"),
      "cpu, cuda or auto")("threads,j",
                           cli::po::value(&o.threads)->default_value(0)->value_name("N"),
                           "CPU threads (0: all cores)")(
      "seed", cli::po::value(&o.seed)->default_value(1)->value_name("S"),
      "seeds the weights and the data order")(
      "resume", "continue RUN from RUN/latest (an error when it holds no checkpoint)")(
      "stop-at", cli::po::value(&o.stop_at)->value_name("STEP"),
      "checkpoint and exit 0 once this step is reached (the schedule is unchanged)")(
      "max-bad-steps", cli::po::value(&o.max_bad_steps)->default_value(10)->value_name("N"),
      "stop after N non-finite steps in a row")(
      "log-every", cli::po::value(&log_every)->default_value(5.0, "5")->value_name("SECONDS"),
      "seconds between progress lines (0: every step)")(
      "recompute", "recompute activations during backward: less memory, about a third more work")(
      "peak-flops", cli::po::value(&peak_flops)->value_name("X"),
      "the device's peak dense bf16 FLOP/s for MFU (989e12, 989T); default: a table of GPUs")(
      "probe-seconds", cli::po::value(&probe_seconds)->default_value(8.0, "8")->value_name("S"),
      "--auto-size: timed seconds per candidate shape");
  bool exit_now = false;
  LM_RETURN_IF_ERROR(cli::Parse(&cmd, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  LM_RETURN_IF_ERROR(cli::ResolveThreads(o.threads, &o.threads));
  const auto& vm = cmd.vm;
  if (o.data_dir.empty()) return Status::Usage("--data is required");
  if (o.out_dir.empty()) return Status::Usage("--out is required");
  for (int i = 0; i < argc; i++) o.command_line.push_back(argv[i]);
  o.resume = vm.count("resume") > 0;
  for (const auto& kv : vm)
    if (!kv.second.defaulted()) o.given.insert(kv.first);
  o.adam.lr = lr;
  if (!(lr > 0) || !std::isfinite(lr)) return Status::Usage("--lr must be a positive number");
  // Values outside these ranges make AdamW divide by zero or diverge: a NaN
  // model saved with exit 0.
  if (!(o.adam.beta1 >= 0 && o.adam.beta1 < 1)) return Status::Usage("--beta1 must be in [0, 1)");
  if (!(o.adam.beta2 >= 0 && o.adam.beta2 < 1)) return Status::Usage("--beta2 must be in [0, 1)");
  if (!(o.adam.weight_decay >= 0) || !std::isfinite(o.adam.weight_decay))
    return Status::Usage("--weight-decay must be a number >= 0");
  if (!(o.adam.grad_clip >= 0) || !std::isfinite(o.adam.grad_clip))
    return Status::Usage("--grad-clip must be a number >= 0 (0: no clipping)");
  LM_RETURN_IF_ERROR(ParseScheduleKind(schedule, &o.schedule.kind));
  LM_RETURN_IF_ERROR(ParseWarmup(warmup, &o));
  if (!length_steps.empty()) {
    uint64_t n;
    LM_RETURN_IF_ERROR(cli::ParseCount(length_steps, &n).With("--steps"));
    o.steps = (int64_t)n;
  }
  if (!tokens.empty()) {
    LM_RETURN_IF_ERROR(cli::ParseCount(tokens, &o.tokens).With("--tokens"));
    if (o.tokens == 0) return Status::Usage("--tokens must be positive");
  }
  if (!budget.empty()) {
    LM_RETURN_IF_ERROR(cli::ParseDuration(budget, &o.budget_seconds).With("--budget"));
    if (!(o.budget_seconds > 0)) return Status::Usage("--budget must be positive");
  }
  if (!batch_tokens.empty()) {
    uint64_t n;
    LM_RETURN_IF_ERROR(cli::ParseCount(batch_tokens, &n).With("--batch-tokens"));
    if (n == 0) return Status::Usage("--batch-tokens must be positive");
    o.batch_tokens = (int64_t)n;
  }
  LM_RETURN_IF_ERROR(cli::ParseCount(val_tokens, &o.val_tokens).With("--val-tokens"));
  LM_RETURN_IF_ERROR(
      ParseEvery("--val-every", val_every, &o.val_every_steps, &o.val_every_seconds));
  LM_RETURN_IF_ERROR(
      ParseEvery("--ckpt-every", ckpt_every, &o.ckpt_every_steps, &o.ckpt_every_seconds));
  LM_RETURN_IF_ERROR(
      ParseEvery("--sample-every", sample_every, &o.sample_every_steps, &o.sample_every_seconds));
  if (vm["sample-every"].defaulted()) {
    o.sample_every_steps = o.val_every_steps;
    o.sample_every_seconds = o.val_every_seconds;
  }
  // 0 is no size: given explicitly it would silently mean the preset's.
  for (const char* name : {"layers", "dim", "heads", "kv-heads", "ffn-dim", "context"})
    if (vm.count(name) && vm[name].as<int>() < 1)
      return Status::Usage(std::string("--") + name + " must be at least 1");
  if (vm.count("rope-theta") && !(rope_theta > 0 && std::isfinite(rope_theta)))
    return Status::Usage("--rope-theta must be a positive number");
  if (!(log_every >= 0 && std::isfinite(log_every)))
    return Status::Usage("--log-every must be a number of seconds >= 0 (0: every step)");
  if (!(probe_seconds > 0 && std::isfinite(probe_seconds)))
    return Status::Usage("--probe-seconds must be a positive number");
  if (o.keep < 0) return Status::Usage("--keep must be >= 0");
  if (o.max_bad_steps < 1) return Status::Usage("--max-bad-steps must be at least 1");

  // The model: a preset, then size flags over it.
  bool sizes =
      layers || dim || heads || kv_heads || ffn || context || rope_theta > 0 || vm.count("untied");
  if (vm.count("preset") && vm.count("model"))
    return Status::Usage("give --preset or --model, not both");
  if (vm.count("auto-size") && !preset.empty())
    return Status::Usage("--auto-size chooses the model; drop --preset");
  std::vector<std::string> run_ckpts;
  if (IsDirectory(o.out_dir)) LM_RETURN_IF_ERROR(ListCheckpoints(o.out_dir, &run_ckpts));
  // A new run under --budget with no model named gets the model that fits the
  // budget, as --auto-size would choose it.
  bool auto_size =
      vm.count("auto-size") || (preset.empty() && !(layers || dim || heads || kv_heads || ffn) &&
                                !budget.empty() && run_ckpts.empty() && !o.resume);
  if (!peak_flops.empty()) {
    uint64_t pf = 0;
    LM_RETURN_IF_ERROR(cli::ParseCount(peak_flops, &pf).With("--peak-flops"));
    if (pf == 0) return Status::Usage("--peak-flops must be positive");
    o.peak_flops = (double)pf;
  }
  o.recompute = vm.count("recompute") > 0;
  if (!preset.empty() || sizes || auto_size) {
    o.have_model = true;
    ModelConfig& c = o.model;
    if (auto_size && !run_ckpts.empty()) {
      o.have_model = false;  // the run already chose its model; its checkpoint rules
    } else if (auto_size) {
      if (budget.empty()) return Status::Usage("--auto-size needs --budget");
      if (o.vocab_path.empty()) return Status::Usage("--vocab is required");
      Vocab v;
      LM_RETURN_IF_ERROR(Vocab::Load(o.vocab_path, &v));
      AutoSizeOptions ao;
      ao.device = o.device;
      ao.vocab_size = (int)v.size();
      if (context) ao.context = context;
      ao.micro_batch = vm["micro-batch"].defaulted() ? 0 : o.micro_batch;
      ao.budget_seconds = o.budget_seconds;
      ao.probe_seconds = probe_seconds;
      AutoSizeResult ar;
      LM_RETURN_IF_ERROR(AutoSize(ao, &ar));
      fprintf(stderr, "%s", ar.Table().c_str());
      if (ar.chosen < 0) return Status::Invalid("--auto-size: no candidate fits: " + ar.reason);
      c = ar.candidates[ar.chosen].config;
      // The choice and its evidence stay with the run.
      LM_RETURN_IF_ERROR(MakeDirs(o.out_dir));
      LM_RETURN_IF_ERROR(WriteFileAtomic(JoinPath(o.out_dir, "auto-size.json"), ar.ToJson()));
    } else if (!preset.empty()) {
      LM_RETURN_IF_ERROR(PresetConfig(preset, 1, &c).With("--preset"));
    } else if (!(layers && dim && heads && ffn && context)) {
      return Status::Usage(
          "without --preset, give all of --layers, --dim, --heads, --ffn-dim and --context");
    } else {
      c.n_kv_heads = heads;
    }
    if (layers) c.n_layers = layers;
    if (dim) c.dim = dim;
    if (heads) c.n_heads = c.n_kv_heads = heads;  // no grouping unless --kv-heads
    if (kv_heads) c.n_kv_heads = kv_heads;
    if (ffn) c.ffn_dim = ffn;
    if (context) c.context = context;
    if (rope_theta > 0) c.rope_theta = (float)rope_theta;
    if (vm.count("untied")) c.tied_embeddings = false;
  }

  InstallSignals();
  Trainer tr;
#ifdef LM_HAVE_CUDA
  // LM_CUDA_PROFILE=1: the CUDA backend's table of GPU time, however the run
  // ends (printed before tr, and with it the backend, goes).
  struct PrintProfile {
    ~PrintProfile() {
      if (cuda::ProfileOn()) fputs(cuda::ProfileReport().c_str(), stderr);
    }
  } print_profile;
#endif
  if (Status s = tr.Setup(o); !s.ok()) {
    tr.RemoveEmptyRunDirectory();
    return s;
  }
  tr.SetInterrupt([] { return g_stop.load() != 0; });
  Backend* be = tr.backend();
  const ModelConfig& cfg = tr.config();
  LogInfo("model: %s", cfg.Describe().c_str());
  LogInfo("device: %s; %d x %d tokens x %d micro-steps = %llu tokens per step",
          be->Describe().c_str(), tr.micro_batch(), tr.seq_len(), tr.micro_steps(),
          (unsigned long long)tr.tokens_per_step());
  if (tr.budget() > 0)
    LogInfo("length: budget %s; schedule %s, peak lr %g", FormatDuration(tr.budget()).c_str(),
            tr.schedule().Describe().c_str(), (double)o.adam.lr);
  else
    LogInfo(
        "length: %lld steps (%llu tokens); schedule %s, peak lr %g", (long long)tr.total_steps(),
        (unsigned long long)(tr.tokens_seen() + std::max<int64_t>(0, tr.total_steps() - tr.step()) *
                                                    tr.tokens_per_step()),
        tr.schedule().Describe().c_str(), (double)o.adam.lr);
  if (tr.resumed())
    LogInfo("resuming from %s (step %lld, %s trained)", tr.resumed_from().c_str(),
            (long long)tr.step(), FormatDuration(tr.elapsed()).c_str());
  if (!tr.has_val())
    LogWarn("%s: no validation split: no validation loss or samples", o.data_dir.c_str());
  if (tr.Finished()) {
    if (tr.last_saved_step() != tr.step()) {
      std::string dir;
      LM_RETURN_IF_ERROR(tr.Save(&dir));
      LogInfo("saved %s", dir.c_str());
    } else {
      LogInfo("%s is already complete at step %lld", o.out_dir.c_str(), (long long)tr.step());
    }
    return Status::OK();
  }

  const double peak = o.peak_flops > 0 ? o.peak_flops : be->PeakFlops();
  const double flops_per_token = cfg.train_flops_per_token();
  using Clock = std::chrono::steady_clock;
  auto now_s = [start = Clock::now()] {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  double last_log = -1e9, last_val = now_s(), last_sample = now_s(), last_ckpt = now_s();
  int64_t log_step0 = tr.step();
  double log_t0 = now_s();
  int bad_run = 0;
  int64_t first_bad = -1;
  double avg_step = 0;
  std::string stop_reason;

  auto do_val = [&]() -> Status {
    if (!tr.has_val()) return Status::OK();
    double loss, bpb;
    LM_RETURN_IF_ERROR(tr.Validate(&loss, &bpb));
    LM_RETURN_IF_ERROR(tr.LogVal(loss, bpb));
    LogInfo("step %lld: val loss %.4f (%.4f bits/byte)", (long long)tr.step(), loss, bpb);
    return Status::OK();
  };
  auto do_sample = [&]() -> Status {
    if (!tr.has_val()) return Status::OK();
    std::string prompt, text;
    Status s = tr.Sample(&prompt, &text);
    if (!s.ok()) {
      LogWarn("sample failed: %s", s.ToString().c_str());
      return Status::OK();
    }
    auto esc = [](const std::string& x) {
      std::string r;
      for (char ch : x) r += ch == '\n' ? std::string("\\n") : std::string(1, ch);
      return r;
    };
    LogInfo("sample: [%s]%s", esc(prompt).c_str(), esc(text).c_str());
    return Status::OK();
  };
  // Whether the current weights gave the last step a non-finite loss: such
  // weights (a diverged run) are never saved as a checkpoint.
  bool diverged = false;
  auto last_good = [&] {
    return tr.last_saved_step() >= 0 ? JoinPath(o.out_dir, CheckpointDirName(tr.last_saved_step()))
                                     : std::string("none was written");
  };
  auto save = [&](const char* why) -> Status {
    if (diverged) {
      const bool optional = !strcmp(why, "periodic") || !strcmp(why, "SIGUSR1");
      if (optional) {
        LogWarn("step %lld: not saved: the weights give a non-finite loss", (long long)tr.step());
        return Status::OK();
      }
      return Status::Invalid("step " + std::to_string(tr.step()) +
                             ": the weights give a non-finite loss, so they are not saved (the "
                             "last good checkpoint: " +
                             last_good() + "; try a lower --lr)");
    }
    std::string dir;
    LM_RETURN_IF_ERROR(tr.Save(&dir));
    LogInfo("step %lld: saved %s (%s)", (long long)tr.step(), dir.c_str(), why);
    last_ckpt = now_s();
    return Status::OK();
  };

  while (true) {
    if (g_stop.load()) break;
    if (tr.Finished()) break;
    if (o.stop_at >= 0 && tr.step() >= o.stop_at) {
      stop_reason = "--stop-at " + std::to_string(o.stop_at);
      break;
    }
    // Under a budget, the step that would end well past the deadline is not begun.
    if (tr.budget() > 0 && avg_step > 0 && tr.elapsed() + 0.5 * avg_step >= tr.budget()) {
      tr.EndAtDeadline();
      break;
    }
    StepStats st;
    LM_RETURN_IF_ERROR(tr.Step(&st));
    if (st.abandoned) break;  // a stop request between micro-steps
    avg_step = avg_step == 0 ? st.seconds : 0.9 * avg_step + 0.1 * st.seconds;
    LM_RETURN_IF_ERROR(tr.LogStep(st, st.tokens / std::max(st.seconds, 1e-9)));
    diverged = st.skipped && !std::isfinite(st.loss);
    if (st.skipped) {
      if (bad_run++ == 0) first_bad = st.step;
      LogWarn("step %lld: %s is not finite; update skipped (%d in a row)", (long long)st.step,
              std::isfinite(st.loss) ? "the gradient" : "the loss", bad_run);
      if (bad_run >= o.max_bad_steps) {
        return Status::Invalid(
            "steps " + std::to_string(first_bad) + " to " + std::to_string(st.step) +
            " all had a non-finite loss or gradient; stopping (the last good checkpoint: " +
            last_good() + "; try a lower --lr)");
      }
    } else {
      bad_run = 0;
    }
    double t = now_s();
    bool last = tr.Finished();
    if (t - last_log >= log_every || last || st.step == 1) {
      double tps =
          (double)(tr.step() - log_step0) * tr.tokens_per_step() / std::max(t - log_t0, 1e-9);
      char mfu[32];
      if (peak > 0)
        snprintf(mfu, sizeof mfu, "MFU %.1f%%", 100.0 * tps * flops_per_token / peak);
      else
        snprintf(mfu, sizeof mfu, "MFU unknown");
      double left = tr.budget() > 0 ? tr.budget() - tr.elapsed()
                                    : (double)(tr.total_steps() - tr.step()) * avg_step;
      std::string of = tr.total_steps() >= 0 ? "/" + std::to_string(tr.total_steps()) : "";
      LogInfo(
          "step %lld%s | loss %.4f | lr %.2e | grad norm %.3f | %s tok/s | %s | %s elapsed, %s "
          "left",
          (long long)tr.step(), of.c_str(), st.loss, st.lr, st.grad_norm, FormatRate(tps).c_str(),
          mfu, FormatDuration(tr.elapsed()).c_str(), FormatDuration(std::max(0.0, left)).c_str());
      last_log = t;
      log_step0 = tr.step();
      log_t0 = t;
    }
    if (!last && ((o.val_every_steps > 0 && tr.step() % o.val_every_steps == 0) ||
                  (o.val_every_seconds > 0 && t - last_val >= o.val_every_seconds))) {
      LM_RETURN_IF_ERROR(do_val());
      last_val = now_s();
    }
    if (!last && ((o.sample_every_steps > 0 && tr.step() % o.sample_every_steps == 0) ||
                  (o.sample_every_seconds > 0 && t - last_sample >= o.sample_every_seconds))) {
      LM_RETURN_IF_ERROR(do_sample());
      last_sample = now_s();
    }
    if (last) break;
    if (g_checkpoint.exchange(0)) {
      LM_RETURN_IF_ERROR(save("SIGUSR1"));
    } else if ((o.ckpt_every_steps > 0 && tr.step() % o.ckpt_every_steps == 0) ||
               (o.ckpt_every_seconds > 0 && now_s() - last_ckpt >= o.ckpt_every_seconds)) {
      LM_RETURN_IF_ERROR(save("periodic"));
    }
  }

  int sig = g_stop.load();
  if (sig) {
    if (tr.last_saved_step() != tr.step()) LM_RETURN_IF_ERROR(save(SignalName(sig)));
    LogInfo("stopped by %s at step %lld; saved %s; rerun the same command to continue",
            SignalName(sig), (long long)tr.step(),
            JoinPath(o.out_dir, CheckpointDirName(tr.step())).c_str());
    // Saved (and fsynced): now die of the signal, as the other tools do, so
    // that the caller sees an interrupted run, not a finished one. Exiting 0
    // let `lm-train ... && lm-eval ...` go on, and bash, seeing a child that
    // handled the Ctrl-C, went on with the rest of a script.
    fflush(nullptr);
    DieOfSignal(sig);
    return Status::Interrupted(std::string("stopped by ") + SignalName(sig));
  }
  if (!stop_reason.empty()) {
    if (tr.last_saved_step() != tr.step()) LM_RETURN_IF_ERROR(save(stop_reason.c_str()));
    LogInfo("stopped at step %lld (%s); rerun without it to continue", (long long)tr.step(),
            stop_reason.c_str());
    return Status::OK();
  }
  LM_RETURN_IF_ERROR(do_val());
  if (o.sample_every_steps > 0 || o.sample_every_seconds > 0) LM_RETURN_IF_ERROR(do_sample());
  if (tr.last_saved_step() != tr.step()) LM_RETURN_IF_ERROR(save("final"));
  LogInfo("done: %lld steps, %llu tokens in %s", (long long)tr.step(),
          (unsigned long long)tr.tokens_seen(), FormatDuration(tr.elapsed()).c_str());
  return Status::OK();
}

}  // namespace
}  // namespace lm

int main(int argc, char** argv) {
  return lm::cli::Main("lm-train", argc, argv, lm::Run, /*install_cleanup=*/false);
}
