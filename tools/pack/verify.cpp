// verify.cpp (lm-pack verify): checks every checksum and count of a dataset.
#include <cinttypes>
#include <cstdio>
#include <string>

#include "commands.h"
#include "data/clean.h"
#include "data/verify.h"
#include "format/manifest.h"
#include "manual.h"
#include "util/cli.h"
#include "util/progress.h"

namespace lm {

namespace {

// Files a killed writer (SIGKILL, power loss) left: not an error, the
// dataset is what the manifest says, but worth knowing. A dry run of clean
// finds them without writing anything.
void WarnLeftovers(const std::string& dir) {
  CleanReport left;
  if (!CleanDataset(dir, /*dry_run=*/true, &left, nullptr).ok()) return;
  if (left.files > 0)
    LogWarn("%s: %s (%" PRIu64
            " bytes) not in the manifest, left by killed lm-pack runs: lm-pack clean removes "
            "them",
            dir.c_str(), Count(left.files, "file").c_str(), left.bytes);
  if (left.other_files > 0)
    LogWarn("%s: %s not in the manifest and not named by lm-pack", dir.c_str(),
            Count(left.other_files, ".lms file").c_str());
}

}  // namespace

Status RunVerify(int argc, char** argv) {
  cli::Command cmd;
  cmd.synopsis = kVerifySynopsis;
  cmd.manual = kVerifyManual;
  std::string dir;
  cli::Options add(&cmd);
  add("dir", &dir, "DIR", "the dataset directory");
  add.Positional("dir", 1);
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&cmd, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  if (dir.empty()) return Status::Usage("lm-pack verify: no dataset directory");
  Manifest m;
  LM_RETURN_IF_ERROR(ReadManifest(dir, &m));
  uint64_t total = 0;
  for (const ManifestShard& e : m.shards) total += e.bytes;
  Progress progress("verify", total, "B");
  VerifyReport rep;
  LM_RETURN_IF_ERROR(VerifyDataset(dir, &rep, [&](uint64_t done) { progress.Update(done); }));
  progress.Finish();
  WarnLeftovers(dir);
  printf("%s: OK: %" PRIu64 " shards, %" PRIu64 " tokens, %" PRIu64 " documents, %" PRIu64
         " bytes\n",
         dir.c_str(), rep.shards, rep.tokens, rep.documents, rep.bytes);
  return Status::OK();
}

}  // namespace lm
