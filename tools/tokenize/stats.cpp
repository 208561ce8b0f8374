// stats.cpp (lm-tokenize stats): documents, bytes, tokens and bytes per token
// of the input.
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "documents.h"
#include "manual.h"
#include "pipeline.h"
#include "text/vocab.h"
#include "util/cli.h"

namespace lm {

Status CmdStats(int argc, char** argv) {
  cli::Command c;
  c.synopsis = kStatsSynopsis;
  c.manual = kStatsManual;
  std::string vocab_path;
  std::vector<std::string> files;
  DocOptions docs;
  cli::Options add(&c);
  add("vocab,v", &vocab_path, "FILE", "the vocabulary (tok.bpe), required");
  add("file", &files, "FILE...", "input files (default: stdin)");
  add.Positional("file", -1);
  DeclareDocOptions(&c, &docs);
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&c, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  if (vocab_path.empty()) return Status::Usage("--vocab is required");
  DocMode mode;
  LM_RETURN_IF_ERROR(ResolveDocMode(c, docs, &mode));
  Vocab vocab;
  LM_RETURN_IF_ERROR(Vocab::Load(vocab_path, &vocab));
  DocReader reader(files, mode, &vocab.pretokenizer());
  uint64_t ndocs = 0, bytes = 0, tokens = 0;
  int threads = 1;
  LM_RETURN_IF_ERROR(cli::ResolveThreads(docs.threads, &threads));
  LM_RETURN_IF_ERROR(EncodeAll(
      vocab, &reader, threads, false, false, nullptr,
      [&](const Piece& p, const std::vector<uint32_t>& ids) {
        ndocs += p.doc_end;
        bytes += p.text.size();
        tokens += ids.size();
        return Status::OK();
      },
      [] { return Status::OK(); }));
  printf("documents %llu\nbytes %llu\ntokens %llu\nbytes_per_token %.4f\n",
         (unsigned long long)ndocs, (unsigned long long)bytes, (unsigned long long)tokens,
         tokens ? (double)bytes / (double)tokens : 0.0);
  return Status::OK();
}

}  // namespace lm
