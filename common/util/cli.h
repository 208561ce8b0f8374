// cli.h: what every tool's main shares (docs/cli.md): Boost.ProgramOptions
// parsing with --help/--version, Status-to-exit-code mapping, value parsers.
//
//   int main(int argc, char** argv) {
//     return lm::cli::Main("lm-pack", argc, argv, Run);  // Run returns Status
//   }
#pragma once

#include <boost/program_options.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "util/status.h"

namespace lm {

extern const char* const kVersion;  // "0.1.0"

namespace cli {

namespace po = boost::program_options;

// Exit codes (docs/cli.md).
constexpr int kExitOk = 0;
constexpr int kExitError = 1;  // bad input or runtime error
constexpr int kExitUsage = 2;  // bad command line

// The running tool's name, for messages ("lm-tokenize").
const std::string& ToolName();

// Runs `fn`, prints a failed Status as "TOOL: error: MESSAGE" on one line, and
// returns the exit code. Exceptions (bad_alloc, boost errors) are caught and
// reported the same way. Installs the temp-file cleanup signal handlers unless
// install_cleanup is false.
int Main(const char* tool, int argc, char** argv, const std::function<Status(int, char**)>& fn,
         bool install_cleanup = true);

// A command's options. `synopsis` and `manual` are printed by --help, around the
// option table; the manual is man-page prose (DESCRIPTION, EXAMPLES, EXIT STATUS).
struct Command {
  std::string synopsis;  // "lm-pack -o DIR [options] [STREAM...]"
  std::string manual;
  po::options_description options{"Options", 100};
  po::positional_options_description positional;
  po::variables_map vm;
};

// Parses argv into cmd->vm, adding --help and --version. Returns a Usage status
// on unknown or malformed options. Sets *exit_now when --help or --version was
// printed (the caller returns OK).
Status Parse(Command* cmd, int argc, char** argv, bool* exit_now);

// "24h", "90m", "3600s", "1h30m", "45" (seconds), "1.5h" -> seconds.
Status ParseDuration(const std::string& s, double* seconds);
// "1000", "10k", "2M", "1G", "1e6" -> count (k = 1000, M = 1e6, G = 1e9).
Status ParseCount(const std::string& s, uint64_t* n);
// "\n%\n" style escapes: \n \t \r \0 \\ \xHH.
Status Unescape(const std::string& s, std::string* out);

// Threads for -j / --threads: 0 means every online core, and more than the
// cores is capped to them (more threads only add memory and contention, and
// the OpenMP runtime crashes when it cannot create them). Negative is a usage
// error.
Status ResolveThreads(int j, int* threads);

}  // namespace cli
}  // namespace lm
