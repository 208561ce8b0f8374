// human.cpp: formatting for people (human.h).
#include "util/human.h"

#include <cmath>
#include <cstdio>
#include <ctime>

namespace lm {

std::string FormatGib(double bytes) {
  char b[48];
  snprintf(b, sizeof b, "%.2f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return b;
}

std::string FormatDuration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char b[48];
  long long t = (long long)std::llround(s);
  if (t >= 3600)
    snprintf(b, sizeof b, "%lldh%02lldm", t / 3600, (t / 60) % 60);
  else if (t >= 60)
    snprintf(b, sizeof b, "%lldm%02llds", t / 60, t % 60);
  else
    snprintf(b, sizeof b, "%llds", t);
  return b;
}

std::string FormatRate(double x) {
  char b[32];
  if (x >= 1e6)
    snprintf(b, sizeof b, "%.2fM", x / 1e6);
  else if (x >= 1e3)
    snprintf(b, sizeof b, "%.1fk", x / 1e3);
  else
    snprintf(b, sizeof b, "%.0f", x);
  return b;
}

std::string NowUtcIso() {
  char b[32];
  time_t t = time(nullptr);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

}  // namespace lm
