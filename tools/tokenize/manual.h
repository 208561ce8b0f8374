// manual.h (lm-tokenize): the --help text of the tool and of each command
// (manual.cpp): a synopsis line and a man-page manual (DESCRIPTION,
// EXAMPLES, EXIT STATUS) around the option table.
#pragma once

namespace lm {

extern const char* const kTokenizeHelp;  // lm-tokenize --help: the commands

extern const char* const kEncodeSynopsis;
extern const char* const kEncodeManual;
extern const char* const kDecodeSynopsis;
extern const char* const kDecodeManual;
extern const char* const kStatsSynopsis;
extern const char* const kStatsManual;
extern const char* const kTrainSynopsis;
extern const char* const kTrainManual;
extern const char* const kImportSynopsis;
extern const char* const kImportManual;
extern const char* const kExportSynopsis;
extern const char* const kExportManual;

}  // namespace lm
