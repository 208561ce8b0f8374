// clean.h: removes what lm-pack writers that are gone (SIGKILL, power loss)
// left in a dataset directory (lm-pack clean).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "util/status.h"

namespace lm {

struct CleanReport {
  uint64_t files = 0, bytes = 0, writers = 0;  // removed (or, dry run, to remove)
  uint64_t live_files = 0, live_writers = 0;   // of writers still running: kept
  uint64_t other_files = 0;                    // *.lms not of lm-pack's form: kept
};

// Removes from DIR the shard files (SPLIT-ID-NNNNNN.lms and their .tmp) that
// the manifest does not list, of every writer ID whose lock file
// (.writer-ID.lock) is missing or not held, with that lock file; and stale
// manifest temporaries (under DIR/.lock). Files of running writers, and files
// not named by lm-pack, are never touched. `each` gets the name of every file
// removed (with dry_run: that would be; a dry run writes nothing, so it works
// on a read-only dataset) and its size. A directory without a manifest is
// cleaned the same way (a first writer killed before its commit). `waiting`,
// when set, is called before the clean blocks on DIR/.lock, held by a
// committing writer, with that lock's path.
Status CleanDataset(const std::string& dir, bool dry_run, CleanReport* rep,
                    const std::function<void(const std::string& name, uint64_t bytes)>& each,
                    const std::function<void(const std::string& lock_path)>& waiting = nullptr);

}  // namespace lm
