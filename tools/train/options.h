// options.h: lm-train's command line: the option table, the checks that
// cross options, and the choice of the model (a preset, sizes, or auto-size),
// turned into TrainerOptions.
#pragma once

#include "trainer.h"
#include "util/cli.h"
#include "util/status.h"

namespace lm {

// --warmup: steps (200), a fraction of the run (0.02 or 2%) or a duration (5m).
struct Warmup {
  int64_t steps = -1;
  double fraction = -1;
  double seconds = -1;
};
void validate(boost::any& v, const std::vector<std::string>& values, Warmup*, int);

// The options as given, before they become TrainerOptions.
struct TrainFlags {
  TrainerOptions o;
  std::string preset, model, schedule = "wsd", optimizer;
  bool no_best = false;
  bool auto_size = false, untied = false, resume = false, recompute = false;
  int layers = 0, dim = 0, heads = 0, kv_heads = 0, ffn = 0, context = 0;
  double rope_theta = 0, probe_seconds = 8;
  cli::Count steps, tokens, batch_tokens, val_tokens, peak_flops;
  cli::Duration budget, comm_timeout{600};
  Warmup warmup;
};

void DeclareTrainOptions(cli::Command* cmd, TrainFlags* f);
// After cli::Parse: the cross-option checks, the model, and *out. Auto-sizing
// probes the device here (and writes RUN/auto-size.json).
Status ResolveTrainOptions(const cli::Command& cmd, int argc, char** argv, TrainFlags* f,
                           TrainerOptions* out);

}  // namespace lm
