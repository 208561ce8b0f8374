// clean.cpp: lm-pack clean: removes what killed writers left in a dataset.
#include <cinttypes>
#include <cstdio>
#include <string>

#include "commands.h"
#include "data/clean.h"
#include "manual.h"
#include "util/cli.h"
#include "util/file.h"
#include "util/progress.h"

namespace lm {

Status RunClean(int argc, char** argv) {
  cli::Command cmd;
  cmd.synopsis = kCleanSynopsis;
  cmd.manual = kCleanManual;
  std::string dir;
  bool dry = false, quiet = false;
  cli::Options add(&cmd);
  add("dir", &dir, "DIR", "the dataset directory");
  add.Flag("dry-run,n", &dry, "print what would be removed, remove nothing");
  add.Flag("quiet,q", &quiet, "no summary on stderr");
  add.Positional("dir", 1);
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&cmd, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  if (dir.empty()) return Status::Usage("lm-pack clean: no dataset directory");
  SetQuiet(quiet);
  CleanReport rep;
  Status write;
  LM_RETURN_IF_ERROR(CleanDataset(
      dir, dry, &rep,
      [&](const std::string& name, uint64_t) {
        if (printf("%s\n", JoinPath(dir, name).c_str()) < 0 && write.ok())
          write = Status::FromErrno("<stdout>", "write failed");
      },
      [](const std::string& lock) { SayWaiting(lock, "an lm-pack is committing"); }));
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
