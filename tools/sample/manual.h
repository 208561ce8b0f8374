// manual.h: lm-sample's --help text (manual.cpp).
#pragma once

namespace lm {

extern const char* const kSampleSynopsis;
extern const char* const kSampleManual;

}  // namespace lm
