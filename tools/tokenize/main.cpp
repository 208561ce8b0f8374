// main.cpp (lm-tokenize): byte-level BPE: train, encode, decode, import,
// export, stats. The bare command (or one starting with an option or a file)
// means encode.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"
#include "util/cli.h"

namespace lm {
namespace {

const char kTopHelp[] =
    "Usage: lm-tokenize [COMMAND] [options] [FILE...]\n"
    "\n"
    "Byte-level BPE tokenizer of the lm pipeline.\n"
    "\n"
    "Commands:\n"
    "  encode    text -> token stream (the default when no command is named)\n"
    "  decode    token stream (or ids) -> text\n"
    "  train     learn a vocabulary from text\n"
    "  import    a tiktoken or GPT-2 vocabulary -> tok.bpe\n"
    "  export    tok.bpe -> Hugging Face tokenizer.json\n"
    "  stats     documents, bytes, tokens, bytes per token\n"
    "\n"
    "Run 'lm-tokenize COMMAND --help' for a command's options.\n"
    "\n"
    "EXAMPLES\n"
    "  lm-tokenize train --vocab-size 32768 -o tok.bpe corpus/*.txt\n"
    "  cat corpus/*.txt | lm-tokenize --vocab tok.bpe | lm-pack -o shards/\n"
    "  echo 'hello world' | lm-tokenize --vocab tok.bpe --ids\n"
    "\n"
    "EXIT STATUS\n"
    "  0 success, 1 bad input or runtime error, 2 usage error.\n";

Status Run(int argc, char** argv) {
  std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "--help" || cmd == "-h") {
    std::cout << kTopHelp;
    return Status::OK();
  }
  if (cmd == "--version") {
    std::cout << "lm-tokenize " << kVersion << "\n";
    return Status::OK();
  }
  // Subcommands see argv from their own name on.
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
