// manual.h: lm-train's --help text (manual.cpp).
#pragma once

namespace lm {

extern const char* const kTrainSynopsis;
extern const char* const kTrainManual;

}  // namespace lm
