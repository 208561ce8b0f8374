// train.cpp (lm-tokenize): train, import and export.
#include <omp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "docs.h"
#include "format/vocab.h"
#include "text/export.h"
#include "text/import.h"
#include "text/pretokenize.h"
#include "text/train.h"
#include "text/vocab.h"
#include "util/cli.h"
#include "util/file.h"
#include "util/hash.h"
#include "util/progress.h"

namespace lm {

namespace {

Status SpecialArgs(const cli::Command& c, std::vector<SpecialArg>* out) {
  if (!c.vm.count("special")) return Status::OK();
  for (const std::string& s : c.vm["special"].as<std::vector<std::string>>()) {
    SpecialArg a;
    LM_RETURN_IF_ERROR(ParseSpecialArg(s, &a));
    for (const SpecialArg& b : *out) {
      if (b.text == a.text) return Status::Usage("--special '" + a.text + "' given twice");
      if (a.id != Vocab::kNoId && b.id == a.id)
        return Status::Usage("--special: id " + std::to_string(a.id) + " given twice");
    }
    out->push_back(a);
  }
  return Status::OK();
}

Status WriteAndReport(const std::string& path, const VocabFile& f) {
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

}  // namespace

Status CmdTrain(int argc, char** argv) {
  cli::Command c;
  c.synopsis =
      "lm-tokenize train --vocab-size N [--pattern gpt2|cl100k|o200k|none|REGEX] [--special "
      "TOKEN]... "
      "[--min-frequency F] [--doc-delim STR | --lines | --jsonl FIELD] [-j N] -o tok.bpe [FILE...]";
  c.options.add_options()("vocab-size,n", cli::po::value<std::string>()->value_name("N"),
                          "ids in the vocabulary, specials included (e.g. 32768; 32k is 32000)")(
      "pattern,p", cli::po::value<std::string>()->value_name("NAME")->default_value("gpt2"),
      "pre-tokenizer: gpt2, cl100k, o200k, none, or a PCRE2 regex")(
      "special", cli::po::value<std::vector<std::string>>()->value_name("TOKEN"),
      "another special token (repeatable); <|endoftext|> is always there")(
      "min-frequency", cli::po::value<std::string>()->value_name("F")->default_value("0"),
      "stop merging when the best pair occurs fewer times")(
      "output,o", cli::po::value<std::string>()->value_name("FILE"),
      "the vocabulary file to write, required")(

      "quiet,q", "no summary line")(
      "file", cli::po::value<std::vector<std::string>>()->value_name("FILE..."),
      "training text (default: stdin)");
  AddDocOptions(&c);
  c.positional.add("file", -1);
  c.manual =
      "DESCRIPTION\n"
      "  Learns a byte-level BPE vocabulary: ids 0..255 are the bytes, then the\n"
      "  merges in the order learned, then <|endoftext|> and the --special tokens.\n"
      "  Text is cut by the pattern, distinct chunks are counted (memory grows with\n"
      "  their number, not with the input), then the most frequent pair is merged\n"
      "  until the vocabulary is full. Ties go to the smallest (left id, right id),\n"
      "  so the result is the same for any -j. Each file is one document unless\n"
      "  --doc-delim, --lines or --jsonl cut it (as for encode); chunks never span\n"
      "  documents. Chunks over 1,024 bytes (with --pattern none, a whole document)\n"
      "  are counted as 1,024-byte slices.\n"
      "\nEXAMPLES\n"
      "  lm-tokenize train --vocab-size 32768 -o tok.bpe corpus/*.txt\n"
      "  cat corpus/*.txt | lm-tokenize train -n 8k --pattern cl100k --special '<|pad|>' -o "
      "tok.bpe\n"
      "\nEXIT STATUS\n  0 success, 1 bad input or runtime error, 2 usage error.\n";
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&c, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  if (!c.vm.count("output") || c.vm["output"].as<std::string>().empty())
    return Status::Usage("-o/--output is required");
  if (!c.vm.count("vocab-size")) return Status::Usage("--vocab-size is required");
  if (c.vm.count("quiet")) SetQuiet(true);
  uint64_t vs, minf;
  LM_RETURN_IF_ERROR(
      cli::ParseCount(c.vm["vocab-size"].as<std::string>(), &vs).With("--vocab-size"));
  LM_RETURN_IF_ERROR(
      cli::ParseCount(c.vm["min-frequency"].as<std::string>(), &minf).With("--min-frequency"));
  if (vs > kVocabMaxTokens)
    return Status::Usage("--vocab-size above " + std::to_string(kVocabMaxTokens));
  TrainOptions opt;
  opt.vocab_size = (uint32_t)vs;
  opt.min_frequency = minf;
  if (c.vm["pattern"].as<std::string>().empty())
    return Status::Usage("empty --pattern (a name: gpt2, cl100k, o200k, none; or a regex)");
  ParsePatternArg(c.vm["pattern"].as<std::string>(), &opt.pattern_kind, &opt.pattern);
  if (c.vm.count("special")) opt.specials = c.vm["special"].as<std::vector<std::string>>();
  for (auto& s : opt.specials)
    if (s.empty()) return Status::Usage("empty --special token");
  uint32_t nspecial = 1;
  for (auto& s : opt.specials) nspecial += s != "<|endoftext|>";
  if (opt.vocab_size < 256 + nspecial)
    return Status::Usage("--vocab-size " + std::to_string(opt.vocab_size) +
                         " is smaller than 256 bytes + " + std::to_string(nspecial) +
                         " special token(s)");
  std::unique_ptr<Pretokenizer> pre;
  LM_RETURN_IF_ERROR(Pretokenizer::Create(opt.pattern_kind, opt.pattern, false, &pre));
  int threads = 1;
  LM_RETURN_IF_ERROR(cli::ResolveThreads(c.vm["threads"].as<int>(), &threads));
  std::vector<std::string> files;
  if (c.vm.count("file")) files = c.vm["file"].as<std::vector<std::string>>();
  LM_RETURN_IF_ERROR(CheckPaths(files, c.vm["output"].as<std::string>()));

  // Stage 1: count chunks, one counter per thread.
  DocMode mode;
  LM_RETURN_IF_ERROR(GetDocMode(c, &mode));
  DocReader reader(files, mode, pre.get());
  std::vector<std::unique_ptr<ChunkCounter>> counters;
  for (int i = 0; i < threads; i++) counters.push_back(std::make_unique<ChunkCounter>(pre.get()));
  std::vector<Piece> pieces;
  std::vector<Status> errs;
  Progress count_progress("counting", 0);
  bool done = false;
  while (!done) {
    pieces.clear();
    LM_RETURN_IF_ERROR(reader.Next((size_t)threads * (4 << 20), &pieces, &done));
    errs.assign(pieces.size(), Status::OK());
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (size_t i = 0; i < pieces.size(); i++)
      errs[i] = counters[omp_get_thread_num()]
                    ->Add(pieces[i].text.data(), pieces[i].text.size())
                    .With(reader.SourceName(pieces[i].source));
    for (auto& s : errs) LM_RETURN_IF_ERROR(s);
    count_progress.Update(reader.bytes_read());
  }
  count_progress.Finish();
  for (int i = 1; i < threads; i++) counters[0]->Merge(counters[i].get());
  const auto& counts = counters[0]->counts();

  // Stage 2: merges.
  Progress merge_progress("merging", opt.vocab_size - 256 - nspecial, "merges");
  opt.progress = [&](uint32_t d, uint32_t) { merge_progress.Update(d); };
  VocabFile f;
  LM_RETURN_IF_ERROR(TrainBpe(counts, opt, &f));
  merge_progress.Finish();
  if (f.tokens.size() < opt.vocab_size)
    LogWarn("the data ran out of pairs%s: %zu ids instead of %u",
            minf ? " (or of pairs above --min-frequency)" : "", f.tokens.size(), opt.vocab_size);
  LogInfo("%llu bytes, %zu distinct chunks", (unsigned long long)counters[0]->bytes(),
          counts.size());
  return WriteAndReport(c.vm["output"].as<std::string>(), f);
}

Status CmdImport(int argc, char** argv) {
  cli::Command c;
  c.synopsis =
      "lm-tokenize import (--tiktoken FILE.tiktoken --pattern gpt2|cl100k|o200k|REGEX | --gpt2 "
      "encoder.json "
      "vocab.bpe) [--special TOKEN=ID]... -o tok.bpe";
  c.options.add_options()("tiktoken", cli::po::value<std::string>()->value_name("FILE"),
                          "a tiktoken rank file (BASE64 RANK lines)")(
      "gpt2", cli::po::value<std::vector<std::string>>()->value_name("JSON BPE")->multitoken(),
      "GPT-2's encoder.json and vocab.bpe")(
      "pattern,p", cli::po::value<std::string>()->value_name("NAME"),
      "pre-tokenizer: gpt2, cl100k, o200k, none or a regex (--gpt2: default gpt2)")(
      "special", cli::po::value<std::vector<std::string>>()->value_name("TOKEN[=ID]"),
      "a special token TOKEN=ID, or TOKEN for the next free id (repeatable)")(
      "output,o", cli::po::value<std::string>()->value_name("FILE"),
      "the vocabulary file to write, required")("quiet,q", "no summary line");
  c.manual =
      "DESCRIPTION\n"
      "  Converts another tool's vocabulary into tok.bpe, keeping its ids, so that\n"
      "  encode gives exactly that tool's ids. Without --special, tiktoken's\n"
      "  gpt2, cl100k_base and o200k_base rank files (recognized by pattern and\n"
      "  size) get tiktoken's special tokens; any other gets <|endoftext|> after\n"
      "  its last id. GPT-2's encoder.json already holds <|endoftext|>.\n"
      "\nEXAMPLES\n"
      "  lm-tokenize import --tiktoken cl100k_base.tiktoken --pattern cl100k \\\n"
      "      --special '<|endoftext|>=100257' --special '<|fim_prefix|>=100258' -o cl100k.bpe\n"
      "  lm-tokenize import --gpt2 encoder.json vocab.bpe -o gpt2.bpe\n"
      "\nEXIT STATUS\n  0 success, 1 bad input or runtime error, 2 usage error.\n";
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&c, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  if (c.vm.count("quiet")) SetQuiet(true);
  if (!c.vm.count("output") || c.vm["output"].as<std::string>().empty())
    return Status::Usage("-o/--output is required");
  if (c.vm.count("tiktoken") + c.vm.count("gpt2") != 1)
    return Status::Usage("give one of --tiktoken and --gpt2");
  std::vector<SpecialArg> specials;
  LM_RETURN_IF_ERROR(SpecialArgs(c, &specials));
  PatternKind kind = PatternKind::kGpt2;
  std::string regex = PatternRegex(kind);
  if (c.vm.count("pattern")) {
    if (c.vm["pattern"].as<std::string>().empty())
      return Status::Usage("empty --pattern (a name: gpt2, cl100k, o200k, none; or a regex)");
    ParsePatternArg(c.vm["pattern"].as<std::string>(), &kind, &regex);
  } else if (c.vm.count("tiktoken"))
    return Status::Usage("--tiktoken needs --pattern (gpt2, cl100k, o200k or a regex)");
  if (kind == PatternKind::kRegex) {
    std::unique_ptr<Pretokenizer> pre;
    LM_RETURN_IF_ERROR(Pretokenizer::Create(kind, regex, false, &pre));
  }
  VocabFile f;
  std::string source;
  if (c.vm.count("tiktoken")) {
    source = c.vm["tiktoken"].as<std::string>();
    LM_RETURN_IF_ERROR(ImportTiktoken(source, kind, regex, specials, &f));
  } else {
    auto g = c.vm["gpt2"].as<std::vector<std::string>>();
    if (g.size() != 2) return Status::Usage("--gpt2 takes two files: encoder.json vocab.bpe");
    source = g[0] + ", " + g[1];
    LM_RETURN_IF_ERROR(ImportGpt2(g[0], g[1], kind, regex, specials, &f));
  }
  // The table's checks run as it is written ("vocabulary: no token for byte
  // 0"): one that fails is the input's fault, so it names the input.
  Status s = WriteAndReport(c.vm["output"].as<std::string>(), f);
  if (s.code() == Status::kInvalid && s.message().rfind("vocabulary: ", 0) == 0)
    return Status::Invalid(source + ": " + s.message().substr(12));
  return s;
}

Status CmdExport(int argc, char** argv) {
  cli::Command c;
  c.synopsis = "lm-tokenize export --hf tokenizer.json --vocab tok.bpe";
  c.options.add_options()("hf", cli::po::value<std::string>()->value_name("FILE"),
                          "write a Hugging Face tokenizer.json, required")(
      "vocab,v", cli::po::value<std::string>()->value_name("FILE"),
      "the vocabulary (tok.bpe), required");
  c.manual =
      "DESCRIPTION\n"
      "  Writes the vocabulary as a Hugging Face tokenizers file (byte-level BPE,\n"
      "  the same pattern, ignore_merges so that whole-token chunks match tiktoken)\n"
      "  that encodes text to the same ids as lm-tokenize's default, with one\n"
      "  caveat: Hugging Face splits the text of special tokens out of the input by\n"
      "  default, where lm-tokenize reads it as ordinary text; set\n"
      "  tokenizer.encode_special_tokens = True (tokenizers) for the same ids.\n"
      "  The merges are the ones that can happen: one per token that a merge\n"
      "  makes (tokens only a whole chunk gives have none), as \"A B\" strings,\n"
      "  which tokenizers 0.19 and newer read. Special tokens keep their\n"
      "  ids, gaps included (each is also in the model's vocabulary, where\n"
      "  tokenizers takes ids from); one that is not UTF-8, or is spelled like a\n"
      "  byte-level token, cannot be exported (exit 1).\n"
      "\nEXAMPLES\n  lm-tokenize export --hf tokenizer.json --vocab tok.bpe\n"
      "\nEXIT STATUS\n  0 success, 1 bad input or runtime error, 2 usage error.\n";
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&c, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  if (!c.vm.count("vocab") || !c.vm.count("hf"))
    return Status::Usage("--vocab and --hf are required");
  Vocab v;
  LM_RETURN_IF_ERROR(Vocab::Load(c.vm["vocab"].as<std::string>(), &v));
  std::string json;
  LM_RETURN_IF_ERROR(ExportHf(v, HfExportOptions(), &json).With(c.vm["vocab"].as<std::string>()));
  return WriteFileAtomic(c.vm["hf"].as<std::string>(), json);
}

}  // namespace lm
