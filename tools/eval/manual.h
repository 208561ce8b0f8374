// manual.h: lm-eval's --help text (manual.cpp).
#pragma once

namespace lm {

extern const char* const kEvalSynopsis;
extern const char* const kEvalManual;

}  // namespace lm
