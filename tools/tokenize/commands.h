// commands.h (lm-tokenize): one function per subcommand; argv[0] is the
// subcommand's name.
#pragma once

#include "util/status.h"

namespace lm {

Status CmdEncode(int argc, char** argv);
Status CmdDecode(int argc, char** argv);
Status CmdStats(int argc, char** argv);
Status CmdTrain(int argc, char** argv);
Status CmdImport(int argc, char** argv);
Status CmdExport(int argc, char** argv);

}  // namespace lm
