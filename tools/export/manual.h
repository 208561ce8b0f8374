// manual.h: lm-export's --help text (manual.cpp).
#pragma once

namespace lm {

extern const char* const kExportSynopsis;
extern const char* const kExportManual;

}  // namespace lm
