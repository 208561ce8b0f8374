// pack.cpp (lm-pack -o DIR): token streams into a dataset of shards; the
// writer is common/data/pack.h.
#include <unistd.h>

#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "data/pack.h"
#include "format/shard.h"
#include "format/tokens.h"
#include "manual.h"
#include "util/cli.h"
#include "util/codec.h"
#include "util/file.h"
#include "util/hash.h"
#include "util/progress.h"
#include "util/signals.h"

namespace lm {

namespace {

struct PackArgs {
  std::string out, label;
  cli::Count shard_tokens{64000000}, block_tokens{kShardDefaultBlockTokens}, val_docs;
  int level = 3, threads = 0;
  double val_fraction = 0;
  uint64_t seed = 0;
  bool append = false, quiet = false;
  std::vector<std::string> inputs;
};

void Declare(cli::Command* cmd, PackArgs* o) {
  cli::Options add(cmd);
  add("output,o", &o->out, "DIR", "the dataset directory (created if missing)");
  add.Flag("append", &o->append, "add to the dataset in DIR (safe with concurrent writers)");
  add("shard-tokens", &o->shard_tokens, "N", "tokens per shard file, at most (k, M, G suffixes)")
      .Default(o->shard_tokens, "64M")
      .Min(1);
  add("block-tokens", &o->block_tokens, "N",
      "tokens per independently compressed block (1..4194304)")
      .Default(o->block_tokens, std::to_string(kShardDefaultBlockTokens))
      .Check(cli::In(1, kShardMaxBlockTokens));
  add("level", &o->level, "L",
      "zstd level 1..19 (up to 22); 0 stores raw tokens, used in place by readers")
      .Default(3)
      .Check(cli::In(0, 22));
  add("val-fraction", &o->val_fraction, "F",
      "share of the tokens held out for the val split (see DESCRIPTION)")
      .Default(0.0)
      .Check(cli::In(0, 1));
  add("val-docs", &o->val_docs, "N", "hold out the first N documents instead (k, M, G suffixes)");
  add("seed", &o->seed, "S", "seed of the train/val split").Default(0);
  add("label", &o->label, "TEXT",
      "recorded with this run in the manifest (e.g. the input file's name; one line)");
  add("threads,j", &o->threads, "N", "compression threads (0 = every core; at most the cores)")
      .Default(0);
  add.Flag("quiet,q", &o->quiet, "no summary on stderr");
  add("input", &o->inputs, "STREAM", "token streams (default stdin)");
  add.Positional("input", -1);
}

Status CheckLabel(const cli::Command& cmd, const std::string& label) {
  if (label.find('\n') != std::string::npos || label.find('\r') != std::string::npos)
    return Status::Usage("--label must be one line (inspect --labels prints one per line)");
  if (!ValidUtf8(label.data(), label.size()))
    return Status::Usage("--label must be UTF-8 text (the manifest is JSON)");
  if (cmd.Given("label") && label.empty())
    return Status::Usage("--label must not be empty (inspect --labels could not show it)");
  return Status::OK();
}

// The writer's options; ranges of single options are checked by the table.
Status Validate(const cli::Command& cmd, const PackArgs& a, PackOptions* opt) {
  if (a.out.empty()) return Status::Usage("no output directory: -o DIR is required");
  opt->dir = a.out;
  opt->append = a.append;
  opt->shard_tokens = a.shard_tokens.n;
  opt->block_tokens = (uint32_t)a.block_tokens.n;
  if (opt->shard_tokens > MaxShardTokens(opt->block_tokens))
    return Status::Usage("--shard-tokens " + std::to_string(opt->shard_tokens) +
                         ": a shard holds at most 2^32 - 1 blocks of --block-tokens " +
                         std::to_string(opt->block_tokens));
  opt->level = a.level;
  if (cmd.Given("val-docs") && cmd.Given("val-fraction"))
    return Status::Usage("--val-fraction and --val-docs exclude each other");
  opt->val_fraction = a.val_fraction;
  // "the first N documents" with N past 2^63 is every document.
  opt->val_docs = cmd.Given("val-docs") ? (int64_t)std::min<uint64_t>(a.val_docs.n, INT64_MAX) : -1;
  opt->seed = a.seed;
  LM_RETURN_IF_ERROR(cli::ResolveThreads(a.threads, &opt->threads));
  LM_RETURN_IF_ERROR(CheckLabel(cmd, a.label));
  opt->label = a.label;
  opt->waiting = [](const std::string& lock) { SayWaiting(lock, "another lm-pack is writing"); };
  return Status::OK();
}

Status OpenInput(const std::string& name, FILE** f) {
  if (name == "-") {
    *f = stdin;
    return Status::OK();
  }
  if (IsDirectory(name)) return Status::Invalid(name + ": is a directory");
  *f = fopen(name.c_str(), "rb");
  if (!*f) return Status::FromErrno(name, "cannot open");
  return Status::OK();
}

struct Input {
  std::string name;
  FILE* f = nullptr;
  std::unique_ptr<TokenStreamReader> reader;
  ~Input() {
    if (f && f != stdin) fclose(f);
  }
};

Status BeginInput(const std::string& path, Input* in) {
  in->name = path == "-" ? "<stdin>" : path;
  LM_RETURN_IF_ERROR(OpenInput(path, &in->f));
  // Small: chunk reads larger than the buffer go straight into the reader's
  // buffer, with no second copy (chunks are up to 4 MiB, typically 100 KiB).
  setvbuf(in->f, nullptr, _IOFBF, 1 << 16);
  in->reader.reset(new TokenStreamReader(in->f, in->name));
  return in->reader->Begin();
}

// Streams of one run share the first one's vocabulary.
Status CheckSameVocab(const Input& first, const Input& in) {
  const TokenStreamInfo& v = in.reader->info();
  const TokenStreamInfo& vocab = first.reader->info();
  if (v.vocab_id != vocab.vocab_id || v.vocab_size != vocab.vocab_size)
    return Status::Invalid(in.name + ": vocabulary " + HashHex(v.vocab_id) + " (size " +
                           std::to_string(v.vocab_size) + ") differs from " + first.name + "'s " +
                           HashHex(vocab.vocab_id) + " (size " + std::to_string(vocab.vocab_size) +
                           ")");
  if (v.eot_id != vocab.eot_id)
    return Status::Invalid(in.name + ": end-of-text id " + EotName(v.eot_id) + " differs from " +
                           first.name + "'s " + EotName(vocab.eot_id));
  return Status::OK();
}

// Every input's tokens into the writer, the first input already begun.
Status AddInputs(const std::vector<std::string>& inputs, Input* first, const std::string& dir,
                 DatasetWriter* w, uint64_t* total) {
  Progress progress("lm-pack", 0, "tokens");
  std::vector<uint32_t> chunk;
  for (size_t i = 0; i < inputs.size(); i++) {
    Input other;
    Input* in = first;
    if (i > 0) {
      in = &other;
      LM_RETURN_IF_ERROR(BeginInput(inputs[i], in));
      LM_RETURN_IF_ERROR(CheckSameVocab(*first, *in));
    }
    bool done = false;
    while (!done) {
      LM_RETURN_IF_ERROR(in->reader->Next(&chunk, &done));
      LM_RETURN_IF_ERROR(w->Add(chunk.data(), chunk.size()).With(dir));
      *total += chunk.size();
      progress.Update(*total);
    }
  }
  progress.Finish();
  return Status::OK();
}

// Named here, where the inputs are known; the writer removes what it made.
Status EmptyInput(const std::vector<std::string>& inputs) {
  std::string names = inputs[0] == "-" ? "<stdin>" : inputs[0];
  if (inputs.size() > 1)
    names += " and " + std::to_string(inputs.size() - 1) +
             (inputs.size() > 2 ? " more inputs" : " more input");
  return Status::Invalid(names + ": empty input: no tokens to pack");
}

std::string Mb(uint64_t bytes) {
  char b[32];
  snprintf(b, sizeof b, "%.1f MB", bytes / 1e6);
  return b;
}

std::string Percent(uint64_t part, uint64_t whole) {
  char b[32];
  snprintf(b, sizeof b, "%.2f%%", whole ? 100.0 * (double)part / (double)whole : 0.0);
  return b;
}

// The split as shares of the tokens and of the documents, and a warning when
// a fraction split is far from what was asked.
void SummarizeSplit(const PackOptions& opt, const PackStats& st) {
  const uint64_t tokens = st.tokens[0] + st.tokens[1];
  std::string cut;
  if (st.cut > 0)
    cut = ", " + std::to_string(st.cut) + " of them the tails of documents longer than " +
          std::to_string(kValCutTokens) + " tokens";
  LogInfo("train: %" PRIu64 " tokens (%s), %" PRIu64 " documents (%s); val: %" PRIu64
          " tokens (%s), %" PRIu64 " documents (%s%s)",
          st.tokens[0], Percent(st.tokens[0], tokens).c_str(), st.docs[0],
          Percent(st.docs[0], st.documents).c_str(), st.tokens[1],
          Percent(st.tokens[1], tokens).c_str(), st.docs[1],
          Percent(st.docs[1], st.documents).c_str(), cut.c_str());
  const double share = tokens ? (double)st.tokens[1] / (double)tokens : 0;
  if (opt.val_docs < 0 && st.tokens[1] > 0 &&
      std::fabs(share - opt.val_fraction) > opt.val_fraction / 5)
    LogWarn(
        "the val split holds %s of the tokens where --val-fraction asked %g%%: the input has "
        "few documents of up to %" PRIu64 " tokens (see lm-pack --help)",
        Percent(st.tokens[1], tokens).c_str(), 100 * opt.val_fraction, kValCutTokens);
}

void Summarize(const PackOptions& opt, const TokenStreamInfo& vocab, const PackStats& st) {
  for (int sig : st.late_signals)
    LogWarn("%s arrived as the run was committed; the run is complete", SignalName(sig));
  uint64_t raw = (st.tokens[0] + st.tokens[1]) * (uint64_t)vocab.width();
  LogInfo("%s: packed %" PRIu64 " tokens (%" PRIu64 " documents) into %" PRIu64
          " shards, %s (%.2fx smaller than raw %d-bit tokens)",
          opt.dir.c_str(), st.tokens[0] + st.tokens[1], st.documents, st.shards[0] + st.shards[1],
          Mb(st.bytes).c_str(), st.bytes ? (double)raw / st.bytes : 0.0, vocab.width() * 8);
  SummarizeSplit(opt, st);
  if (vocab.eot_id == kNoToken)
    LogWarn("the vocabulary has no end-of-text token: the whole input is one document");
  if ((opt.val_fraction > 0 || opt.val_docs > 0) && st.tokens[1] == 0)
    LogWarn("the val split got no document (%" PRIu64 " documents in the input)", st.documents);
  if (st.tokens[0] == 0) LogWarn("the train split got no document");
}

}  // namespace

Status RunPack(int argc, char** argv) {
  cli::Command cmd;
  cmd.synopsis = kPackSynopsis;
  cmd.manual = kPackManual;
  PackArgs a;
  Declare(&cmd, &a);
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&cmd, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  PackOptions opt;
  LM_RETURN_IF_ERROR(Validate(cmd, a, &opt));
  SetQuiet(a.quiet);
  // Legal (each shard is then one short block) but slow; said only when both
  // were chosen: a small --shard-tokens alone with the default block is common.
  if (opt.shard_tokens < opt.block_tokens && cmd.Given("block-tokens") && cmd.Given("shard-tokens"))
    LogWarn("--shard-tokens %" PRIu64
            " is less than --block-tokens %u: every shard is one short "
            "block (valid, but slow to pack and to read)",
            opt.shard_tokens, opt.block_tokens);
  std::vector<std::string> inputs = a.inputs;
  if (inputs.empty()) inputs.push_back("-");
  if (inputs.size() == 1 && inputs[0] == "-" && isatty(0))
    return Status::Usage(
        "no input: give token stream files or pipe one in (lm-tokenize ... | lm-pack)");
  Input first;
  LM_RETURN_IF_ERROR(BeginInput(inputs[0], &first));
  const TokenStreamInfo vocab = first.reader->info();
  std::unique_ptr<DatasetWriter> w;
  Status s = DatasetWriter::Create(opt, vocab, &w);
  if (IsExistingDataset(s)) return Status::Invalid(s.message() + " (use --append to add to it)");
  LM_RETURN_IF_ERROR(s);
  uint64_t total = 0;
  LM_RETURN_IF_ERROR(AddInputs(inputs, &first, opt.dir, w.get(), &total));
  if (total == 0) return EmptyInput(inputs);
  PackStats st;
  s = w->Finish(&st);
  if (IsExistingDataset(s)) return Status::Invalid(s.message() + " (use --append to add to it)");
  LM_RETURN_IF_ERROR(s);
  // Committed: the run is complete, and a signal now must not end it with a
  // status that says otherwise.
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, SIG_IGN);
  Summarize(opt, vocab, st);
  return Status::OK();
}

}  // namespace lm
