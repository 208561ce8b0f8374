// schedule.h: the learning-rate schedule as a function of training progress.
//
// Progress is the fraction of the run done: steps taken / total steps with
// --steps or --tokens, seconds elapsed / budget with --budget (the Cramming
// recipe: the schedule follows the clock, so a run stopped at its deadline has
// fully decayed). Both shapes warm up linearly, then:
//   wsd     hold the peak, then decay linearly to zero over the last
//           `decay_fraction` of the run (warmup-stable-decay);
//   cosine  half a cosine from the peak down to zero at the end.
// The multiplier is exactly 0 at progress 1 and beyond.
#pragma once

#include <cstdint>
#include <string>

#include "util/status.h"

namespace lm {

enum class ScheduleKind { kWsd, kCosine };

struct Schedule {
  ScheduleKind kind = ScheduleKind::kWsd;
  // Warmup, given either as a fraction of the run or as a number of steps
  // (warmup_steps > 0 wins; a step count also works for time budgets, where it
  // ramps on the step counter while the rest follows the clock).
  double warmup_fraction = 0.0;
  int64_t warmup_steps = 0;
  double decay_fraction = 0.2;  // wsd only
  // Multiplier of the peak learning rate in [0, 1] for the step `step`
  // (0-based) taken at `progress` in [0, 1].
  double Multiplier(double progress, int64_t step) const;
  // Checks the fractions are within [0, 1) and the warmup ends before decay.
  Status Validate() const;
  std::string Describe() const;
};

// "wsd" or "cosine".
Status ParseScheduleKind(const std::string& s, ScheduleKind* out);
const char* ScheduleKindName(ScheduleKind k);

}  // namespace lm
