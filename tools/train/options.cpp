// options.cpp: lm-train's options (options.h).
#include "options.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "autosize.h"
#include "comm/comm.h"
#include "data/loader.h"
#include "recipe.h"
#include "text/vocab.h"
#include "util/file.h"

namespace lm {

namespace {

// "200" (steps), "0.02" or "2%" (a fraction of the run), "5m" (a duration).
Status ParseWarmup(const std::string& v, Warmup* w) {
  *w = Warmup();
  char* end = nullptr;
  if (!v.empty() && v.back() == '%') {
    double f = strtod(v.c_str(), &end);
    if (end != v.c_str() + v.size() - 1 || !(f >= 0 && f < 100))
      return Status::Usage("bad percentage '" + v + "'");
    w->fraction = f / 100;
    return Status::OK();
  }
  if (!v.empty() && v.find_first_not_of("0123456789") == std::string::npos) {
    w->steps = std::stoll(v);
    return Status::OK();
  }
  double f = strtod(v.c_str(), &end);
  if (!v.empty() && end == v.c_str() + v.size()) {
    if (!(f >= 0 && f < 1)) return Status::Usage("a fraction must lie in [0, 1), got '" + v + "'");
    w->fraction = f;
    return Status::OK();
  }
  if (!cli::ParseDuration(v, &w->seconds).ok())
    return Status::Usage("expected steps (200), a fraction (0.02 or 2%) or a duration (5m), got '" +
                         v + "'");
  return Status::OK();
}

}  // namespace

void validate(boost::any& v, const std::vector<std::string>& values, Warmup*, int) {
  namespace po = boost::program_options;
  po::validators::check_first_occurrence(v);
  Warmup w;
  Status s = ParseWarmup(po::validators::get_single_string(values), &w);
  if (!s.ok()) {
    po::validation_error e(po::validation_error::invalid_option_value);
    e.m_error_template = "%canonical_option%: " + s.message();
    throw e;
  }
  v = w;
}

void DeclareTrainOptions(cli::Command* cmd, TrainFlags* f) {
  TrainerOptions& o = f->o;
  Cadence& c = o.cadence;
  cli::Options add(cmd);
  add("data", &o.data_dir, "DIR", "packed dataset (lm-pack's output)").Required();
  add("vocab", &o.vocab_path, "FILE",
      "the vocabulary the data was encoded with (tok.bpe); optional when resuming");
  add("out,o", &o.out_dir, "RUN", "run directory (created; resumed when it holds checkpoints)")
      .Required();
  add("preset", &f->preset, "NAME", "model preset: tiny, small, gpt2-124m, gpt2-350m");
  add("model", &f->model, "NAME", "same as --preset");
  add.Flag("auto-size", &f->auto_size,
           "pick the model for --budget by probing the device's throughput");
  add("layers", &f->layers, "N", "transformer layers").Min(1);
  add("dim", &f->dim, "N", "hidden size").Min(1);
  add("heads", &f->heads, "N", "attention heads").Min(1);
  add("kv-heads", &f->kv_heads, "N", "key/value heads (grouped-query attention; default: heads)")
      .Min(1);
  add("ffn-dim", &f->ffn, "N", "SwiGLU hidden size (default: 8/3 x dim, rounded up to 128)").Min(1);
  add("context", &f->context, "T", "sequence length trained on (max_position_embeddings)").Min(1);
  add("rope-theta", &f->rope_theta, "X", "RoPE base (default 10000)").Check(cli::Positive());
  add.Flag("untied", &f->untied, "separate LM head (default: tied to the embedding)");
  add("steps", &f->steps, "N", "train for N optimizer steps (0: save the initial weights)");
  add("tokens", &f->tokens, "N", "train for N tokens (rounded up to whole steps)").Min(1);
  add("budget", &f->budget, "DURATION", "train until this much time has elapsed (24h, 90m)")
      .Check(cli::Positive());
  add("batch-tokens", &f->batch_tokens, "N",
      "tokens per optimizer step, by gradient accumulation (default: one micro-batch)")
      .Min(1);
  add("micro-batch", &o.micro_batch, "B", "sequences per forward/backward").Default(8).Min(1);
  add("lr", &o.adam.lr, "X", "peak learning rate").Default(6e-4f, "6e-4").Check(cli::Positive());
  add("warmup", &f->warmup, "W",
      "warmup: steps (200), fraction of the run (0.02, 2%) or duration (5m)")
      .Default(Warmup{-1, 0.02, -1}, "0.02");
  add("schedule", &f->schedule, "S", "wsd or cosine").Default("wsd");
  add("decay", &o.schedule.decay_fraction, "F", "wsd: fraction of the run spent decaying to zero")
      .Default(0.2, "0.2")
      .Check(cli::In(0, 1, true, false));
  add("weight-decay", &o.adam.weight_decay, "X", "AdamW decoupled weight decay (matrices only)")
      .Default(0.1f, "0.1")
      .Check(cli::NonNegative());
  add("beta1", &o.adam.beta1, "X", "AdamW beta1")
      .Default(0.9f, "0.9")
      .Check(cli::In(0, 1, false, true));
  add("beta2", &o.adam.beta2, "X", "AdamW beta2")
      .Default(0.95f, "0.95")
      .Check(cli::In(0, 1, false, true));
  add("grad-clip", &o.adam.grad_clip, "X", "clip the global gradient norm (0: off)")
      .Default(1.0f, "1.0")
      .Check(cli::NonNegative());
  add("val-every", &c.val, "N|DURATION",
      "validation loss every N steps or DURATION (0: only at the end)")
      .Default(cli::Every{200, 0}, "200");
  add("val-tokens", &f->val_tokens, "N",
      "validation tokens per evaluation, in windows spread over the val split (0: none)")
      .Default(cli::Count{32768}, "32k");
  add("sample-every", &c.sample, "N|DURATION",
      "log a short greedy sample (default: with each validation)")
      .Default(cli::Every{}, "0");
  add("sample-tokens", &o.sample_tokens, "N", "tokens per sample").Default(48).Min(1);
  add("ckpt-every", &c.ckpt, "N|DURATION", "checkpoint every N steps or DURATION")
      .Default(cli::Every{0, 1800}, "30m");
  add("keep", &o.keep, "K", "step directories kept (0: all)").Default(3).Min(0);
  add("device", &o.device, "D", "cpu, cuda or auto").Default("auto");
  add("threads,j", &o.threads, "N", "CPU threads (0: all cores)").Default(0);
  add("seed", &o.seed, "S", "seeds the weights and the data order").Default(1);
  add.Flag("resume", &f->resume,
           "continue RUN from RUN/latest (an error when it holds no checkpoint)");
  add("stop-at", &o.stop_at, "STEP",
      "checkpoint and exit 0 once this step is reached (the schedule is unchanged)")
      .Min(0);
  add("max-bad-steps", &o.max_bad_steps, "N", "stop after N non-finite steps in a row")
      .Default(10)
      .Min(1);
  add("log-every", &c.log_seconds, "SECONDS", "seconds between progress lines (0: every step)")
      .Default(5.0, "5")
      .Check(cli::NonNegative());
  add.Flag("recompute", &f->recompute,
           "recompute activations during backward: less memory, about a third more work");
  add("peak-flops", &f->peak_flops, "X",
      "the device's peak dense bf16 FLOP/s for MFU (989e12, 989T); default: a table of GPUs")
      .Min(1);
  add("comm-timeout", &f->comm_timeout, "DURATION",
      "several ranks: how long a rank waits for the others before it gives up and exits 1")
      .Default(cli::Duration{600}, "10m")
      .Check(cli::Positive());
  add("probe-seconds", &f->probe_seconds, "S", "--auto-size: timed seconds per candidate shape")
      .Default(8.0, "8")
      .Check(cli::Positive());
  DeclareRecipeOptions(cmd, f);
}

namespace {

// Auto-sizing: probes the ladder of shapes on the device, prints the table,
// keeps the evidence in RUN/auto-size.json.
Status AutoSizeModel(const cli::Command& cmd, const TrainFlags& f, ModelConfig* c) {
  const TrainerOptions& o = f.o;
  if (f.budget.seconds <= 0) return Status::Usage("--auto-size needs --budget");
  if (o.vocab_path.empty()) return Status::Usage("--vocab is required");
  Vocab v;
  LM_RETURN_IF_ERROR(Vocab::Load(o.vocab_path, &v));
  AutoSizeOptions ao;
  ao.device = o.device;
  ao.vocab_size = (int)v.size();
  {  // the unique tokens the model can learn from (Setup checks the data fully later)
    std::unique_ptr<Dataset> ds;
    LM_RETURN_IF_ERROR(Dataset::Open(o.data_dir, &ds));
    ao.unique_tokens = (double)ds->info().tokens[(int)Split::kTrain];
  }
  ao.useful_epochs = kUsefulEpochs;
  if (f.context) ao.context = f.context;
  ao.micro_batch = cmd.Given("micro-batch") ? o.micro_batch : 0;
  ao.budget_seconds = f.budget.seconds;
  ao.probe_seconds = f.probe_seconds;
  // Several ranks: rank 0 probes its GPU for all of them (each rank takes
  // rank 0's model), and the budget holds every rank's tokens.
  LaunchInfo launch;
  LM_RETURN_IF_ERROR(DetectLaunch(&launch));
  if (launch.rank > 0) return Status::OK();
  ao.ranks = launch.size;
  AutoSizeResult ar;
  LM_RETURN_IF_ERROR(AutoSize(ao, &ar));
  fprintf(stderr, "%s", ar.Table().c_str());
  if (ar.chosen < 0) return Status::Invalid("--auto-size: no candidate fits: " + ar.reason);
  *c = ar.candidates[ar.chosen].config;
  LM_RETURN_IF_ERROR(MakeDirs(o.out_dir));
  return WriteFileAtomic(JoinPath(o.out_dir, "auto-size.json"), ar.ToJson());
}

// Size options over the base (a preset's, auto-size's, or none): without a
// base, a left-out --ffn-dim follows --dim by Llama's rule; --kv-heads follows
// --heads.
void ApplySizes(const cli::Command& cmd, const TrainFlags& f, ModelConfig* c) {
  if (f.layers) c->n_layers = f.layers;
  if (f.dim) c->dim = f.dim;
  if (f.heads) c->n_heads = c->n_kv_heads = f.heads;  // no grouping unless --kv-heads
  if (f.kv_heads) c->n_kv_heads = f.kv_heads;
  if (f.ffn)
    c->ffn_dim = f.ffn;
  else if (c->ffn_dim == 0)
    c->ffn_dim = DefaultFfnDim(c->dim);
  if (f.context) c->context = f.context;
  if (f.rope_theta > 0) c->rope_theta = (float)f.rope_theta;
  if (f.untied) c->tied_embeddings = false;
}

// The model: a preset, then size options over it; --auto-size; or none (the
// run's, when resuming).
Status ChooseModelOptions(const cli::Command& cmd, TrainFlags* f) {
  TrainerOptions& o = f->o;
  if (!f->preset.empty() && !f->model.empty())
    return Status::Usage("give --preset or --model, not both");
  const std::string preset = f->preset.empty() ? f->model : f->preset;
  if (f->auto_size && !preset.empty())
    return Status::Usage("--auto-size chooses the model; drop --preset");
  const bool sizes = f->layers || f->dim || f->heads || f->kv_heads || f->ffn || f->context ||
                     f->rope_theta > 0 || f->untied;
  std::vector<std::string> run_ckpts;
  if (IsDirectory(o.out_dir)) LM_RETURN_IF_ERROR(ListCheckpoints(o.out_dir, &run_ckpts));
  // A new run under --budget with no model named gets the model that fits the
  // budget, as --auto-size would choose it.
  const bool named = !preset.empty() || f->layers || f->dim || f->heads || f->kv_heads || f->ffn;
  const bool auto_size =
      f->auto_size || (!named && f->budget.seconds > 0 && run_ckpts.empty() && !f->resume);
  if (preset.empty() && !sizes && !auto_size) return Status::OK();
  o.have_model = true;
  ModelConfig& c = o.model;
  if (auto_size && !run_ckpts.empty()) {
    o.have_model = false;  // the run already chose its model; its checkpoint rules
    return Status::OK();
  }
  if (auto_size) {
    LM_RETURN_IF_ERROR(AutoSizeModel(cmd, *f, &c));
  } else if (!preset.empty()) {
    LM_RETURN_IF_ERROR(PresetConfig(preset, 1, &c).With("--preset"));
  } else if (!(f->layers && f->dim && f->heads && f->context)) {
    return Status::Usage("without --preset, give all of --layers, --dim, --heads and --context");
  }
  ApplySizes(cmd, *f, &c);
  return Status::OK();
}

}  // namespace

Status ResolveTrainOptions(const cli::Command& cmd, int argc, char** argv, TrainFlags* f,
                           TrainerOptions* out) {
  TrainerOptions& o = f->o;
  LM_RETURN_IF_ERROR(cli::ResolveThreads(o.threads, &o.threads));
  for (int i = 0; i < argc; i++) o.command_line.push_back(argv[i]);
  for (const auto& kv : cmd.vm)
    if (!kv.second.defaulted()) o.given.insert(kv.first);
  if (cmd.Given("model")) o.given.insert("preset");
  o.resume = f->resume;
  o.recompute = f->recompute;
  LM_RETURN_IF_ERROR(ParseScheduleKind(f->schedule, &o.schedule.kind).With("--schedule"));
  o.warmup_steps = f->warmup.steps;
  o.warmup_fraction = f->warmup.fraction;
  o.warmup_seconds = f->warmup.seconds;
  if (cmd.vm.count("steps")) o.steps = (int64_t)f->steps.n;
  o.tokens = f->tokens.n;
  o.budget_seconds = f->budget.seconds;
  o.batch_tokens = (int64_t)f->batch_tokens.n;
  o.val_tokens = f->val_tokens.n;
  o.peak_flops = (double)f->peak_flops.n;
  o.comm_timeout = f->comm_timeout.seconds;
  // A sample follows each validation unless --sample-every is given.
  if (!cmd.Given("sample-every")) o.cadence.sample = o.cadence.val;
  LM_RETURN_IF_ERROR(ResolveRecipeOptions(cmd, f));
  LM_RETURN_IF_ERROR(ChooseModelOptions(cmd, f));
  *out = o;
  return Status::OK();
}

}  // namespace lm
