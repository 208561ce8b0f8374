// verify.h: whole-dataset checks for `lm-pack verify` and the cross-check of a
// shard against its manifest entry that every reader of a dataset makes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "format/manifest.h"
#include "format/shard.h"
#include "util/status.h"

namespace lm {

// The cheap check of a shard a manifest lists, before it is opened: DIR/file
// exists (symbolic links are followed), is a regular file and has the
// manifest's size. A stat, no read.
Status CheckShardFile(const std::string& dir, const ManifestShard& e);

// A shard's header must agree with its manifest entry and the manifest's
// vocabulary (tokens, documents, blocks, size, compression, vocabulary), and
// its document numbers be below its writer's document count (when m.writers
// has its writer with that count).
Status CheckShardMatchesManifest(const ShardReader& r, const ManifestShard& e, const Manifest& m);

struct VerifyReport {
  uint64_t shards = 0, tokens = 0, documents = 0, bytes = 0, raw_bytes = 0;
};

// Checks every shard of DIR: present, of the manifest's size, header and index
// checksums, every block's checksum and size, every token inside the
// vocabulary, the document table against the end-of-text tokens (a train
// entry that ends without one, of a writer with val_cut, must be the head of
// a document whose tail that writer's val split holds), and the whole file's
// XXH3-64 against the manifest. Stops at the first problem, whose
// message names the shard file (and block). `progress` (may be empty) is told
// the bytes checked so far.
Status VerifyDataset(const std::string& dir, VerifyReport* report,
                     const std::function<void(uint64_t)>& progress = nullptr);

}  // namespace lm
