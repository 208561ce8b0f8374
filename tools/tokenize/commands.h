// commands.h (lm-tokenize): one function per command, each in its own file;
// argv[0] is the command's name.
#pragma once

#include <string>

#include "format/vocab.h"
#include "util/status.h"

namespace lm {

Status CmdEncode(int argc, char** argv);  // encode.cpp
Status CmdDecode(int argc, char** argv);  // decode.cpp
Status CmdStats(int argc, char** argv);   // stats.cpp
Status CmdTrain(int argc, char** argv);   // train.cpp
Status CmdImport(int argc, char** argv);  // import.cpp
Status CmdExport(int argc, char** argv);  // export.cpp

// Writes the vocabulary file and says on stderr what it holds (train, import).
Status WriteVocabAndReport(const std::string& path, const VocabFile& f);

}  // namespace lm
