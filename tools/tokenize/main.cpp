// main.cpp (lm-tokenize): byte-level BPE: train, encode, decode, import,
// export, stats, one file each (commands.h). The bare command (or one
// starting with an option or a file) means encode.
#include <unistd.h>

#include <iostream>
#include <string>

#include "commands.h"
#include "manual.h"
#include "util/cli.h"

namespace lm {
namespace {

Status Run(int argc, char** argv) {
  std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "--help" || cmd == "-h") {
    std::cout << kTokenizeHelp;
    return Status::OK();
  }
  if (cmd == "--version") {
    std::cout << "lm-tokenize " << kVersion << "\n";
    return Status::OK();
  }
  // Commands see argv from their own name on.
  if (cmd == "encode") return CmdEncode(argc - 1, argv + 1);
  if (cmd == "decode") return CmdDecode(argc - 1, argv + 1);
  if (cmd == "train") return CmdTrain(argc - 1, argv + 1);
  if (cmd == "import") return CmdImport(argc - 1, argv + 1);
  if (cmd == "export") return CmdExport(argc - 1, argv + 1);
  if (cmd == "stats") return CmdStats(argc - 1, argv + 1);
  if (argc > 1 && argv[1][0] != '-' && access(argv[1], F_OK) != 0)
    return Status::Usage("unknown command '" + cmd +
                         "' (expected encode, decode, train, import, export or stats)");
  return CmdEncode(argc, argv);
}

}  // namespace
}  // namespace lm

int main(int argc, char** argv) {
  return lm::cli::Main("lm-tokenize", argc, argv, lm::Run);
}
