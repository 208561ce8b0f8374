// schedule.cpp: warmup-stable-decay and cosine learning-rate schedules.
#include "model/schedule.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace lm {

double Schedule::Multiplier(double progress, int64_t step) const {
  if (!(progress < 1.0)) return 0.0;  // also NaN
  progress = std::max(0.0, progress);
  double warm = 1.0;
  double warm_end = 0.0;  // progress at which warmup ends (fraction form only)
  if (warmup_steps > 0) {
    warm = std::min(1.0, (double)(step + 1) / (double)warmup_steps);
  } else if (warmup_fraction > 0) {
    warm_end = warmup_fraction;
    warm = std::min(1.0, progress / warmup_fraction);
  }
  double shape = 1.0;
  if (kind == ScheduleKind::kWsd) {
    double start = 1.0 - decay_fraction;
    if (progress > start && decay_fraction > 0) shape = (1.0 - progress) / decay_fraction;
  } else {
    double span = 1.0 - warm_end;
    double x = span > 0 ? std::max(0.0, progress - warm_end) / span : 1.0;
    shape = 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, x)));
  }
  double m = warm * shape;
  return std::max(0.0, std::min(1.0, m));
}

Status Schedule::Validate() const {
  if (!(warmup_fraction >= 0 && warmup_fraction < 1))
    return Status::Usage("warmup: a fraction must lie in [0, 1), got " +
                         std::to_string(warmup_fraction));
  if (warmup_steps < 0) return Status::Usage("warmup: negative step count");
  if (kind == ScheduleKind::kWsd) {
    if (!(decay_fraction > 0 && decay_fraction <= 1))
      return Status::Usage("decay: the decay fraction must lie in (0, 1], got " +
                           std::to_string(decay_fraction));
    if (warmup_steps <= 0 && warmup_fraction > 1.0 - decay_fraction)
      return Status::Usage("warmup " + std::to_string(warmup_fraction) +
                           " overlaps the decay phase (last " + std::to_string(decay_fraction) +
                           " of the run)");
  }
  return Status::OK();
}

std::string Schedule::Describe() const {
  char b[160];
  std::string warm = warmup_steps > 0
                         ? std::to_string(warmup_steps) + " steps warmup"
                         : (snprintf(b, sizeof b, "%.3g warmup", warmup_fraction), std::string(b));
  if (kind == ScheduleKind::kWsd) {
    snprintf(b, sizeof b, "wsd (%s, linear decay to 0 over the last %.3g)", warm.c_str(),
             decay_fraction);
  } else {
    snprintf(b, sizeof b, "cosine (%s, to 0 at the end)", warm.c_str());
  }
  return b;
}

Status ParseScheduleKind(const std::string& s, ScheduleKind* out) {
  if (s == "wsd") {
    *out = ScheduleKind::kWsd;
  } else if (s == "cosine") {
    *out = ScheduleKind::kCosine;
  } else {
    return Status::Usage("unknown schedule '" + s + "' (expected wsd or cosine)");
  }
  return Status::OK();
}

const char* ScheduleKindName(ScheduleKind k) {
  return k == ScheduleKind::kWsd ? "wsd" : "cosine";
}

}  // namespace lm
