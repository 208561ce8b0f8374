// inspect.cpp (lm-pack inspect): what a dataset holds, from its manifest.
#include <cinttypes>
#include <cstdio>
#include <string>

#include "commands.h"
#include "format/manifest.h"
#include "format/tokens.h"
#include "manual.h"
#include "util/cli.h"
#include "util/hash.h"

namespace lm {

namespace {

std::string U128ToString(unsigned __int128 v) {
  std::string s;
  do {
    s.insert(s.begin(), (char)('0' + (int)(v % 10)));
    v /= 10;
  } while (v != 0);
  return s;
}

void PrintShards(const Manifest& m) {
  printf("%6s %-5s %12s %9s %7s %12s %5s %6s  %s\n", "#", "split", "tokens", "documents", "blocks",
         "bytes", "level", "ratio", "file");
  for (size_t i = 0; i < m.shards.size(); i++) {
    const ManifestShard& e = m.shards[i];
    printf("%6zu %-5s %12" PRIu64 " %9" PRIu64 " %7" PRIu64 " %12" PRIu64 " %5d %6.3f  %s\n", i,
           e.split.c_str(), e.tokens, e.documents, e.blocks, e.bytes, e.level,
           e.bytes ? (double)e.tokens * m.token_width / e.bytes : 0.0, e.file.c_str());
  }
}

// The documents of the writers' inputs, when every shard's writer recorded
// how many it read: a document cut between the splits (manifest.md) has an
// entry in each. Else the entries, `entries`.
uint64_t InputDocuments(const Manifest& m, uint64_t entries) {
  uint64_t n = 0;
  for (const ManifestShard& e : m.shards) {
    bool known = false;
    for (const ManifestWriter& w : m.writers) known |= w.id == e.writer && w.documents_known;
    if (!known) return entries;
  }
  for (const ManifestWriter& w : m.writers) n += w.documents;
  return n;
}

void PrintSummary(const std::string& dir, const Manifest& m) {
  SplitTotals t[2];
  uint64_t bytes;
  m.Totals(t, &bytes);
  // The parser keeps each split's tokens and all bytes under 2^63; the raw
  // size of both splits may still pass 2^64 in a forged but consistent manifest.
  unsigned __int128 raw = ((unsigned __int128)t[0].tokens + t[1].tokens) * (unsigned)m.token_width;
  printf("dataset:      %s (manifest version %d)\n", dir.c_str(), kManifestVersion);
  printf("vocabulary:   %u ids, identity %s, end-of-text %s, %d-bit tokens\n", m.vocab_size,
         HashHex(m.vocab_id).c_str(), EotName(m.eot_id).c_str(), m.token_width * 8);
  const double all = (double)t[0].tokens + (double)t[1].tokens;
  for (int k = 0; k < 2; k++)
    printf("%-13s %" PRIu64 " tokens, %" PRIu64 " documents, %" PRIu64
           " shards, %.2f%% of the tokens\n",
           k ? "val:" : "train:", t[k].tokens, t[k].documents, t[k].shards,
           all > 0 ? 100 * t[k].tokens / all : 0.0);
  printf("total:        %" PRIu64 " tokens, %" PRIu64 " documents\n", t[0].tokens + t[1].tokens,
         InputDocuments(m, t[0].documents + t[1].documents));
  printf("size:         %" PRIu64 " bytes on disk, %s bytes as raw tokens: ratio %.3f\n", bytes,
         U128ToString(raw).c_str(), bytes ? (double)raw / bytes : 0.0);
  printf("identity:     %s\n", HashHex(m.Identity()).c_str());
  printf("writers:      %zu\n", m.writers.size());
}

}  // namespace

Status RunInspect(int argc, char** argv) {
  cli::Command cmd;
  cmd.synopsis = kInspectSynopsis;
  cmd.manual = kInspectManual;
  std::string dir;
  bool json = false, labels = false;
  cli::Options add(&cmd);
  add("dir", &dir, "DIR", "the dataset directory");
  add.Flag("json", &json, "print the manifest (JSON) instead");
  add.Flag("labels", &labels, "print the runs' --label values instead, one per line");
  add.Positional("dir", 1);
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&cmd, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  if (dir.empty()) return Status::Usage("lm-pack inspect: no dataset directory");
  Manifest m;
  LM_RETURN_IF_ERROR(ReadManifest(dir, &m));
  if (json && labels)
    return Status::Usage("lm-pack inspect: --json and --labels exclude each other");
  if (json) {
    fputs(SerializeManifest(m).c_str(), stdout);
    return Status::OK();
  }
  if (labels) {
    for (const ManifestWriter& w : m.writers)
      if (!w.label.empty()) printf("%s\n", w.label.c_str());
    return Status::OK();
  }
  PrintSummary(dir, m);
  PrintShards(m);
  return Status::OK();
}

}  // namespace lm
