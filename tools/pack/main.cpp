// main.cpp (lm-pack): packs token streams into a dataset of compressed,
// checksummed shards (docs/formats/shard.md, manifest.md), and verifies,
// inspects, unpacks and cleans such datasets: one file per command
// (commands.h). The bare command (or one starting with an option or a
// file) packs.
#include <string>

#include "commands.h"
#include "util/cli.h"

namespace lm {
namespace {

Status Run(int argc, char** argv) {
  if (argc >= 2) {
    const std::string cmd = argv[1];
    if (cmd == "verify") return RunVerify(argc - 1, argv + 1);
    if (cmd == "inspect") return RunInspect(argc - 1, argv + 1);
    if (cmd == "cat") return RunCat(argc - 1, argv + 1);
    if (cmd == "clean") return RunClean(argc - 1, argv + 1);
  }
  return RunPack(argc, argv);
}

}  // namespace
}  // namespace lm

int main(int argc, char** argv) {
  return lm::cli::Main("lm-pack", argc, argv, lm::Run);
}
