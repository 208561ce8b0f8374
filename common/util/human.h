// human.h: numbers, sizes, durations and dates written for people (log lines,
// error messages, JSON records).
#pragma once

#include <cstdint>
#include <string>

namespace lm {

// "1.25 GiB".
std::string FormatGib(double bytes);
// "2h05m", "3m07s", "42s"; "?" for a negative or non-finite value.
std::string FormatDuration(double seconds);
// "1.23M", "45.6k", "789".
std::string FormatRate(double per_second);
// The current time in UTC, ISO 8601 to the second: "2026-12-07T18:04:05Z".
std::string NowUtcIso();

}  // namespace lm
