// documents.h (lm-tokenize): reads input files as documents, in pieces small enough
// to spread over threads. A piece ends a document or stops at a point where
// the pre-tokenizer's chunks do not change (Pretokenizer::SafeSplit), so that
// encoding pieces separately gives exactly the ids of the whole.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "text/pretokenize.h"
#include "util/cli.h"
#include "util/status.h"

namespace lm {

struct DocMode {
  enum Kind { kFile, kDelim, kLines, kParagraphs, kJsonl } kind = kFile;
  std::string delim;  // kDelim
  std::string field;  // kJsonl
};

// The options that say how input becomes documents, and -j: shared by
// encode, stats and train.
struct DocOptions {
  std::string delim, jsonl;
  bool lines = false, paragraphs = false;
  int threads = 0;
};
void DeclareDocOptions(cli::Command* c, DocOptions* o);
// The mode they ask for; a usage error when they exclude one another.
Status ResolveDocMode(const cli::Command& c, const DocOptions& o, DocMode* m);

struct Piece {
  std::string text;
  bool doc_end = false;
  uint32_t source = 0;  // the input it came from: DocReader::SourceName(source)
};

class DocReader {
 public:
  // files empty or "-" means stdin. `pre` may be null (no splitting inside a document).
  DocReader(std::vector<std::string> files, DocMode mode, const Pretokenizer* pre,
            size_t piece_bytes = 1 << 20)
      : files_(std::move(files)), mode_(std::move(mode)), pre_(pre), piece_bytes_(piece_bytes) {
    if (files_.empty()) files_.push_back("-");
  }
  ~DocReader();
  // Appends pieces until about max_bytes are gathered or the input ends
  // (*done). An input file that holds no document is an error naming it.
  Status Next(size_t max_bytes, std::vector<Piece>* out, bool* done);
  uint64_t bytes_read() const { return bytes_read_; }
  // The name of input i, for errors ("<stdin>" for "-").
  std::string SourceName(uint32_t i) const {
    return i < files_.size() && files_[i] != "-" ? files_[i] : "<stdin>";
  }
  // Whether the last Next stopped because the input had nothing more for now
  // (a pipe waiting on its writer), rather than on max_bytes or at the end.
  bool idle() const { return idle_; }
  // Texts that a piece boundary inside a document must not cut (the special
  // tokens, when they are encoded as such: --allow-special).
  void KeepWhole(const std::vector<std::string>& texts);

 private:
  Status OpenNext(bool* none_left);
  Status Fill(bool* eof);
  Status Extract(bool eof, std::vector<Piece>* out, size_t* got);
  Status ExtractParagraphs(bool eof, std::vector<Piece>* out, size_t* got);
  Status EmitPieces(size_t n, std::vector<Piece>* out, size_t* got);
  Status Emit(const char* p, size_t n, bool doc_end, std::vector<Piece>* out, size_t* got);
  bool CutsKept(const char* p, size_t n, size_t at) const;

  std::vector<std::string> files_;
  DocMode mode_;
  const Pretokenizer* pre_;
  size_t piece_bytes_;
  size_t next_file_ = 0;
  int fd_ = -1;
  std::string name_;
  std::string buf_;
  size_t start_ = 0;
  uint64_t file_bytes_ = 0, line_ = 0;
  bool file_had_doc_ = false, in_doc_ = false, short_read_ = false, idle_ = false;
  bool regular_ = false;    // fd_ is a regular file
  uint64_t file_size_ = 0;  // its size when opened
  uint64_t bytes_read_ = 0;
  std::vector<std::string> keep_;  // KeepWhole's texts that could straddle a cut
};

}  // namespace lm
