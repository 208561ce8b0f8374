// manifest.h: a packed dataset's manifest.json (spec: docs/formats/manifest.md):
// the vocabulary, and every shard file with its split, size, counts and XXH3-64.
// Shards of a split, in manifest order, concatenated, are that split's tokens.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace lm {

constexpr int kManifestVersion = 1;
constexpr const char* kManifestName = "manifest.json";
constexpr const char* kManifestFormat = "lm-dataset";

struct ManifestShard {
  std::string file;   // a plain file name inside the dataset directory
  std::string split;  // "train" or "val"
  uint64_t bytes = 0, tokens = 0, documents = 0, blocks = 0;
  uint64_t hash = 0;   // XXH3-64 of the whole file
  int level = 0;       // zstd level, 0 = uncompressed
  std::string writer;  // the lm-pack run that wrote it (16 hex digits)
};

// One lm-pack run (a writer): how it split its input, for inspection and to
// restore the input's document order (lm-pack cat).
struct ManifestWriter {
  std::string id;  // 16 hex digits, as in ManifestShard::writer
  uint64_t seed = 0;
  double val_fraction = 0;
  int64_t val_docs = -1;         // -1 when the split used val_fraction
  uint64_t val_cut = 0;          // with val_fraction: longer documents were cut (0: none)
  uint64_t documents = 0;        // documents read from its input
  bool documents_known = false;  // "documents" was present (it is optional)
  std::string created;           // UTC time, ISO 8601
  std::string label;             // the caller's name for its input (lm-pack --label); may be empty
};

// What a split's shards add up to.
struct SplitTotals {
  uint64_t shards = 0, tokens = 0, documents = 0;  // documents: document table entries
};

struct Manifest {
  uint32_t vocab_size = 0;
  uint64_t vocab_id = 0;
  uint32_t eot_id = 0xffffffffu;
  int token_width = 2;
  std::vector<ManifestShard> shards;
  std::vector<ManifestWriter> writers;

  // Hash of the shard list (split and file hash of each, in order): names this
  // exact data (DatasetInfo::identity).
  uint64_t Identity() const;
  // The shards of each split (0 train, 1 val) added up, and all their bytes.
  void Totals(SplitTotals split[2], uint64_t* bytes) const;
};

// Parses and validates (version, types, file names, splits, hashes, duplicates).
// `name` prefixes errors.
Status ParseManifest(const std::string& json, const std::string& name, Manifest* m);
std::string SerializeManifest(const Manifest& m);
// DIR/manifest.json: read (NotFound when absent) and write (atomically).
Status ReadManifest(const std::string& dir, Manifest* m);
Status WriteManifest(const std::string& dir, const Manifest& m);
// True when `name` is a plain file name a manifest may list (no '/', no leading '.').
bool IsPlainFileName(const std::string& name);
// The writer id in a shard file name of lm-pack's form SPLIT-ID-NNNNNN.lms
// (SPLIT train or val, ID 16 lowercase hex digits, at least 6 decimal
// digits), or "" when the name has another form.
std::string WriterFromFileName(const std::string& name);

}  // namespace lm
