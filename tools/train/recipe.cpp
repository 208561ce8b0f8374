// recipe.cpp: lm-train's optimizer, learning-rate groups, initialisation,
// batch warmup and data limit (recipe.h).
#include "recipe.h"

#include <algorithm>
#include <cmath>

#include "model/params.h"
#include "util/progress.h"

namespace lm {

using json = nlohmann::json;

void DeclareRecipeOptions(cli::Command* cmd, TrainFlags* f) {
  TrainerOptions& o = f->o;
  MuonConfig& mu = o.adam.muon;
  cli::Options add(cmd);
  add("optimizer", &f->optimizer, "NAME",
      "muon (Muon for the hidden matrices, AdamW for the rest) or adamw")
      .Default("adamw");
  add("muon-lr", &mu.lr, "X", "Muon: peak learning rate of the hidden matrices")
      .Default(0.02f, "0.02")
      .Check(cli::Positive());
  add("muon-momentum", &mu.momentum, "X", "Muon: Nesterov momentum")
      .Default(0.95f, "0.95")
      .Check(cli::In(0, 1, false, true));
  add("muon-wd", &mu.weight_decay, "X", "Muon: decoupled weight decay of the matrices")
      .Default(0.0f, "0")
      .Check(cli::NonNegative());
  add("ns-steps", &mu.ns_steps, "N", "Muon: Newton-Schulz iterations")
      .Default(5)
      .Check(cli::In(1, 20));
  add("embed-lr", &o.adam.embed_lr, "X", "peak learning rate of the embedding (default: --lr)")
      .Check(cli::Positive());
  add("head-lr", &o.adam.head_lr, "X", "peak learning rate of an untied head (default: --lr)")
      .Check(cli::Positive());
  add("norm-lr", &o.adam.norm_lr, "X", "peak learning rate of the norm weights (default: --lr)")
      .Check(cli::Positive());
  add.Flag("zero-init", &o.init.zero_out_proj,
           "start the attention output and MLP down projections at zero");
  add("batch-warmup", &o.batch_warmup, "F",
      "grow the batch from a quarter to --batch-tokens over this fraction of the run")
      .Default(0.0, "0")
      .Check(cli::In(0, 1, false, true));
  add("max-epochs", &o.max_epochs, "E",
      "end the run (learning rate at zero) after E passes over the train split (0: no limit)")
      .Default(0.0, "0")
      .Check(cli::NonNegative());
  add.Flag("no-best", &f->no_best, "do not keep RUN/best, the checkpoint of lowest val loss");
}

Status ResolveRecipeOptions(const cli::Command& cmd, TrainFlags* f) {
  TrainerOptions& o = f->o;
  if (f->optimizer != "muon" && f->optimizer != "adamw")
    return Status::Usage("--optimizer must be muon or adamw (got '" + f->optimizer + "')");
  o.optimizer = f->optimizer;
  o.adam.muon.enabled = o.optimizer == "muon";
  if (o.batch_warmup > 0 && cmd.Given("tokens"))
    return Status::Usage(
        "--batch-warmup changes the tokens per step: give the length as --steps or --budget, "
        "not --tokens");
  if (cmd.Given("batch-warmup") && !cmd.Given("batch-tokens") && !cmd.Given("micro-batch") &&
      o.batch_warmup > 0 && o.micro_batch < 4)
    return Status::Usage("--batch-warmup needs a batch of at least 4 sequences to grow");
  o.keep_best = !f->no_best;
  return Status::OK();
}

Status CheckRecipeForModel(const TrainerOptions& o, const ModelConfig& c) {
  if (o.adam.head_lr > 0 && c.tied_embeddings)
    return Status::Usage(
        "--head-lr needs an untied head (--untied): a tied model's head is its embedding, "
        "set by --embed-lr");
  if (!o.adam.muon.enabled)
    for (const char* k : {"muon-lr", "muon-momentum", "muon-wd", "ns-steps"})
      if (o.Given(k))
        return Status::Usage(std::string("--") + k + " applies to --optimizer muon, not adamw");
  if (o.adam.muon.enabled) {
    ParamLayout layout = MakeParamLayout(c);
    bool any = false;
    for (const TensorInfo& t : layout.tensors) any |= t.group == ParamGroup::kMatrix;
    if (!any)
      return Status::Usage(
          "--optimizer muon: the model has no 2-D weights inside its blocks for Muon to "
          "update (use --optimizer adamw)");
  }
  return Status::OK();
}

void RecipeToJson(const TrainerOptions& o, json* train) {
  json& t = *train;
  const AdamWConfig& a = o.adam;
  t["optimizer"] = o.optimizer;
  t["embed_lr"] = a.embed_lr;
  t["head_lr"] = a.head_lr;
  t["norm_lr"] = a.norm_lr;
  if (a.muon.enabled) {
    t["muon_lr"] = a.muon.lr;
    t["muon_momentum"] = a.muon.momentum;
    t["muon_weight_decay"] = a.muon.weight_decay;
    t["ns_steps"] = a.muon.ns_steps;
  }
  t["zero_init"] = o.init.zero_out_proj;
  t["batch_warmup"] = o.batch_warmup;
  t["max_epochs"] = o.max_epochs;
}

Status ResumeRecipe(const json& tr, const std::string& state_path, TrainerOptions* o) {
  // A run from before the option trained with AdamW.
  const std::string run = tr.contains("optimizer") && tr["optimizer"].is_string()
                              ? tr["optimizer"].get<std::string>()
                              : std::string("adamw");
  if (run != "adamw" && run != "muon")
    return Status::Corruption(state_path + ": unknown optimizer '" + run + "'");
  if (o->Given("optimizer") && run != o->optimizer)
    return Status::Usage("the run was trained with --optimizer " + run +
                         ", whose state cannot continue under " + o->optimizer + ": resume with " +
                         "--optimizer " + run + ", or start a new run in another --out");
  o->optimizer = run;
  AdamWConfig& a = o->adam;
  a.muon.enabled = run == "muon";
  KeepRunSetting(*o, "embed-lr", tr, "embed_lr", &a.embed_lr);
  KeepRunSetting(*o, "head-lr", tr, "head_lr", &a.head_lr);
  KeepRunSetting(*o, "norm-lr", tr, "norm_lr", &a.norm_lr);
  KeepRunSetting(*o, "muon-lr", tr, "muon_lr", &a.muon.lr);
  KeepRunSetting(*o, "muon-momentum", tr, "muon_momentum", &a.muon.momentum);
  KeepRunSetting(*o, "muon-wd", tr, "muon_weight_decay", &a.muon.weight_decay);
  KeepRunSetting(*o, "ns-steps", tr, "ns_steps", &a.muon.ns_steps);
  KeepRunSetting(*o, "batch-warmup", tr, "batch_warmup", &o->batch_warmup);
  KeepRunSetting(*o, "max-epochs", tr, "max_epochs", &o->max_epochs);
  return Status::OK();
}

AdamWConfig ScheduledOptimizer(const AdamWConfig& peak, double mult) {
  AdamWConfig a = peak;
  auto scale = [mult](float x) { return (float)(x * mult); };
  a.lr = scale(peak.lr);
  // A group without its own rate follows lr: left <= 0, LrFor() gives lr.
  a.embed_lr = scale(peak.embed_lr);
  a.head_lr = scale(peak.head_lr);
  a.norm_lr = scale(peak.norm_lr);
  a.muon.lr = scale(peak.muon.lr);
  return a;
}

int BatchSequences(int full, double warmup, double progress) {
  if (!(warmup > 0) || progress >= warmup) return full;
  const double frac = 0.25 + 0.75 * std::max(0.0, progress) / warmup;
  return std::max(1, std::min(full, (int)std::ceil(frac * full)));
}

}  // namespace lm
