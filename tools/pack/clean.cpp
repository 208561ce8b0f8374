// clean.cpp: lm-pack clean: removes what killed writers left in a dataset.
#include <cinttypes>
#include <cstdio>
#include <string>

#include "commands.h"
#include "data/clean.h"
#include "util/cli.h"
#include "util/file.h"
#include "util/progress.h"

namespace lm {

std::string Count(uint64_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

Status RunClean(int argc, char** argv) {
  cli::Command cmd;
  cmd.synopsis = "lm-pack clean DIR [-n] [-q]";
  cmd.manual = R"(DESCRIPTION
  Removes from the dataset directory DIR the files that lm-pack writers which
  are gone left behind: a writer killed with SIGKILL, or by a power loss,
  cannot remove its shard files, and lm-pack verify warns about them. They are
  never part of the dataset (only the manifest says what is), but they take
  disk space.

  Removed: shard files of lm-pack's form (SPLIT-ID-NNNNNN.lms, and their
  .SPLIT-ID-NNNNNN.lms.tmp temporaries) that the manifest does not list, of
  writers that are no longer running, with their .writer-ID.lock files; and
  temporaries of manifest.json. A running writer holds the lock of its
  .writer-ID.lock from its start to its end, so its files are left alone:
  clean is safe to run at any time, even while lm-pack --append runs. It
  holds DIR/.lock meanwhile, so no writer commits during the clean.

  Never removed: anything the manifest lists, files lm-pack does not name so
  (other *.lms files are counted in the summary), and the manifest itself. A
  manifest that cannot be read is an error, and nothing is removed.

  Prints the name of each file removed on stdout, one per line, and a summary
  on stderr (unless -q).

OPTIONS
  -n, --dry-run    print what would be removed, remove nothing
  -q, --quiet      no summary on stderr

EXIT STATUS
  0 success (also when there was nothing to remove); 1 DIR or its manifest
  cannot be read, or a file cannot be removed; 2 usage error.

EXAMPLES
  lm-pack clean -n shards/
  lm-pack verify shards/ && lm-pack clean shards/
)";
  std::string dir;
  cmd.options.add_options()("dir", cli::po::value(&dir)->value_name("DIR"),
                            "the dataset directory")(
      "dry-run,n", "print what would be removed, remove nothing")("quiet,q",
                                                                  "no summary on stderr");
  cmd.positional.add("dir", 1);
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&cmd, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  if (dir.empty()) return Status::Usage("lm-pack clean: no dataset directory");
  if (cmd.vm.count("quiet")) SetQuiet(true);
  bool dry = cmd.vm.count("dry-run") > 0;
  CleanReport rep;
  Status write;
  LM_RETURN_IF_ERROR(CleanDataset(dir, dry, &rep, [&](const std::string& name, uint64_t) {
    if (printf("%s\n", JoinPath(dir, name).c_str()) < 0 && write.ok())
      write = Status::FromErrno("<stdout>", "write failed");
  }));
  if (fflush(stdout) != 0 && write.ok()) write = Status::FromErrno("<stdout>", "write failed");
  LM_RETURN_IF_ERROR(write);
  LogInfo("%s: %s %s (%" PRIu64 " bytes) of %s that %s gone%s", dir.c_str(),
          dry ? "would remove" : "removed", Count(rep.files, "file").c_str(), rep.bytes,
          Count(rep.writers, "writer").c_str(), rep.writers == 1 ? "is" : "are",
          dry ? " (dry run)" : "");
  if (rep.live_writers > 0)
    LogInfo("%s: kept %s of %s still running", dir.c_str(), Count(rep.live_files, "file").c_str(),
            Count(rep.live_writers, "writer").c_str());
  if (rep.other_files > 0)
    LogInfo("%s: kept %s not in the manifest and not named by lm-pack", dir.c_str(),
            Count(rep.other_files, ".lms file").c_str());
  return Status::OK();
}

}  // namespace lm
