// import.cpp (lm-tokenize import): a tiktoken rank file, or GPT-2's
// encoder.json and vocab.bpe, into tok.bpe with the same ids.
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "manual.h"
#include "text/import.h"
#include "text/pretokenize.h"
#include "util/cli.h"
#include "util/progress.h"

namespace lm {

namespace {

struct ImportArgs {
  std::string tiktoken, pattern, output;
  std::vector<std::string> gpt2, specials;
  bool quiet = false;
};

void Declare(cli::Command* c, ImportArgs* o) {
  cli::Options add(c);
  add("tiktoken", &o->tiktoken, "FILE", "a tiktoken rank file (BASE64 RANK lines)");
  add("gpt2", &o->gpt2, "JSON BPE", "GPT-2's encoder.json and vocab.bpe").Multi();
  add("pattern,p", &o->pattern, "NAME",
      "pre-tokenizer: gpt2, cl100k, o200k, none or a regex (--gpt2: default gpt2)");
  add("special", &o->specials, "TOKEN[=ID]",
      "a special token TOKEN=ID, or TOKEN for the next free id (repeatable)");
  add("output,o", &o->output, "FILE", "the vocabulary file to write, required");
  add.Flag("quiet,q", &o->quiet, "no summary line");
}

Status SpecialArgs(const std::vector<std::string>& args, std::vector<SpecialArg>* out) {
  for (const std::string& s : args) {
    SpecialArg a;
    LM_RETURN_IF_ERROR(ParseSpecialArg(s, &a).With("--special"));
    for (const SpecialArg& b : *out) {
      if (b.text == a.text) return Status::Usage("--special '" + a.text + "' given twice");
      if (a.id != Vocab::kNoId && b.id == a.id)
        return Status::Usage("--special: id " + std::to_string(a.id) + " given twice");
    }
    out->push_back(a);
  }
  return Status::OK();
}

// The pre-tokenizer: --pattern, or gpt2 for --gpt2 (a tiktoken file does not
// name its own). A custom regex is compiled here, so that a bad one is a
// usage error before any file is read.
Status ResolvePattern(const cli::Command& c, const ImportArgs& a, PatternKind* kind,
                      std::string* regex) {
  *kind = PatternKind::kGpt2;
  *regex = PatternRegex(*kind);
  if (c.vm.count("pattern")) {
    if (a.pattern.empty())
      return Status::Usage("empty --pattern (a name: gpt2, cl100k, o200k, none; or a regex)");
    ParsePatternArg(a.pattern, kind, regex);
  } else if (c.vm.count("tiktoken")) {
    return Status::Usage("--tiktoken needs --pattern (gpt2, cl100k, o200k or a regex)");
  }
  if (*kind != PatternKind::kRegex) return Status::OK();
  std::unique_ptr<Pretokenizer> pre;
  return Pretokenizer::Create(*kind, *regex, false, &pre);
}

}  // namespace

Status CmdImport(int argc, char** argv) {
  cli::Command c;
  c.synopsis = kImportSynopsis;
  c.manual = kImportManual;
  ImportArgs a;
  Declare(&c, &a);
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&c, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  SetQuiet(a.quiet);
  if (a.output.empty()) return Status::Usage("-o/--output is required");
  if (c.vm.count("tiktoken") + c.vm.count("gpt2") != 1)
    return Status::Usage("give one of --tiktoken and --gpt2");
  std::vector<SpecialArg> specials;
  LM_RETURN_IF_ERROR(SpecialArgs(a.specials, &specials));
  PatternKind kind;
  std::string regex;
  LM_RETURN_IF_ERROR(ResolvePattern(c, a, &kind, &regex));
  VocabFile f;
  std::string source;
  if (c.vm.count("tiktoken")) {
    source = a.tiktoken;
    LM_RETURN_IF_ERROR(ImportTiktoken(source, kind, regex, specials, &f));
  } else {
    if (a.gpt2.size() != 2) return Status::Usage("--gpt2 takes two files: encoder.json vocab.bpe");
    source = a.gpt2[0] + ", " + a.gpt2[1];
    LM_RETURN_IF_ERROR(ImportGpt2(a.gpt2[0], a.gpt2[1], kind, regex, specials, &f));
  }
  // The table's checks run as it is written ("vocabulary: no token for byte
  // 0"): one that fails is the input's fault, so it names the input.
  Status s = WriteVocabAndReport(a.output, f);
  if (s.code() == Status::kInvalid && s.message().rfind("vocabulary: ", 0) == 0)
    return Status::Invalid(source + ": " + s.message().substr(12));
  return s;
}

}  // namespace lm
