// trainer.cpp: lm-train's state, steps, validation, samples and checkpoints.
#include "trainer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "engine/generate.h"
#include "engine/make_backend.h"
#include "model/params.h"
#include "model/sampler.h"
#include "recipe.h"
#include "text/export.h"
#include "util/cli.h"
#include "util/hash.h"
#include "util/human.h"
#include "util/json.h"
#include "util/progress.h"

namespace lm {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// Independent streams from one --seed: the weights, the data order, the prompts.
uint64_t DeriveSeed(uint64_t seed, uint64_t stream) {
  uint64_t s = seed ^ (stream * 0xd1b54a32d192ed03ull);
  return SplitMix64Next(&s);
}

// The fields that make two configs the same model.
std::string ConfigDiff(const ModelConfig& a, const ModelConfig& b) {
  std::string d;
  auto cmp = [&](const char* what, double x, double y) {
    if (x != y) {
      char buf[160];
      snprintf(buf, sizeof buf, "%s%s %g (run) vs %g (asked)", d.empty() ? "" : ", ", what, x, y);
      d += buf;
    }
  };
  cmp("vocab_size", a.vocab_size, b.vocab_size);
  cmp("layers", a.n_layers, b.n_layers);
  cmp("dim", a.dim, b.dim);
  cmp("heads", a.n_heads, b.n_heads);
  cmp("kv-heads", a.n_kv_heads, b.n_kv_heads);
  cmp("ffn-dim", a.ffn_dim, b.ffn_dim);
  cmp("context", a.context, b.context);
  cmp("rope_theta", a.rope_theta, b.rope_theta);
  cmp("norm_eps", a.norm_eps, b.norm_eps);
  cmp("tied embeddings", a.tied_embeddings, b.tied_embeddings);
  return d;
}

// Runs `read`, which takes fields out of the JSON file `path`: a field of
// the wrong type (a hand-edited file) is then an error naming the file, not
// an exception.
template <class F>
Status ReadJsonFields(const std::string& path, F&& read) {
  try {
    return read();
  } catch (const json::exception& e) {
    return Status::Corruption(path + ": unexpected content: " + e.what());
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// Setup

void Trainer::RemoveEmptyRunDirectory() {
  if (!made_dir_ || !locked_) return;  // not ours to remove
  unlink(JoinPath(opt_.out_dir, ".lock").c_str());
  lock_.Unlock();
  rmdir(opt_.out_dir.c_str());  // fails, harmlessly, when anything else is there
}

Status Trainer::Setup(const TrainerOptions& opt) {
  opt_ = opt;
  session_start_ = Clock::now();
  if (opt_.micro_batch < 1) return Status::Usage("--micro-batch must be at least 1");
  if (opt_.keep < 0) return Status::Usage("--keep must be at least 0");
  LM_RETURN_IF_ERROR(StartComm());
  Checkpoint meta;
  bool have_ckpt = false;
  // Rank 0 takes the run directory (its lock, a crash's leftovers) before the
  // others read it. Each stage ends at a Sync, so that a rank that fails
  // stops every rank there.
  const bool first = rank() == 0;
  LM_RETURN_IF_ERROR(Sync(first ? OpenRunDirectory(&meta, &have_ckpt) : Status::OK()));
  LM_RETURN_IF_ERROR(Sync(first ? Status::OK() : OpenRunDirectory(&meta, &have_ckpt)));
  LM_RETURN_IF_ERROR(SameCheckpoint(meta, have_ckpt));
  LM_RETURN_IF_ERROR(Sync(LoadDataAndVocab(meta, have_ckpt)));
  LM_RETURN_IF_ERROR(Sync(first ? ChooseModel(meta, have_ckpt) : Status::OK()));
  LM_RETURN_IF_ERROR(ShareModel());
  LM_RETURN_IF_ERROR(Sync(CheckModelData()));
  LM_RETURN_IF_ERROR(Sync(PlanBatch(have_ckpt ? &meta : nullptr)));
  if (have_ckpt) LM_RETURN_IF_ERROR(ReadProgress(meta));
  double ro = read_only_;  // rank 0's directory decides
  LM_RETURN_IF_ERROR(comm_->Broadcast(&ro, sizeof ro, 0));
  read_only_ = ro != 0;
  if (read_only_) {
    // Nothing can be written: fine for a run that is complete, else an error.
    if (have_ckpt && Finished() && last_saved_ == step_) {
      complete_read_only_ = true;
      return Status::OK();
    }
    return Status::IOError(opt_.out_dir +
                           ": cannot write in the run directory (read-only), and the run is not "
                           "complete");
  }
  LM_RETURN_IF_ERROR(Sync(CheckHostMemory()));
  LM_RETURN_IF_ERROR(StartBackend());
  return StartState(meta, have_ckpt);
}

namespace {

// An absolute path without symbolic links for a path that may not exist yet:
// its nearest existing ancestor resolved, the rest appended.
std::string Canonical(const std::string& path) {
  std::string head = path, tail;
  for (int i = 0; i < 256; i++) {
    char buf[PATH_MAX];
    if (realpath(head.c_str(), buf)) return tail.empty() ? buf : JoinPath(buf, tail);
    std::string base = BaseName(head), dir = DirName(head);
    if (dir == head) break;
    tail = tail.empty() ? base : JoinPath(base, tail);
    head = dir;
  }
  return path;
}

}  // namespace

// The run directory: refused inside the dataset, locked against a second
// lm-train, checked for writing, and read for a checkpoint to resume.
Status Trainer::OpenRunDirectory(Checkpoint* meta, bool* have_ckpt) {
  int given = (opt_.steps >= 0) + (opt_.tokens > 0) + (opt_.budget_seconds > 0);
  if (given > 1) return Status::Usage("give only one of --steps, --tokens and --budget");
  const std::string data = Canonical(opt_.data_dir), out = Canonical(opt_.out_dir);
  if (!opt_.data_dir.empty() && (out == data || out.rfind(data + "/", 0) == 0))
    return Status::Usage("--out " + opt_.out_dir + " lies inside --data " + opt_.data_dir +
                         ": use a run directory outside the dataset");
  // A run in progress elsewhere, or holding another model, must be refused
  // before anything is loaded.
  // Only rank 0 makes, locks and writes the run directory; the others read it.
  made_dir_ = rank() == 0 && !PathExists(opt_.out_dir);
  if (rank() == 0) LM_RETURN_IF_ERROR(MakeDirs(opt_.out_dir));
  read_only_ = access(opt_.out_dir.c_str(), W_OK) != 0 && (errno == EROFS || errno == EACCES);
  if (!read_only_ && rank() == 0) {
    bool held = false;
    LM_RETURN_IF_ERROR(lock_.TryLock(JoinPath(opt_.out_dir, ".lock"), &held));
    if (!held)
      return Status::Invalid(opt_.out_dir + ": another lm-train is using this run directory");
    locked_ = true;
    // A directory we cannot write in must be found now, not at the first
    // checkpoint after --ckpt-every of training.
    const std::string probe = JoinPath(opt_.out_dir, ".write-test-" + std::to_string(getpid()));
    int fd = open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Status::FromErrno(opt_.out_dir, "cannot write in the run directory");
    close(fd);
    unlink(probe.c_str());
  }
  LM_RETURN_IF_ERROR(CheckRunDirectory(meta, have_ckpt));
  if (opt_.resume && !*have_ckpt)
    return Status::NotFound(opt_.out_dir + ": --resume: no checkpoint to resume from");
  if (*have_ckpt)
    LM_RETURN_IF_ERROR(ReadJsonFields(JoinPath(meta->dir, "trainer-state.json"),
                                      [&] { return ResumeSettings(*meta, &given); }));
  if (given == 0)
    return Status::Usage("give the length of the run: --steps N, --tokens N or --budget DURATION");
  return Status::OK();
}

// The dataset, and the vocabulary it must have been packed with (--vocab, or
// the run's own copy when resuming).
Status Trainer::LoadDataAndVocab(const Checkpoint& meta, bool have_ckpt) {
  LM_RETURN_IF_ERROR(Dataset::Open(opt_.data_dir, &ds_));
  const DatasetInfo& di = ds_->info();
  std::string vocab_path = opt_.vocab_path;
  if (vocab_path.empty()) {
    if (!have_ckpt)
      return Status::Usage("--vocab is required (the tok.bpe the data was encoded with)");
    vocab_path = meta.vocab_path;
  }
  LM_RETURN_IF_ERROR(Vocab::Load(vocab_path, &vocab_));
  // Kept in memory: the file may be a checkpoint's copy that --keep deletes.
  LM_RETURN_IF_ERROR(ReadFile(vocab_path, &vocab_bytes_));
  opt_.vocab_path = vocab_path;
  if (vocab_.id() != di.vocab_id || vocab_.size() != di.vocab_size)
    return Status::Invalid(opt_.data_dir + ": packed with a different vocabulary (id " +
                           HashHex(di.vocab_id) + ", " + std::to_string(di.vocab_size) +
                           " tokens) than " + vocab_path + " (id " + HashHex(vocab_.id()) + ", " +
                           std::to_string(vocab_.size()) + " tokens)");
  if (have_ckpt && meta.vocab_id != vocab_.id())
    return Status::Invalid(opt_.out_dir + ": the run was trained with a different vocabulary (id " +
                           HashHex(meta.vocab_id) + ") than " + vocab_path + " (id " +
                           HashHex(vocab_.id()) + ")");
  token_bytes_.assign(vocab_.size(), 0);
  for (uint32_t id = 0; id < vocab_.size(); id++)
    token_bytes_[id] = vocab_.is_special(id) ? -1 : (int32_t)vocab_.token_bytes(id).size();
  return Status::OK();
}

// The model: from the options (and then the same as the run's), or the run's.
Status Trainer::ChooseModel(const Checkpoint& meta, bool have_ckpt) {
  if (opt_.have_model) {
    cfg_ = opt_.model;
    cfg_.vocab_size = (int)vocab_.size();
    cfg_.Pad();
    LM_RETURN_IF_ERROR(cfg_.Validate());
    if (have_ckpt) {
      std::string d = ConfigDiff(meta.config, cfg_);
      if (!d.empty())
        return Status::Invalid(opt_.out_dir + " holds a different model (" + d +
                               "); use another --out, or resume without model options");
    }
  } else if (have_ckpt) {
    cfg_ = meta.config;
  } else {
    std::string names;
    for (const auto& n : PresetNames()) names += (names.empty() ? "" : ", ") + n;
    return Status::Usage("choose a model: --preset NAME (" + names +
                         "), --layers/--dim/--heads/--context, or --auto-size with --budget");
  }
  return Status::OK();
}

// The model's context against the data (on every rank, once the model is rank 0's).
Status Trainer::CheckModelData() {
  T_ = cfg_.context;
  const uint64_t train_tokens = ds_->info().tokens[(int)Split::kTrain];
  if (train_tokens < (uint64_t)T_ + 1)
    return Status::Invalid(opt_.data_dir + ": the train split holds " +
                           std::to_string(train_tokens) + " tokens, but context " +
                           std::to_string(T_) + " needs at least " + std::to_string(T_ + 1) +
                           " (use a smaller --context or more data)");
  return CheckRecipeForModel(opt_, cfg_);
}

// Batch geometry: micro-batches of B x T, accumulated to --batch-tokens; then
// the length of the run in steps.
Status Trainer::PlanBatch(const Checkpoint* resumed) {
  micro_batch_ = opt_.micro_batch;
  if (world() > 1) {
    LM_RETURN_IF_ERROR(PlanRankBatch());
    return ResolveLength(resumed);
  }
  int64_t bt = opt_.batch_tokens > 0 ? opt_.batch_tokens : (int64_t)micro_batch_ * T_;
  if (bt < T_)
    return Status::Usage("--batch-tokens " + std::to_string(bt) +
                         " is less than one sequence of context " + std::to_string(T_));
  if ((int64_t)micro_batch_ * T_ > bt) micro_batch_ = (int)(bt / T_);
  micro_steps_ = (int)std::max<int64_t>(
      1, (bt + (int64_t)micro_batch_ * T_ / 2) / ((int64_t)micro_batch_ * T_));
  if ((int64_t)micro_steps_ * micro_batch_ * T_ != bt)
    LogWarn(
        "--batch-tokens %lld is not a multiple of micro-batch %d x context %d; using %llu tokens "
        "per step",
        (long long)bt, micro_batch_, T_, (unsigned long long)tokens_per_step());
  return ResolveLength(resumed);
}

// Several ranks: --batch-tokens is the global batch, of whole sequences split
// evenly over the ranks (default: one micro-batch each); a micro-batch not
// given (or the run's, when resuming on another number of ranks) becomes the
// largest that divides a rank's share.
Status Trainer::PlanRankBatch() {
  const int64_t W = world(), seq = (int64_t)T_ * W;
  const int64_t bt = opt_.batch_tokens > 0 ? opt_.batch_tokens : (int64_t)micro_batch_ * seq;
  if (bt % seq != 0)
    return Status::Usage("--batch-tokens " + std::to_string(bt) +
                         " does not split into whole sequences over the ranks: it must be a "
                         "multiple of context " +
                         std::to_string(T_) + " x " + std::to_string(W) +
                         " ranks = " + std::to_string(seq));
  const int64_t rows = bt / seq;  // sequences per rank per step
  if (opt_.Given("micro-batch") && rows % micro_batch_ != 0)
    return Status::Usage("--micro-batch " + std::to_string(micro_batch_) + " does not divide the " +
                         std::to_string(rows) + " sequences each of the " + std::to_string(W) +
                         " ranks takes per step (--batch-tokens " + std::to_string(bt) +
                         " / (context " + std::to_string(T_) + " x " + std::to_string(W) +
                         " ranks)); give one that does, or leave it out");
  int b = (int)std::min<int64_t>(micro_batch_, rows);
  while (rows % b != 0) b--;
  if (b != micro_batch_ && !opt_.Given("micro-batch"))
    LogInfo("micro-batch %d: the largest that divides the %lld sequences per rank per step", b,
            (long long)rows);
  micro_batch_ = b;
  micro_steps_ = (int)(rows / b);
  return Status::OK();
}

// The host keeps the weights and both moments for checkpoints.
Status Trainer::CheckHostMemory() const {
  ParamLayout layout = MakeParamLayout(cfg_);
  double host_need = 3.0 * 4.0 * (double)layout.total;
  struct sysinfo si;
  if (sysinfo(&si) != 0) return Status::OK();
  double total = (double)si.totalram * si.mem_unit;
  if (host_need > total)
    return Status::Resource("the model needs " + FormatGib(host_need) +
                            " of host memory for its weights and optimizer moments, more than "
                            "this machine's " +
                            FormatGib(total) + " (" + cfg_.Describe() + ")");
  return Status::OK();
}

// The backend on this rank's device (GPU LOCAL_RANK), with the collectives
// it needs: MPI's (host memory) for the CPU, NCCL for CUDA.
Status Trainer::StartBackend() {
  std::string kind;
  LM_RETURN_IF_ERROR(Sync(MakeBackend(opt_.device, &backend_, &kind)));
  // A launched run (even of one rank) takes the collectives' path; a plain
  // process none.
  const bool launched = launch_.launcher != "none";
  if (launched && kind == "cuda" && !comm_->on_device()) {
    CommOptions co;
    co.timeout_seconds = opt_.comm_timeout;
    co.on_timeout = opt_.on_comm_timeout;
    LM_RETURN_IF_ERROR(Sync(StartNccl(launch_, launch_.local_rank, comm_, co, &device_comm_)));
    data_comm_ = device_comm_.get();
  }
  LM_RETURN_IF_ERROR(Sync(launched && kind == "cpu" && data_comm_->on_device()
                              ? Status::Usage("the CPU backend with " + std::to_string(world()) +
                                              " ranks launched without MPI: launch with mpirun "
                                              "or srun")
                              : Status::OK()));
  BackendOptions bo;
  bo.threads = opt_.threads;
  // Ranks sharing a machine share its cores, unless -j says otherwise.
  if (!opt_.Given("threads") && launch_.local_size > 1)
    bo.threads = std::max(1, opt_.threads / launch_.local_size);
  bo.max_batch = std::max(micro_batch_, 1);
  bo.max_seq = T_;
  bo.training = true;
  bo.recompute = opt_.recompute;
  bo.device_index = launch_.local_rank;
  bo.comm = launched ? data_comm_ : nullptr;
  return Sync(InitBackend(bo));
}

Status Trainer::InitBackend(const BackendOptions& bo) {
  Status s = backend_->Init(cfg_, bo);
  if (s.ok() || s.code() != Status::kResource) return s;
  return Status::Resource("cannot allocate the model on " + backend_->Describe() + ": " +
                          s.message() + " (" + cfg_.Describe() + ", micro-batch " +
                          std::to_string(micro_batch_) + "; try a smaller model or --micro-batch" +
                          (opt_.recompute ? "" : ", or --recompute") + ")");
}

// The data order, the validation windows, and the weights: the run's, or new.
Status Trainer::StartState(const Checkpoint& meta, bool have_ckpt) {
  LM_RETURN_IF_ERROR(
      BatchSampler::Create(ds_.get(), Split::kTrain, T_, DeriveSeed(opt_.seed, 2), &sampler_));
  LM_RETURN_IF_ERROR(LoadValWindows());
  rng_ = DeriveSeed(opt_.seed, 3);
  double lost = 0;
  if (have_ckpt) {
    LM_RETURN_IF_ERROR(RestoreFrom(meta));
    // Only rank 0 keeps metrics.jsonl.
    LM_RETURN_IF_ERROR(Sync(rank() == 0 ? PrepareMetrics(step_, &lost) : Status::OK()));
    // Under a budget, time spent after the last checkpoint before a crash
    // still counts: the deadline does not move (rank 0's, on every rank).
    if (opt_.budget_seconds > 0 && lost > elapsed_base_) elapsed_base_ = lost;
    LM_RETURN_IF_ERROR(comm_->Broadcast(&elapsed_base_, sizeof elapsed_base_, 0));
  } else {
    // Rank 0's initial weights (the same seed gives every rank the same).
    ParamLayout layout = MakeParamLayout(cfg_);
    std::vector<float> p, zero;
    if (rank() == 0) {
      p.resize(layout.total);
      InitParams(cfg_, layout, DeriveSeed(opt_.seed, 1), p.data(), opt_.init);
      zero.assign(layout.total, 0.0f);
    }
    LM_RETURN_IF_ERROR(ShareStartState(&p, &zero, &zero, 0));
    LM_RETURN_IF_ERROR(Sync(rank() == 0 ? PrepareMetrics(-1, &lost) : Status::OK()));
  }
  batch_.resize((size_t)micro_batch_ * (T_ + 1));
  inputs_.resize((size_t)micro_batch_ * T_);
  targets_.resize((size_t)micro_batch_ * T_);
  session_start_ = Clock::now();
  clock_ = 0;
  return Status::OK();
}

// A resumed run keeps its length (when none is given), its batch, its optimizer
// and schedule settings and its seed, unless the command line sets them; a
// setting given with another value than the run's is used from then on, with a
// warning.
Status Trainer::ResumeSettings(const Checkpoint& meta, int* given) {
  json st = json::parse(meta.state_json, nullptr, false);
  if (st.is_discarded() || !st.contains("train") || !st["train"].is_object()) return Status::OK();
  const json& tr = st["train"];
  if (*given == 0) {
    opt_.budget_seconds = tr.value("budget_seconds", 0.0);
    if (opt_.budget_seconds <= 0) opt_.tokens = tr.value("total_tokens", (uint64_t)0);
    if (opt_.budget_seconds <= 0 && opt_.tokens == 0)
      opt_.steps = tr.value("total_steps", (int64_t)-1);
    *given = opt_.budget_seconds > 0 || opt_.tokens > 0 || opt_.steps >= 0;
  }
  if (!opt_.Given("micro-batch") && !opt_.Given("batch-tokens") && tr.contains("micro_batch") &&
      tr.contains("tokens_per_step")) {
    opt_.micro_batch = tr["micro_batch"].get<int>();
    opt_.batch_tokens = tr["tokens_per_step"].get<int64_t>();
  }
  // A number of the run's: taken when the option is not given, else compared.
  auto keep = [&](const char* option, const json& obj, const char* key, auto* value) {
    KeepRunSetting(opt_, option, obj, key, value);
  };
  keep("lr", tr, "lr", &opt_.adam.lr);
  keep("beta1", tr, "beta1", &opt_.adam.beta1);
  keep("beta2", tr, "beta2", &opt_.adam.beta2);
  keep("weight-decay", tr, "weight_decay", &opt_.adam.weight_decay);
  keep("grad-clip", tr, "grad_clip", &opt_.adam.grad_clip);
  LM_RETURN_IF_ERROR(ResumeRecipe(tr, meta.dir + "/trainer-state.json", &opt_));
  if (st.contains("schedule") && st["schedule"].is_object()) {
    const json& sc = st["schedule"];
    if (sc.contains("kind") && sc["kind"].is_string()) {
      ScheduleKind k;
      if (!ParseScheduleKind(sc["kind"].get<std::string>(), &k).ok())
        return Status::Corruption(meta.dir + "/trainer-state.json: unknown schedule kind");
      if (!opt_.Given("schedule"))
        opt_.schedule.kind = k;
      else if (k != opt_.schedule.kind)
        LogWarn("resuming with --schedule %s; the run used %s",
                ScheduleKindName(opt_.schedule.kind), ScheduleKindName(k));
    }
    keep("decay", sc, "decay_fraction", &opt_.schedule.decay_fraction);
    // The warmup as the run resolved it: steps, or a fraction of a budget.
    // A --warmup given is compared once resolved (RestoreCursors).
    if (!opt_.Given("warmup") && sc.contains("warmup_steps") && sc.contains("warmup_fraction")) {
      int64_t ws = sc["warmup_steps"].get<int64_t>();
      opt_.warmup_steps = ws > 0 ? ws : -1;
      opt_.warmup_fraction = ws > 0 ? -1 : sc["warmup_fraction"].get<double>();
      opt_.warmup_seconds = -1;
    }
  }
  // The data order is the loader cursor's, so the seed stays the run's.
  if (st.contains("seed") && st["seed"].is_number_unsigned()) {
    uint64_t seed = st["seed"].get<uint64_t>();
    if (opt_.Given("seed") && seed != opt_.seed)
      LogWarn("--seed %llu is ignored when resuming: the run (seed %llu) continues",
              (unsigned long long)opt_.seed, (unsigned long long)seed);
    opt_.seed = seed;
  }
  if (opt_.micro_batch < 1 || opt_.batch_tokens < 0 || !(opt_.adam.lr > 0))
    return Status::Corruption(meta.dir +
                              "/trainer-state.json: bad micro_batch, tokens_per_step or lr");
  return Status::OK();
}

Status Trainer::CheckRunDirectory(Checkpoint* ck, bool* have) {
  *have = false;
  std::vector<std::string> dirs;
  LM_RETURN_IF_ERROR(ListCheckpoints(opt_.out_dir, &dirs));
  // Leftovers of a save that a crash interrupted are never complete.
  if (DIR* d = rank() == 0 ? opendir(opt_.out_dir.c_str()) : nullptr) {
    std::vector<std::string> stale;
    while (struct dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n.rfind(".tmp-step-", 0) == 0 || n.rfind(".old-step-", 0) == 0 ||
          n.rfind(".latest-", 0) == 0 || n.rfind(".best-", 0) == 0)
        stale.push_back(JoinPath(opt_.out_dir, n));
    }
    closedir(d);
    for (const auto& p : stale) RemoveAll(p);
  }
  if (dirs.empty()) return Status::OK();
  std::string step_dir;
  LM_RETURN_IF_ERROR(ResolveCheckpoint(opt_.out_dir, &step_dir));
  LM_RETURN_IF_ERROR(LoadCheckpoint(step_dir, false, ck));
  *have = true;
  return Status::OK();
}

Status Trainer::ResolveLength(const Checkpoint* resumed) {
  Schedule& sc = opt_.schedule;
  if (opt_.tokens > 0) {
    // The tokens still to train, in steps of the current size: a run resumed
    // with another --batch-tokens still ends at --tokens.
    uint64_t seen = resumed ? resumed->tokens_seen : 0;
    uint64_t left = opt_.tokens > seen ? opt_.tokens - seen : 0;
    opt_.steps = (resumed ? resumed->step : 0) +
                 (int64_t)((left + tokens_per_step() - 1) / tokens_per_step());
  }
  total_steps_ = opt_.budget_seconds > 0 ? -1 : opt_.steps;
  // Warmup in the unit the run is measured in.
  sc.warmup_steps = 0;
  sc.warmup_fraction = 0;
  if (opt_.warmup_steps >= 0) {
    sc.warmup_steps = opt_.warmup_steps;
  } else if (opt_.warmup_fraction >= 0) {
    // A fraction of the steps, unless --max-epochs may end the run sooner:
    // then a fraction of the progress, which counts epochs too.
    if (total_steps_ > 0 && opt_.max_epochs <= 0)
      sc.warmup_steps = (int64_t)std::llround(opt_.warmup_fraction * (double)total_steps_);
    else
      sc.warmup_fraction = opt_.warmup_fraction;
  } else if (opt_.warmup_seconds >= 0) {
    if (opt_.budget_seconds <= 0) return Status::Usage("--warmup as a duration needs --budget");
    sc.warmup_fraction = opt_.warmup_seconds / opt_.budget_seconds;
  }
  // The schedule's messages start with the option's name ("warmup 0.9 overlaps ...").
  Status v = sc.Validate();
  return v.ok() ? v : Status::Usage("--" + v.message());
}

// Windows spread evenly over the whole val split (SpreadWindows), so that
// the sample stands for all of it, not for its first documents.
Status Trainer::LoadValWindows() {
  const uint64_t n = ds_->info().tokens[(int)Split::kVal];
  SpreadWindows((int64_t)n, T_, opt_.val_tokens, &val_plan_);
  my_val_plan_.clear();  // every rank scores every world()-th window
  for (size_t w = (size_t)rank(); w < val_plan_.size(); w += (size_t)world())
    my_val_plan_.push_back(val_plan_[w]);
  return Status::OK();
}

// The loader's cursor and the sampling RNG from a checkpoint's state; warns
// when the data or the run's shape differ from the checkpoint's.
Status Trainer::RestoreCursors(const Checkpoint& ck) {
  json st = json::parse(ck.state_json, nullptr, false);
  std::string sp = JoinPath(ck.dir, "trainer-state.json");
  if (st.is_discarded() || !st.contains("loader") || !st.contains("rng"))
    return Status::Corruption(sp + ": no loader cursor or RNG state");
  BatchCursor cur;
  LM_RETURN_IF_ERROR(BatchCursor::FromJson(st["loader"].dump(), &cur).With(sp));
  LM_RETURN_IF_ERROR(sampler_->Seek(cur).With(sp));
  if (!st["rng"].is_object() || !st["rng"].contains("state") || !st["rng"]["state"].is_string() ||
      !ParseHashHex(st["rng"]["state"].get<std::string>(), &rng_))
    return Status::Corruption(sp + ": bad rng state");
  if (st.contains("data") && st["data"].is_object() && st["data"].contains("identity") &&
      st["data"]["identity"] != HashHex(ds_->info().identity))
    LogWarn(
        "%s: the data differs from the run's (dataset identity %s, run's %s); continuing on the "
        "new data",
        opt_.data_dir.c_str(), HashHex(ds_->info().identity).c_str(),
        st["data"]["identity"].get<std::string>().c_str());
  if (st.contains("train") && st["train"].is_object()) {
    const json& tr = st["train"];
    if (tr.value("tokens_per_step", (uint64_t)0) != tokens_per_step())
      LogWarn("resuming with %llu tokens per step; the run used %llu",
              (unsigned long long)tokens_per_step(),
              (unsigned long long)tr.value("tokens_per_step", (uint64_t)0));
    if (st.contains("schedule") && st["schedule"].is_object() &&
        (st["schedule"].value("warmup_steps", (int64_t)-1) != opt_.schedule.warmup_steps ||
         st["schedule"].value("warmup_fraction", -1.0) != opt_.schedule.warmup_fraction))
      LogWarn("resuming with a different --warmup than the run's");
    const bool same_tokens =
        opt_.tokens > 0 && tr.value("total_tokens", (uint64_t)0) == opt_.tokens;
    if ((!same_tokens && tr.value("total_steps", (int64_t)-2) != total_steps_) ||
        tr.value("budget_seconds", -1.0) != opt_.budget_seconds)
      LogWarn(
          "resuming with a different run length than the run started with; the schedule follows "
          "the new one");
  }
  return Status::OK();
}

// Rank 0 reads the weights and the optimizer state and sends them (each rank
// its shard of the moments); every rank reads the cursors from the state.
Status Trainer::RestoreFrom(const Checkpoint& meta) {
  Checkpoint ck;
  std::vector<float> m, v;
  int64_t adam_step = 0;
  std::string optimizer;
  Status s;
  if (rank() == 0) {
    s = LoadCheckpoint(meta.dir, true, &ck);
    if (s.ok()) s = LoadOptimizerState(ck.dir, ck.config, &m, &v, &adam_step, &optimizer);
    if (s.ok() && optimizer != opt_.optimizer)
      s = Status::Corruption(ck.dir + ": the optimizer state is " + optimizer +
                             "'s, but trainer-state.json says the run uses " + opt_.optimizer);
  }
  LM_RETURN_IF_ERROR(Sync(s));
  LM_RETURN_IF_ERROR(ShareStartState(&ck.params, &m, &v, adam_step));
  LM_RETURN_IF_ERROR(Sync(ReadJsonFields(JoinPath(meta.dir, "trainer-state.json"),
                                         [&] { return RestoreCursors(meta); })));
  resumed_ = true;
  resumed_from_ = meta.dir;
  return Status::OK();
}

// Where the run stands: its step, tokens, clock, and whether a budget run
// ended at its deadline (then it is complete for that budget).
Status Trainer::ReadProgress(const Checkpoint& meta) {
  step_ = meta.step;
  tokens_seen_ = meta.tokens_seen;
  elapsed_base_ = meta.elapsed_seconds;
  last_saved_ = meta.step;
  json st = json::parse(meta.state_json, nullptr, false);
  if (st.is_discarded() || !st.contains("train") || !st["train"].is_object()) return Status::OK();
  return ReadJsonFields(JoinPath(meta.dir, "trainer-state.json"), [&] {
    const json& tr = st["train"];
    if (opt_.budget_seconds > 0 && tr.value("budget_seconds", -1.0) == opt_.budget_seconds &&
        tr.value("ended", false))
      ended_ = last_saved_ended_ = true;
    if (st.contains("best") && st["best"].is_object()) {  // RUN/best so far
      best_step_ = st["best"].value("step", (int64_t)-1);
      best_loss_ = st["best"].value("val_loss", 0.0);
    }
    return Status::OK();
  });
}

// metrics.jsonl keeps the records of steps up to the checkpoint resumed from
// (the later ones will be redone); *lost_elapsed gets the clock of the last
// record dropped, so that a budget run can count the time a crash cost.
Status Trainer::PrepareMetrics(int64_t keep_upto_step, double* lost_elapsed) {
  std::string path = JoinPath(opt_.out_dir, "metrics.jsonl");
  *lost_elapsed = 0;
  std::string text, kept;
  if (PathExists(path)) {
    LM_RETURN_IF_ERROR(ReadFile(path, &text));
    size_t pos = 0;
    while (pos < text.size()) {
      size_t nl = text.find('\n', pos);
      if (nl == std::string::npos) break;  // a torn last line
      std::string line = text.substr(pos, nl - pos);
      pos = nl + 1;
      json j;
      if (!ParseJsonText(line, &j).ok() || !j.is_object() || !j.contains("step") ||
          !j["step"].is_number_integer())
        continue;
      if (j["step"].get<int64_t>() <= keep_upto_step) {
        kept += line + "\n";
      } else if (j.contains("elapsed") && j["elapsed"].is_number()) {
        *lost_elapsed = std::max(*lost_elapsed, j["elapsed"].get<double>());
      }
    }
    if (kept != text) LM_RETURN_IF_ERROR(WriteFileAtomic(path, kept));
  }
  metrics_fd_ = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (metrics_fd_ < 0) return Status::FromErrno(path, "cannot open");
  return Status::OK();
}

// ---------------------------------------------------------------------------
// Training

// The clock read at the last Sync (the same on every rank), so that the
// schedule, the deadline and the cadence agree across the ranks.
double Trainer::elapsed() const {
  return elapsed_base_ + clock_;
}

double Trainer::epochs() const {
  const uint64_t unique = ds_ ? ds_->info().tokens[(int)Split::kTrain] : 0;
  return unique ? (double)tokens_seen_ / (double)unique : 0.0;
}

double Trainer::progress() const {
  const double p = LengthProgress();
  return opt_.max_epochs > 0 ? std::max(p, epochs() / opt_.max_epochs) : p;
}

double Trainer::LengthProgress() const {
  if (opt_.budget_seconds > 0) return elapsed() / opt_.budget_seconds;
  if (total_steps_ <= 0) return 1.0;
  // Under --tokens, the fraction of the tokens (the same as of the steps
  // unless --batch-tokens changed on a resume).
  if (opt_.tokens > 0 && step_ < total_steps_)
    return (double)tokens_seen_ /
           ((double)tokens_seen_ + (double)(total_steps_ - step_) * (double)tokens_per_step());
  return (double)step_ / (double)total_steps_;
}

bool Trainer::Finished() const {
  if (opt_.max_epochs > 0 && epochs() >= opt_.max_epochs) return true;
  if (opt_.budget_seconds > 0) return ended_ || elapsed() >= opt_.budget_seconds;
  return step_ >= total_steps_;
}

// This rank's B rows of the next micro-step's windows into inputs_ and
// targets_; *count gets the targets that count (all of them, in practice).
Status Trainer::NextMicroBatch(int B, int64_t* count) {
  LM_RETURN_IF_ERROR(sampler_->Next(B * world(), rank() * B, B, batch_.data()));
  *count = 0;
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T_; t++) {
      inputs_[(size_t)b * T_ + t] = (int32_t)batch_[(size_t)b * (T_ + 1) + t];
      targets_[(size_t)b * T_ + t] = (int32_t)batch_[(size_t)b * (T_ + 1) + t + 1];
      *count += targets_[(size_t)b * T_ + t] >= 0;
    }
  return Status::OK();
}

Status Trainer::Step(StepStats* st) {
  auto t0 = Clock::now();
  const double prog = progress();
  double mult = opt_.schedule.Multiplier(prog, step_);
  const AdamWConfig a = ScheduledOptimizer(opt_.adam, mult);
  LM_RETURN_IF_ERROR(backend_->ZeroGrad());
  // The step's sequences per rank, S (fewer during a batch warmup), in
  // micro-batches of near-equal size. Each micro-step, rank r of W takes rows
  // [r*B, (r+1)*B) of the next W*B windows, so the step covers the same
  // windows on any number of ranks. Every window's targets all count, so the
  // step's global count of targets is S*W*T: a micro-batch's gradient and loss
  // weigh count/global (its grad_scale, its share of the step's targets). The
  // loss stays on the device, kept by the backend weighted by that
  // grad_scale; OptimizerStep sums it over the ranks with the gradient norm
  // (one collective, no wait per micro-step), and StepLoss reads the step's
  // global mean after it.
  const int S = BatchSequences(micro_batch_ * micro_steps_, opt_.batch_warmup, prog);
  const int n_micro = (S + micro_batch_ - 1) / micro_batch_;
  const double global_targets = (double)S * world() * T_;
  const BatchCursor start = sampler_->cursor();
  for (int m = 0; m < n_micro; m++) {
    const int B = (int)((int64_t)S * (m + 1) / n_micro - (int64_t)S * m / n_micro);
    if (m > 0 && interrupt_) {
      double sig = interrupt_();  // a stop on any rank abandons the step on all
      LM_RETURN_IF_ERROR(comm_->AllReduce(&sig, 1, ReduceOp::kMax));
      if (sig != 0) {
        LM_RETURN_IF_ERROR(sampler_->Seek(start));
        st->abandoned = true;
        st->signal = (int)sig;
        st->step = step_;
        st->seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        return Status::OK();
      }
    }
    int64_t count = 0;
    LM_RETURN_IF_ERROR(NextMicroBatch(B, &count));
    if (m == n_micro - 1) backend_->ReduceDuringNextBackward();
    LM_RETURN_IF_ERROR(backend_->ForwardBackward(inputs_.data(), targets_.data(), B, T_,
                                                 (float)((double)count / global_targets), nullptr));
  }
  st->lr = opt_.adam.lr * mult;
  st->grad_norm = 0;
  st->skipped = false;
  // A non-finite loss makes the backend skip the update, as a non-finite gradient does.
  LM_RETURN_IF_ERROR(backend_->OptimizerStep(a, &st->grad_norm, &st->skipped));
  LM_RETURN_IF_ERROR(backend_->StepLoss(&st->loss));
  if (!std::isfinite(st->loss)) {
    st->skipped = true;
    st->grad_norm = NAN;
  }
  step_++;
  const uint64_t step_tokens = (uint64_t)S * T_ * (uint64_t)world();
  tokens_seen_ += step_tokens;
  st->step = step_;
  st->tokens = step_tokens;
  st->seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return Status::OK();
}

Status Trainer::Validate(double* loss, double* bpb) {
  if (val_plan_.empty()) return Status::NotFound("no validation data");
  EvalSums sums;
  Status s = my_val_plan_.empty()
                 ? Status::OK()
                 : EvaluateWindows(
                       backend_.get(), my_val_plan_, micro_batch_,
                       (int64_t)ds_->info().tokens[(int)Split::kVal],
                       [this](int64_t start, int64_t n, int32_t* out) {
                         val_buf_.resize((size_t)n);
                         LM_RETURN_IF_ERROR(
                             ds_->Read(Split::kVal, (uint64_t)start, (size_t)n, val_buf_.data()));
                         for (int64_t i = 0; i < n; i++)
                           out[i] = val_buf_[i] > (uint32_t)INT32_MAX ? -1 : (int32_t)val_buf_[i];
                         return Status::OK();
                       },
                       token_bytes_, nullptr, &sums, nullptr);
  // The ranks' sums added up; weights that give a non-finite loss on any
  // rank's windows are reported as such by every rank.
  const bool nonfinite =
      s.code() == Status::kInvalid && s.message().find("not finite") != std::string::npos;
  double v[7] = {(double)sums.targets,
                 sums.loss,
                 (double)sums.text_targets,
                 sums.text_loss,
                 (double)sums.bytes,
                 nonfinite ? 1.0 : 0.0,
                 !s.ok() && !nonfinite ? 1.0 : 0.0};
  LM_RETURN_IF_ERROR(comm_->AllReduce(v, 7, ReduceOp::kSum));
  if (!s.ok() && !nonfinite) return s;
  if (v[6] > 0) return Status::Invalid("validation failed on another rank (its error is above)");
  if (v[5] > 0) return nonfinite ? s : Status::Invalid("validation: the loss is not finite");
  sums.targets = (int64_t)v[0];
  sums.loss = v[1];
  sums.text_targets = (int64_t)v[2];
  sums.text_loss = v[3];
  sums.bytes = (int64_t)v[4];
  *loss = sums.mean_loss();
  *bpb = sums.bits_per_byte();
  return Status::OK();
}

Status Trainer::Sample(std::string* prompt, std::string* text) {
  if (val_plan_.empty()) return Status::NotFound("no validation data for prompts");
  const EvalWindow& w = val_plan_[(size_t)(SplitMix64Next(&rng_) % val_plan_.size())];
  const int plen = std::min(16, std::max(1, w.targets / 2));
  std::vector<uint32_t> pu((size_t)plen);
  LM_RETURN_IF_ERROR(ds_->Read(Split::kVal, (uint64_t)w.begin, (size_t)plen, pu.data()));
  std::vector<int32_t> p(pu.begin(), pu.end());
  SamplerConfig greedy;
  greedy.temperature = 0;
  Sampler sampler(greedy, cfg_.vocab_size);
  GenerateOptions go;
  go.max_tokens = std::min(opt_.sample_tokens, cfg_.context - plen);
  go.eot_id = (int32_t)vocab_.eot_id();
  for (uint32_t id = 0; id < vocab_.size(); id++)
    if (vocab_.is_unused(id)) go.banned.push_back((int32_t)id);
  std::vector<uint32_t> out;
  GenerateStats st;
  LM_RETURN_IF_ERROR(Generate(
      backend_.get(), cfg_.context, cfg_.vocab_size, p, &sampler, go,
      [&out](int32_t id, bool*) {
        out.push_back((uint32_t)id);
        return Status::OK();
      },
      &st));
  if (st.ended_by_eot) out.push_back(vocab_.eot_id());  // shown, as the model chose it
  LM_RETURN_IF_ERROR(vocab_.Decode(pu.data(), pu.size(), prompt));
  return vocab_.Decode(out.data(), out.size(), text);
}

std::string Trainer::ExtraStateJson() {
  json j = json::object();
  j["rng"] = {{"algorithm", "splitmix64"}, {"state", HashHex(rng_)}};
  json cur = json::parse(sampler_->cursor().ToJson(), nullptr, false);
  j["loader"] = cur;
  j["command_line"] = opt_.command_line;
  j["seed"] = opt_.seed;
  j["data"] = {{"dir", opt_.data_dir}, {"identity", HashHex(ds_->info().identity)}};
  j["train"] = {{"total_steps", total_steps_},
                {"total_tokens", opt_.tokens},
                {"budget_seconds", opt_.budget_seconds},
                {"ended", opt_.budget_seconds > 0 && Finished()},
                {"tokens_per_step", tokens_per_step()},
                {"micro_batch", micro_batch_},
                {"micro_steps", micro_steps_},
                {"seq_len", T_},
                {"lr", opt_.adam.lr},
                {"beta1", opt_.adam.beta1},
                {"beta2", opt_.adam.beta2},
                {"eps", opt_.adam.eps},
                {"weight_decay", opt_.adam.weight_decay},
                {"grad_clip", opt_.adam.grad_clip}};
  RecipeToJson(opt_, &j["train"]);
  if (best_step_ >= 0) j["best"] = {{"step", best_step_}, {"val_loss", best_loss_}};
  j["schedule"] = {{"kind", ScheduleKindName(opt_.schedule.kind)},
                   {"warmup_steps", opt_.schedule.warmup_steps},
                   {"warmup_fraction", opt_.schedule.warmup_fraction},
                   {"decay_fraction", opt_.schedule.decay_fraction},
                   {"progress", progress()}};
  j["device"] = backend_->Describe();
  if (world() > 1) {
    j["train"]["ranks"] = world();
    j["data_parallel"] = json::parse(DataParallelJson());
  }
  j["lm_version"] = kVersion;
  return j.dump();
}

// Every rank sends its shard of the optimizer state; rank 0 writes the
// checkpoint, and every rank returns rank 0's outcome, after it (so that no
// rank ends the job while rank 0 writes).
Status Trainer::Save(std::string* dir) {
  std::vector<float> m, v;
  int64_t adam_step = 0;
  LM_RETURN_IF_ERROR(GatherOptimizerState(&m, &v, &adam_step));
  *dir = JoinPath(opt_.out_dir, CheckpointDirName(step_));
  Status s = rank() == 0 ? WriteRun(m, v, adam_step, dir) : Status::OK();
  LM_RETURN_IF_ERROR(ShareStatus(s));
  last_saved_ = step_;
  last_saved_ended_ = opt_.budget_seconds > 0 && Finished();  // as trainer-state.json says
  return Status::OK();
}

Status Trainer::WriteRun(const std::vector<float>& m, const std::vector<float>& v,
                         int64_t adam_step, std::string* dir) {
  ParamLayout layout = MakeParamLayout(cfg_);
  std::vector<float> p(layout.total);
  LM_RETURN_IF_ERROR(backend_->GetParams(p.data()));
  CheckpointContents c;
  c.config = cfg_;
  c.eot_id = (int)vocab_.eot_id();
  c.step = step_;
  c.tokens_seen = tokens_seen_;
  c.elapsed_seconds = elapsed();
  c.vocab_id = vocab_.id();
  c.vocab_path = opt_.vocab_path;
  c.vocab_bytes = vocab_bytes_;
  // The tokenizer files that make the step directory a Hugging Face model
  // directory (docs/formats/checkpoint.md, version 2).
  LM_RETURN_IF_ERROR(HfTokenizerFiles(vocab_, cfg_.context, &c.extra_files));
  c.params = p.data();
  c.adam_m = m.data();
  c.adam_v = v.data();
  c.adam_step = adam_step;
  c.muon = opt_.adam.muon.enabled;
  c.extra_json = ExtraStateJson();
  LM_RETURN_IF_ERROR(WriteCheckpoint(opt_.out_dir, c, dir));
  LM_RETURN_IF_ERROR(PointLatest(opt_.out_dir, *dir));
  // The checkpoint is saved; an old one that could not be deleted costs disk
  // space, not the run.
  Status pruned = PruneCheckpoints(opt_.out_dir, opt_.keep, *dir);
  if (!pruned.ok())
    LogWarn("--keep %d: %s (training goes on; the next lm-train start retries)", opt_.keep,
            pruned.ToString().c_str());
  return Status::OK();
}

// ---------------------------------------------------------------------------
// Metrics

// A line that cannot be written (a full disk) is cut back out, so the file
// never holds a torn line, and kept with the ones after it until there is
// room: the run goes on with a warning. Past 64 MiB held back it stops.
Status Trainer::AppendMetrics(const std::string& line) {
  if (metrics_fd_ < 0) return Status::OK();
  const std::string path = JoinPath(opt_.out_dir, "metrics.jsonl");
  metrics_pending_ += line;
  const off_t size = lseek(metrics_fd_, 0, SEEK_END);
  Status s = WriteAll(metrics_fd_, metrics_pending_.data(), metrics_pending_.size(), path);
  if (s.ok()) {
    if (metrics_held_) LogInfo("%s: the lines held back are written", path.c_str());
    metrics_pending_.clear();
    metrics_held_ = false;
    return s;
  }
  if (size >= 0 && ftruncate(metrics_fd_, size) != 0) return s;
  if (metrics_pending_.size() > (64u << 20)) return s;
  if (!metrics_held_)
    LogWarn("%s; training goes on, its lines are held back until they can be written",
            s.ToString().c_str());
  metrics_held_ = true;
  return Status::OK();
}

namespace {
// JSON has no NaN; a skipped step's values are written as null.
json Num(double x) {
  return std::isfinite(x) ? json(x) : json(nullptr);
}
}  // namespace

Status Trainer::LogStep(const StepStats& st, double tokens_per_s) {
  json j = {{"step", st.step},
            {"tokens", tokens_seen_},
            {"elapsed", elapsed()},
            {"loss", Num(st.loss)},
            {"lr", st.lr},
            {"grad_norm", Num(st.grad_norm)},
            {"tokens_per_s", Num(tokens_per_s)},
            {"epochs", epochs()},
            {"skipped", st.skipped}};
  if (world() > 1) {  // tokens_per_s is the whole job's
    j["ranks"] = world();
    j["tokens_per_s_per_rank"] = Num(tokens_per_s / world());
  }
  return AppendMetrics(j.dump() + "\n");
}

Status Trainer::LogVal(double loss, double bpb) {
  json j = {{"step", step_},
            {"tokens", tokens_seen_},
            {"elapsed", elapsed()},
            {"val_loss", Num(loss)},
            {"val_bpb", Num(bpb)}};
  return AppendMetrics(j.dump() + "\n");
}

}  // namespace lm
