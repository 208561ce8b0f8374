// train.cpp (lm-tokenize train): learns a byte-level BPE vocabulary from text.
#include <omp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "documents.h"
#include "format/vocab.h"
#include "manual.h"
#include "text/pretokenize.h"
#include "text/train.h"
#include "util/cli.h"
#include "util/hash.h"
#include "util/progress.h"

namespace lm {

namespace {

struct TrainArgs {
  cli::Count vocab_size, min_frequency;
  std::string pattern = "gpt2", output;
  std::vector<std::string> specials, files;
  bool quiet = false;
  DocOptions docs;
};

void Declare(cli::Command* c, TrainArgs* o) {
  cli::Options add(c);
  add("vocab-size,n", &o->vocab_size, "N",
      "ids in the vocabulary, specials included (e.g. 32768; 32k is 32000)")
      .Check(cli::In(0, kVocabMaxTokens));
  add("pattern,p", &o->pattern, "NAME",
      "pre-tokenizer: gpt2, cl100k, o200k, none, or a PCRE2 regex")
      .Default("gpt2");
  add("special", &o->specials, "TOKEN",
      "another special token (repeatable); <|endoftext|> is always there");
  add("min-frequency", &o->min_frequency, "F", "stop merging when the best pair occurs fewer times")
      .Default(cli::Count(), "0");
  add("output,o", &o->output, "FILE", "the vocabulary file to write, required");
  add.Flag("quiet,q", &o->quiet, "no summary line");
  add("file", &o->files, "FILE...", "training text (default: stdin)");
  add.Positional("file", -1);
  DeclareDocOptions(c, &o->docs);
}

// The training options, or a usage error, before any text is read.
Status Validate(const cli::Command& c, const TrainArgs& a, TrainOptions* opt) {
  if (a.output.empty()) return Status::Usage("-o/--output is required");
  if (!c.Given("vocab-size")) return Status::Usage("--vocab-size is required");
  opt->vocab_size = (uint32_t)a.vocab_size.n;
  opt->min_frequency = a.min_frequency.n;
  if (a.pattern.empty())
    return Status::Usage("empty --pattern (a name: gpt2, cl100k, o200k, none; or a regex)");
  ParsePatternArg(a.pattern, &opt->pattern_kind, &opt->pattern);
  opt->specials = a.specials;
  for (auto& s : opt->specials)
    if (s.empty()) return Status::Usage("empty --special token");
  const uint32_t least = MinVocabSize(opt->specials);
  if (opt->vocab_size < least)
    return Status::Usage("--vocab-size " + std::to_string(opt->vocab_size) +
                         " is smaller than 256 bytes + " + std::to_string(least - 256) +
                         " special token(s)");
  return Status::OK();
}

// What would make train fail only at the end, after reading and merging the
// whole corpus: an input that cannot be opened, an output that is a
// directory or whose directory is missing or not writable. stat and access
// only: opening a FIFO here would disturb its writer.
Status CheckPaths(const std::vector<std::string>& files, const std::string& out) {
  struct stat st;
  for (const std::string& f : files) {
    if (f == "-") continue;
    if (stat(f.c_str(), &st) != 0 || access(f.c_str(), R_OK) != 0)
      return Status::FromErrno(f, "cannot open");
    if (S_ISDIR(st.st_mode)) return Status::Invalid(f + ": is a directory");
  }
  if (stat(out.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Status::Invalid(out + ": is a directory");
    if (!S_ISREG(st.st_mode)) return Status::OK();  // /dev/null, a FIFO: written in place
  }
  if (lstat(out.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) return Status::OK();
  size_t slash = out.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : out.substr(0, slash);
  if (access(dir.c_str(), W_OK | X_OK) != 0) return Status::FromErrno(out, "cannot create");
  return Status::OK();
}

// Stage 1: the chunks of every document counted, one counter per thread,
// merged into counters[0].
Status CountChunks(DocReader* reader, int threads,
                   std::vector<std::unique_ptr<ChunkCounter>>* counters) {
  std::vector<Piece> pieces;
  std::vector<Status> errs;
  Progress progress("counting", 0);
  bool done = false;
  while (!done) {
    pieces.clear();
    LM_RETURN_IF_ERROR(reader->Next((size_t)threads * (4 << 20), &pieces, &done));
    errs.assign(pieces.size(), Status::OK());
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (size_t i = 0; i < pieces.size(); i++)
      errs[i] = (*counters)[omp_get_thread_num()]
                    ->Add(pieces[i].text.data(), pieces[i].text.size())
                    .With(reader->SourceName(pieces[i].source));
    for (auto& s : errs) LM_RETURN_IF_ERROR(s);
    progress.Update(reader->bytes_read());
  }
  progress.Finish();
  for (int i = 1; i < threads; i++) (*counters)[0]->Merge((*counters)[i].get());
  return Status::OK();
}

}  // namespace

Status WriteVocabAndReport(const std::string& path, const VocabFile& f) {
  uint64_t id;
  LM_RETURN_IF_ERROR(WriteVocabFile(path, f, &id));
  size_t merges = 0, specials = 0;
  for (auto& t : f.tokens) {
    merges += t.kind == TokenKind::kMerge || t.kind == TokenKind::kLiteral;
    specials += t.kind == TokenKind::kSpecial;
  }
  LogInfo("wrote %s: %zu ids (%zu merges, %zu special), pattern %s, identity %s", path.c_str(),
          f.tokens.size(), merges, specials, PatternName(f.pattern_kind), HashHex(id).c_str());
  return Status::OK();
}

Status CmdTrain(int argc, char** argv) {
  cli::Command c;
  c.synopsis = kTrainSynopsis;
  c.manual = kTrainManual;
  TrainArgs a;
  Declare(&c, &a);
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&c, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  TrainOptions opt;
  LM_RETURN_IF_ERROR(Validate(c, a, &opt));
  SetQuiet(a.quiet);
  std::unique_ptr<Pretokenizer> pre;
  LM_RETURN_IF_ERROR(Pretokenizer::Create(opt.pattern_kind, opt.pattern, false, &pre));
  int threads = 1;
  LM_RETURN_IF_ERROR(cli::ResolveThreads(a.docs.threads, &threads));
  LM_RETURN_IF_ERROR(CheckPaths(a.files, a.output));
  DocMode mode;
  LM_RETURN_IF_ERROR(ResolveDocMode(c, a.docs, &mode));
  DocReader reader(a.files, mode, pre.get());
  std::vector<std::unique_ptr<ChunkCounter>> counters;
  for (int i = 0; i < threads; i++) counters.push_back(std::make_unique<ChunkCounter>(pre.get()));
  LM_RETURN_IF_ERROR(CountChunks(&reader, threads, &counters));
  const auto& counts = counters[0]->counts();

  // Stage 2: merges.
  const uint32_t specials = MinVocabSize(opt.specials) - 256;
  Progress merge_progress("merging", opt.vocab_size - 256 - specials, "merges");
  opt.progress = [&](uint32_t d, uint32_t) { merge_progress.Update(d); };
  VocabFile f;
  LM_RETURN_IF_ERROR(TrainBpe(counts, opt, &f));
  merge_progress.Finish();
  if (f.tokens.size() < opt.vocab_size)
    LogWarn("the data ran out of pairs%s: %zu ids instead of %u",
            opt.min_frequency ? " (or of pairs above --min-frequency)" : "", f.tokens.size(),
            opt.vocab_size);
  LogInfo("%llu bytes, %zu distinct chunks", (unsigned long long)counters[0]->bytes(),
          counts.size());
  return WriteVocabAndReport(a.output, f);
}

}  // namespace lm
