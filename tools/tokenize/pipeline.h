// pipeline.h (lm-tokenize): what the commands share between their input and
// their output: Output (stdout, or -o FILE written atomically) and EncodeAll
// (documents encoded over threads, handed on in input order).
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "documents.h"
#include "text/vocab.h"
#include "util/file.h"
#include "util/progress.h"
#include "util/status.h"

namespace lm {

// Where a command's data goes: stdout, or -o FILE written atomically (a
// temporary renamed into place only when everything succeeded).
class Output {
 public:
  // Writes to `path` when `to_file` (-o was given), else to stdout.
  Status Open(bool to_file, const std::string& path);
  ~Output();
  FILE* f() const { return f_ ? f_ : stdout; }
  const std::string& name() const { return name_; }
  bool to_stdout() const { return f_ == nullptr; }
  // Flushes and, for -o FILE, renames the temporary into place.
  Status Commit();

 private:
  std::string name_ = "<stdout>";
  AtomicFile file_;
  FILE* f_ = nullptr;
};

// Called in input order with each piece and its ids.
using PieceSink = std::function<Status(const Piece& piece, const std::vector<uint32_t>& ids)>;
// Called when the input pauses (a pipe waiting on its writer), so that what
// was written so far reaches the reader.
using FlushFn = std::function<Status()>;

// Encodes the reader's pieces on `threads` threads, ending each document with
// <|endoftext|> when `eot`, and hands them to `sink` in input order. With
// several threads, reading the next batch and writing the previous one
// overlap the encoding of the current one. `progress` may be null.
Status EncodeAll(const Vocab& vocab, DocReader* reader, int threads, bool allow_special, bool eot,
                 Progress* progress, const PieceSink& sink, const FlushFn& flush);

}  // namespace lm
