// manual.h (lm-pack): the --help text of each command (manual.cpp): a
// synopsis and a man-page manual (DESCRIPTION, EXAMPLES, EXIT STATUS) around
// the option table.
#pragma once

namespace lm {

extern const char* const kPackSynopsis;
extern const char* const kPackManual;
extern const char* const kVerifySynopsis;
extern const char* const kVerifyManual;
extern const char* const kInspectSynopsis;
extern const char* const kInspectManual;
extern const char* const kCatSynopsis;
extern const char* const kCatManual;
extern const char* const kCleanSynopsis;
extern const char* const kCleanManual;

}  // namespace lm
