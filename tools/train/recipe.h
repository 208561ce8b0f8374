// recipe.h: lm-train's training recipe beyond the model and the length: the
// optimizer (AdamW, or Muon for the hidden matrices with AdamW for the rest),
// the learning rate of each parameter group, the initialisation, the batch
// warmup and the limit on passes over the data. Their options, the checks
// across them, what a checkpoint records of them, and how a resumed run keeps
// them.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "model/config.h"
#include "options.h"
#include "trainer.h"
#include "util/cli.h"
#include "util/progress.h"
#include "util/status.h"

namespace lm {

// Passes over the unique training tokens beyond which repeating data stops
// paying: Muennighoff et al. 2023 ("Scaling Data-Constrained Language
// Models") find up to about 4 epochs nearly as good as new data, and fast
// diminishing returns after.
constexpr double kUsefulEpochs = 4.0;

void DeclareRecipeOptions(cli::Command* cmd, TrainFlags* f);
// After cli::Parse: the optimizer by name, and the combinations that make no
// sense refused with a usage error.
Status ResolveRecipeOptions(const cli::Command& cmd, TrainFlags* f);
// Once the model is known (given, or the run's): what the recipe needs of it.
Status CheckRecipeForModel(const TrainerOptions& o, const ModelConfig& c);

// The recipe's members of trainer-state.json's "train" object.
void RecipeToJson(const TrainerOptions& o, nlohmann::json* train);
// A resumed run keeps its recipe unless the command line sets it; the
// optimizer cannot change (its state would be misread): that is refused.
Status ResumeRecipe(const nlohmann::json& train, const std::string& state_path, TrainerOptions* o);

// The optimizer settings of one step: every learning rate times the
// schedule's multiplier.
AdamWConfig ScheduledOptimizer(const AdamWConfig& peak, double mult);
// Sequences in the step taken at `progress`, under a batch warmup that grows
// linearly from a quarter of `full` to `full` over the first `warmup` of the
// run (warmup 0: always full).
int BatchSequences(int full, double warmup, double progress);

// The run's value of a numeric setting is taken when the option is not given;
// a different value given wins, with a warning.
template <class T>
void KeepRunSetting(const TrainerOptions& o, const char* option, const nlohmann::json& obj,
                    const char* key, T* value) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_number()) return;
  T run = obj[key].get<T>();
  if (!o.Given(option))
    *value = run;
  else if (run != *value)
    LogWarn("resuming with --%s %g; the run used %g", option, (double)*value, (double)run);
}

}  // namespace lm
