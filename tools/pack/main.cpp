// lm-pack: packs token streams into a dataset of compressed, checksummed
// shards (docs/formats/shard.md, manifest.md), and verifies, inspects and
// unpacks such datasets. The writer is common/data/pack.h; the reader the
// training loader's (common/data/loader.h).
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "data/clean.h"
#include "data/pack.h"
#include "data/verify.h"
#include "format/manifest.h"
#include "format/shard.h"
#include "format/tokens.h"
#include "util/cli.h"
#include "util/codec.h"
#include "util/file.h"
#include "util/hash.h"
#include "util/progress.h"

namespace lm {
namespace {

namespace po = boost::program_options;

const char* const kPackManual = R"(DESCRIPTION
  Reads token streams (the output of lm-tokenize encode; files, or stdin when
  none is named or a name is -) and writes them into DIR as shards plus a
  manifest, DIR/manifest.json. Streams must share one vocabulary; several may be
  concatenated. Memory stays bounded whatever the input size: shards are
  written out as they fill.

  Documents end with the vocabulary's end-of-text token. Each whole document
  goes to the train or the val split, never both: with --val-fraction F a
  document goes to val when a hash of (seed, its index in the input, its first
  64 tokens) falls below F; with --val-docs N the first N documents go to val.
  The split depends only on the seed and the input.

  Shards hold blocks of --block-tokens tokens, each compressed alone with zstd
  at --level (0 stores raw tokens that readers map and use in place), each with
  an XXH3-64 checksum. The output does not depend on -j. The -j threads
  compress; reading the input, the checksums and the writes run beside them.

  The block size trades packing against random access: on GPT-2 tokens,
  65536-token blocks compress 2% smaller with about 10% less zstd time than
  the default 8192, but a training loader whose reads miss its cache then
  decompresses 8 times more per window.

  With --append, shards are added to the dataset in DIR (created if missing):
  any number of lm-pack --append may run at once; each writes its own shard
  files, then adds them to the manifest under a lock on DIR/.lock (one that
  has to wait for it says so on stderr, unless -q). Without
  --append, DIR must not hold a dataset yet. A dataset holds one vocabulary.
  --label names the run's input in the manifest, added by the same manifest
  rename that adds the run's shards to the dataset: a script resuming after a
  crash asks lm-pack inspect DIR --labels what is already in
  (scripts/recipe-24h.sh does).

  On any failure (bad input, disk full, a signal) the dataset is left as it
  was: shard files not yet in the manifest are removed. A writer killed with
  SIGKILL cannot remove them; lm-pack clean does, safely at any time.

SUBCOMMANDS
  lm-pack verify DIR        check every checksum and count; names the first bad
                            shard and block
  lm-pack inspect DIR       the manifest, counts and compression ratio
  lm-pack cat DIR           write the tokens back as a token stream
  lm-pack clean DIR         remove the files of writers killed before their
                            commit (SIGKILL, power loss)
  (see lm-pack SUBCOMMAND --help)

EXAMPLES
  lm-tokenize --vocab tok.bpe corpus.txt | lm-pack -o shards/ --val-fraction 0.01
  ls parts/*.txt | xargs -P8 -I{} sh -c \
      'lm-tokenize --vocab tok.bpe {} | lm-pack -o shards/ --append --val-fraction 0.01 -j1'
  lm-pack verify shards/ && lm-pack inspect shards/
  lm-pack cat shards/ --split val | lm-tokenize decode --vocab tok.bpe

EXIT STATUS
  0 success; 1 bad input (not a token stream, truncated, empty, other
  vocabulary, DIR already a dataset) or a runtime error (disk full);
  2 usage error.
)";

// ---------------------------------------------------------------------------
// pack

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

std::string Mb(uint64_t bytes) {
  char b[32];
  snprintf(b, sizeof b, "%.1f MB", bytes / 1e6);
  return b;
}

Status RunPack(int argc, char** argv) {
  cli::Command cmd;
  cmd.synopsis =
      "lm-pack -o DIR [--append] [--shard-tokens N] [--block-tokens N] [--level L]\n"
      "               [--val-fraction F | --val-docs N] [--seed S] [--label TEXT]\n"
      "               [-j THREADS] [STREAM...]\n"
      "       lm-pack verify DIR\n"
      "       lm-pack inspect DIR [--json | --labels]\n"
      "       lm-pack cat DIR [--split train|val] [--shard N] [-o FILE]\n"
      "       lm-pack clean DIR [-n] [-q]";
  cmd.manual = kPackManual;
  std::string out, shard_tokens, block_tokens, val_docs_arg;
  int level = 3, threads = 0;
  double val_fraction = 0;
  uint64_t seed = 0;
  std::string label;
  std::vector<std::string> inputs;
  cmd.options.add_options()("output,o", po::value(&out)->value_name("DIR"),
                            "the dataset directory (created if missing)")(
      "append", "add to the dataset in DIR (safe with concurrent writers)")(
      "shard-tokens", po::value(&shard_tokens)->default_value("64M")->value_name("N"),
      "tokens per shard file, at most (k, M, G suffixes)")(
      "block-tokens", po::value(&block_tokens)->default_value("8192")->value_name("N"),
      "tokens per independently compressed block (1..4194304)")(
      "level", po::value(&level)->default_value(3)->value_name("L"),
      "zstd level 1..19 (up to 22); 0 stores raw tokens, used in place by readers")(
      "val-fraction", po::value(&val_fraction)->default_value(0.0)->value_name("F"),
      "share of documents held out for the val split (by seeded hash)")(
      "val-docs", po::value(&val_docs_arg)->value_name("N"),
      "hold out the first N documents instead (k, M, G suffixes)")(
      "seed", po::value(&seed)->default_value(0)->value_name("S"), "seed of the train/val split")(
      "label", po::value(&label)->value_name("TEXT"),
      "recorded with this run in the manifest (e.g. the input file's name; one line)")(
      "threads,j", po::value(&threads)->default_value(0)->value_name("N"),
      "compression threads (0 = every core; at most the cores)")("quiet,q", "no summary on stderr")(
      "input", po::value(&inputs)->value_name("STREAM"), "token streams (default stdin)");
  cmd.positional.add("input", -1);
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&cmd, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  if (out.empty()) return Status::Usage("no output directory: -o DIR is required");
  PackOptions opt;
  opt.dir = out;
  opt.append = cmd.vm.count("append") > 0;
  LM_RETURN_IF_ERROR(cli::ParseCount(shard_tokens, &opt.shard_tokens).With("--shard-tokens"));
  uint64_t bt;
  LM_RETURN_IF_ERROR(cli::ParseCount(block_tokens, &bt).With("--block-tokens"));
  if (opt.shard_tokens == 0) return Status::Usage("--shard-tokens must be at least 1");
  if (bt == 0 || bt > kShardMaxBlockTokens)
    return Status::Usage("--block-tokens must be 1.." + std::to_string(kShardMaxBlockTokens));
  opt.block_tokens = (uint32_t)bt;
  if (level < 0 || level > 22) return Status::Usage("--level must be 0..22");
  opt.level = level;
  if (cmd.vm.count("val-docs") && !cmd.vm["val-fraction"].defaulted())
    return Status::Usage("--val-fraction and --val-docs exclude each other");
  int64_t val_docs = -1;
  if (cmd.vm.count("val-docs")) {
    uint64_t n;
    LM_RETURN_IF_ERROR(cli::ParseCount(val_docs_arg, &n).With("--val-docs"));
    if (n > (uint64_t)INT64_MAX)
      return Status::Usage("--val-docs: " + val_docs_arg + " is too large");
    val_docs = (int64_t)n;
  }
  if (!(val_fraction >= 0 && val_fraction <= 1))
    return Status::Usage("--val-fraction must be in [0, 1]");
  opt.val_fraction = val_fraction;
  opt.val_docs = cmd.vm.count("val-docs") ? val_docs : -1;
  opt.seed = seed;
  LM_RETURN_IF_ERROR(cli::ResolveThreads(threads, &opt.threads));
  if (label.find('\n') != std::string::npos || label.find('\r') != std::string::npos)
    return Status::Usage("--label must be one line (inspect --labels prints one per line)");
  if (!ValidUtf8(label.data(), label.size()))
    return Status::Usage("--label must be UTF-8 text (the manifest is JSON)");
  if (cmd.vm.count("label") && label.empty())
    return Status::Usage("--label must not be empty (inspect --labels could not show it)");
  opt.label = label;
  if (cmd.vm.count("quiet")) SetQuiet(true);
  // Legal (each shard is then one short block) but slow; said only when both
  // were chosen: a small --shard-tokens alone with the default block is common.
  if (opt.shard_tokens < opt.block_tokens && !cmd.vm["block-tokens"].defaulted() &&
      !cmd.vm["shard-tokens"].defaulted())
    LogWarn("--shard-tokens %" PRIu64
            " is less than --block-tokens %u: every shard is one short "
            "block (valid, but slow to pack and to read)",
            opt.shard_tokens, opt.block_tokens);
  if (inputs.empty()) inputs.push_back("-");
  if (inputs.size() == 1 && inputs[0] == "-" && isatty(0))
    return Status::Usage(
        "no input: give token stream files or pipe one in (lm-tokenize ... | lm-pack)");

  Input first;
  LM_RETURN_IF_ERROR(BeginInput(inputs[0], &first));
  const TokenStreamInfo vocab = first.reader->info();
  std::unique_ptr<DatasetWriter> w;
  LM_RETURN_IF_ERROR(DatasetWriter::Create(opt, vocab, &w));
  Progress progress("lm-pack", 0, "tokens");
  uint64_t total = 0;
  std::vector<uint32_t> chunk;
  for (size_t i = 0; i < inputs.size(); i++) {
    Input other;
    Input* in = &first;
    if (i > 0) {
      in = &other;
      LM_RETURN_IF_ERROR(BeginInput(inputs[i], in));
      const TokenStreamInfo& v = in->reader->info();
      if (v.vocab_id != vocab.vocab_id || v.vocab_size != vocab.vocab_size)
        return Status::Invalid(in->name + ": vocabulary " + HashHex(v.vocab_id) + " (size " +
                               std::to_string(v.vocab_size) + ") differs from " + first.name +
                               "'s " + HashHex(vocab.vocab_id) + " (size " +
                               std::to_string(vocab.vocab_size) + ")");
      if (v.eot_id != vocab.eot_id)
        return Status::Invalid(in->name + ": end-of-text id " + EotName(v.eot_id) +
                               " differs from " + first.name + "'s " + EotName(vocab.eot_id));
    }
    bool done = false;
    while (!done) {
      LM_RETURN_IF_ERROR(in->reader->Next(&chunk, &done));
      LM_RETURN_IF_ERROR(w->Add(chunk.data(), chunk.size()).With(opt.dir));
      total += chunk.size();
      progress.Update(total);
    }
  }
  progress.Finish();
  if (total == 0) {
    // Named here, where the inputs are known; the writer removes what it made.
    std::string names = inputs[0] == "-" ? "<stdin>" : inputs[0];
    if (inputs.size() > 1)
      names += " and " + std::to_string(inputs.size() - 1) +
               (inputs.size() > 2 ? " more inputs" : " more input");
    return Status::Invalid(names + ": empty input: no tokens to pack");
  }
  PackStats st;
  LM_RETURN_IF_ERROR(w->Finish(&st));
  // Committed: the run is complete, and a signal now must not end it with a
  // status that says otherwise.
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, SIG_IGN);
  uint64_t raw = (st.tokens[0] + st.tokens[1]) * (uint64_t)vocab.width();
  LogInfo("%s: packed %" PRIu64 " tokens (%" PRIu64 " documents) into %" PRIu64
          " shards, %s (%.2fx smaller than raw %d-bit tokens)",
          opt.dir.c_str(), st.tokens[0] + st.tokens[1], st.documents, st.shards[0] + st.shards[1],
          Mb(st.bytes).c_str(), st.bytes ? (double)raw / st.bytes : 0.0, vocab.width() * 8);
  LogInfo("train: %" PRIu64 " tokens, %" PRIu64 " documents; val: %" PRIu64 " tokens, %" PRIu64
          " documents",
          st.tokens[0], st.docs[0], st.tokens[1], st.docs[1]);
  if (vocab.eot_id == kNoToken)
    LogWarn("the vocabulary has no end-of-text token: the whole input is one document");
  if ((opt.val_fraction > 0 || opt.val_docs > 0) && st.tokens[1] == 0)
    LogWarn("the val split got no document (%" PRIu64 " documents in the input)", st.documents);
  if (st.tokens[0] == 0) LogWarn("the train split got no document");
  return Status::OK();
}

// ---------------------------------------------------------------------------
// verify

Status RunVerify(int argc, char** argv) {
  cli::Command cmd;
  cmd.synopsis = "lm-pack verify DIR";
  cmd.manual = R"(DESCRIPTION
  Checks the dataset in DIR: every shard the manifest names exists with its
  size; each shard's header and index checksums, every block's checksum and
  size, every token inside the vocabulary, the document table against the
  end-of-text tokens, and the whole file's XXH3-64 against the manifest.
  Stops at the first problem and names the shard file and block. Prints a
  one-line summary on stdout when all is well, and warns on stderr about
  shard or temporary files in DIR that the manifest does not list (left by a
  writer killed with SIGKILL, or being written by a running one; they are not
  part of the dataset, and lm-pack clean removes those of writers that are
  gone).

EXIT STATUS
  0 the dataset is intact; 1 it is not (or cannot be read); 2 usage error.
)";
  std::string dir;
  cmd.options.add_options()("dir", po::value(&dir)->value_name("DIR"), "the dataset directory");
  cmd.positional.add("dir", 1);
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&cmd, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  if (dir.empty()) return Status::Usage("lm-pack verify: no dataset directory");
  Manifest m;
  LM_RETURN_IF_ERROR(ReadManifest(dir, &m));
  uint64_t total = 0;
  for (const ManifestShard& e : m.shards) total += e.bytes;
  Progress progress("verify", total, "B");
  VerifyReport rep;
  LM_RETURN_IF_ERROR(VerifyDataset(dir, &rep, [&](uint64_t done) { progress.Update(done); }));
  progress.Finish();
  // Files a killed writer (SIGKILL, power loss) left: not an error, the
  // dataset is what the manifest says, but worth knowing. A dry run of clean
  // finds them without writing anything.
  CleanReport left;
  if (CleanDataset(dir, /*dry_run=*/true, &left, nullptr).ok()) {
    if (left.files > 0)
      LogWarn("%s: %s (%" PRIu64
              " bytes) not in the manifest, left by killed lm-pack runs: lm-pack clean removes "
              "them",
              dir.c_str(), Count(left.files, "file").c_str(), left.bytes);
    if (left.other_files > 0)
      LogWarn("%s: %s not in the manifest and not named by lm-pack", dir.c_str(),
              Count(left.other_files, ".lms file").c_str());
  }
  printf("%s: OK: %" PRIu64 " shards, %" PRIu64 " tokens, %" PRIu64 " documents, %" PRIu64
         " bytes\n",
         dir.c_str(), rep.shards, rep.tokens, rep.documents, rep.bytes);
  return Status::OK();
}

// ---------------------------------------------------------------------------
// inspect

std::string U128ToString(unsigned __int128 v) {
  std::string s;
  do {
    s.insert(s.begin(), (char)('0' + (int)(v % 10)));
    v /= 10;
  } while (v != 0);
  return s;
}

Status RunInspect(int argc, char** argv) {
  cli::Command cmd;
  cmd.synopsis = "lm-pack inspect DIR [--json | --labels]";
  cmd.manual = R"(DESCRIPTION
  Prints what the dataset in DIR holds: the vocabulary, the token and document
  counts of each split, the size on disk and the compression ratio against raw
  tokens, then one line per shard (index, split, tokens, documents, blocks,
  bytes, level, ratio, file). Reads only the manifest; lm-pack verify checks
  the shards. --json prints the manifest itself; --labels the --label of each
  run that gave one, a line each, in the order the runs were committed.

EXIT STATUS
  0 success; 1 no readable manifest; 2 usage error.
)";
  std::string dir;
  cmd.options.add_options()("dir", po::value(&dir)->value_name("DIR"), "the dataset directory")(
      "json", "print the manifest (JSON) instead")(
      "labels", "print the runs' --label values instead, one per line");
  cmd.positional.add("dir", 1);
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&cmd, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  if (dir.empty()) return Status::Usage("lm-pack inspect: no dataset directory");
  Manifest m;
  LM_RETURN_IF_ERROR(ReadManifest(dir, &m));
  if (cmd.vm.count("json") && cmd.vm.count("labels"))
    return Status::Usage("lm-pack inspect: --json and --labels exclude each other");
  if (cmd.vm.count("json")) {
    fputs(SerializeManifest(m).c_str(), stdout);
    return Status::OK();
  }
  if (cmd.vm.count("labels")) {
    for (const ManifestWriter& w : m.writers)
      if (!w.label.empty()) printf("%s\n", w.label.c_str());
    return Status::OK();
  }
  uint64_t tokens[2] = {0, 0}, docs[2] = {0, 0}, shards[2] = {0, 0}, bytes = 0;
  for (const ManifestShard& e : m.shards) {
    int k = e.split == "val";
    tokens[k] += e.tokens;
    docs[k] += e.documents;
    shards[k]++;
    bytes += e.bytes;
  }
  // The parser keeps each split's tokens and all bytes under 2^63; the raw
  // size of both splits may still pass 2^64 in a forged but consistent manifest.
  unsigned __int128 raw = ((unsigned __int128)tokens[0] + tokens[1]) * (unsigned)m.token_width;
  printf("dataset:      %s (manifest version %d)\n", dir.c_str(), kManifestVersion);
  printf("vocabulary:   %u ids, identity %s, end-of-text %s, %d-bit tokens\n", m.vocab_size,
         HashHex(m.vocab_id).c_str(), EotName(m.eot_id).c_str(), m.token_width * 8);
  printf("train:        %" PRIu64 " tokens, %" PRIu64 " documents, %" PRIu64 " shards\n", tokens[0],
         docs[0], shards[0]);
  printf("val:          %" PRIu64 " tokens, %" PRIu64 " documents, %" PRIu64 " shards\n", tokens[1],
         docs[1], shards[1]);
  printf("total:        %" PRIu64 " tokens, %" PRIu64 " documents\n", tokens[0] + tokens[1],
         docs[0] + docs[1]);
  printf("size:         %" PRIu64 " bytes on disk, %s bytes as raw tokens: ratio %.3f\n", bytes,
         U128ToString(raw).c_str(), bytes ? (double)raw / bytes : 0.0);
  printf("identity:     %s\n", HashHex(m.Identity()).c_str());
  printf("writers:      %zu\n", m.writers.size());
  printf("%6s %-5s %12s %9s %7s %12s %5s %6s  %s\n", "#", "split", "tokens", "documents", "blocks",
         "bytes", "level", "ratio", "file");
  for (size_t i = 0; i < m.shards.size(); i++) {
    const ManifestShard& e = m.shards[i];
    printf("%6zu %-5s %12" PRIu64 " %9" PRIu64 " %7" PRIu64 " %12" PRIu64 " %5d %6.3f  %s\n", i,
           e.split.c_str(), e.tokens, e.documents, e.blocks, e.bytes, e.level,
           e.bytes ? (double)e.tokens * m.token_width / e.bytes : 0.0, e.file.c_str());
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------
// cat

// Reads a run of shards (one split of one writer) in order, document by
// document, checking every block it decodes.
class DocCursor {
 public:
  DocCursor(const std::string& dir, const Manifest& m, std::vector<size_t> shards)
      : dir_(dir), m_(m), shards_(std::move(shards)) {}

  // Opens the first shard with tokens. Call before anything else.
  Status Start() { return Enter(0); }
  bool done() const { return cur_ >= shards_.size(); }
  // The input number of the current document (it may end in a later shard);
  // UINT64_MAX when none is recorded.
  Status Number(uint64_t* n) {
    *n = UINT64_MAX;
    if (doc_ < r_.doc_ends().size()) {
      *n = r_.doc_numbers()[doc_];
      return Status::OK();
    }
    for (size_t j = cur_ + 1; j < shards_.size(); j++) {
      ShardReader r;
      LM_RETURN_IF_ERROR(OpenShard(j, &r));
      if (!r.doc_numbers().empty()) {
        *n = r.doc_numbers()[0];
        break;
      }
    }
    return Status::OK();
  }
  // Writes the current document (or, with whole_shards, everything) to w.
  Status Copy(TokenStreamWriter* w, bool whole_shards) {
    while (!done()) {
      uint64_t T = r_.header().token_count;
      bool ends_here = !whole_shards && doc_ < r_.doc_ends().size();
      uint64_t end = ends_here ? r_.doc_ends()[doc_] : T;
      LM_RETURN_IF_ERROR(CopyRange(pos_, end, w));
      pos_ = end;
      if (ends_here) {
        doc_++;
        if (pos_ == T) LM_RETURN_IF_ERROR(Enter(cur_ + 1));
        return Status::OK();
      }
      LM_RETURN_IF_ERROR(Enter(cur_ + 1));
    }
    return Status::OK();
  }

 private:
  Status OpenShard(size_t j, ShardReader* r) {
    const ManifestShard& e = m_.shards[shards_[j]];
    LM_RETURN_IF_ERROR(r->Open(JoinPath(dir_, e.file)));
    return CheckShardMatchesManifest(*r, e, m_);
  }
  Status Enter(size_t j) {
    cur_ = j;
    pos_ = doc_ = 0;
    block_ = UINT32_MAX;
    if (j < shards_.size()) LM_RETURN_IF_ERROR(OpenShard(j, &r_));
    return Status::OK();
  }
  Status CopyRange(uint64_t from, uint64_t to, TokenStreamWriter* w) {
    while (from < to) {
      uint32_t b = (uint32_t)(from / r_.header().block_tokens);
      if (b != block_) {
        LM_RETURN_IF_ERROR(r_.ReadBlock(b, &raw_));
        uint32_t n = r_.block_tokens(b);
        const uint8_t* p = reinterpret_cast<const uint8_t*>(raw_.data());
        LM_RETURN_IF_ERROR(r_.CheckTokens(b, p, n));
        ids_.resize(n);
        DecodeTokens(p, r_.header().token_width, n, ids_.data());
        block_ = b;
      }
      uint64_t first = r_.block_first_token(b);
      uint64_t stop = std::min<uint64_t>(to, first + ids_.size());
      LM_RETURN_IF_ERROR(w->Write(ids_.data() + (from - first), (size_t)(stop - from)));
      from = stop;
    }
    return Status::OK();
  }

  std::string dir_;
  const Manifest& m_;
  std::vector<size_t> shards_;
  size_t cur_ = 0;
  ShardReader r_;
  uint64_t pos_ = 0, doc_ = 0;
  uint32_t block_ = UINT32_MAX;
  std::string raw_;
  std::vector<uint32_t> ids_;
};

// Every writer's documents in its input order: the train and val shards of
// each writer merged by document number; writers in manifest order.
Status CatInInputOrder(const std::string& dir, const Manifest& m, TokenStreamWriter* w) {
  std::vector<std::string> writers;
  for (const ManifestShard& e : m.shards)
    if (std::find(writers.begin(), writers.end(), e.writer) == writers.end())
      writers.push_back(e.writer);
  for (const std::string& id : writers) {
    std::vector<size_t> split[2];
    for (size_t i = 0; i < m.shards.size(); i++)
      if (m.shards[i].writer == id) split[m.shards[i].split == "val"].push_back(i);
    DocCursor train(dir, m, split[0]), val(dir, m, split[1]);
    LM_RETURN_IF_ERROR(train.Start());
    LM_RETURN_IF_ERROR(val.Start());
    while (!train.done() || !val.done()) {
      uint64_t a = UINT64_MAX, b = UINT64_MAX;
      if (!train.done()) LM_RETURN_IF_ERROR(train.Number(&a));
      if (!val.done()) LM_RETURN_IF_ERROR(val.Number(&b));
      if (val.done() || (!train.done() && a <= b)) {
        LM_RETURN_IF_ERROR(train.Copy(w, a == UINT64_MAX));
      } else {
        LM_RETURN_IF_ERROR(val.Copy(w, b == UINT64_MAX));
      }
    }
  }
  return Status::OK();
}

Status RunCat(int argc, char** argv) {
  cli::Command cmd;
  cmd.synopsis = "lm-pack cat DIR [--split train|val] [--shard N] [-o FILE]";
  cmd.manual = R"(DESCRIPTION
  Writes the tokens of the dataset in DIR as one token stream (the format
  lm-tokenize encode writes), on stdout or to -o FILE. Without --split or
  --shard, each lm-pack run's documents come out in the order of its input
  (train and val merged back by document number), runs in the order they were
  added: `lm-pack cat DIR | lm-tokenize decode` gives back the text packed.
  --split writes one split, in manifest order; --shard N writes shard N alone
  (its index in lm-pack inspect's list). Every block's checksum is verified
  before its tokens are written. -o may not name a file of the dataset (its
  manifest or a shard, by any path or link): that is refused before any work.

EXAMPLES
  lm-pack cat shards/ | lm-tokenize decode --vocab tok.bpe
  lm-pack cat shards/ --split val | lm-tokenize decode --vocab tok.bpe

EXIT STATUS
  0 success; 1 a missing or corrupt shard, or a write error; 2 usage error.
)";
  std::string dir, split, out;
  int64_t shard = -1;
  cmd.options.add_options()("dir", po::value(&dir)->value_name("DIR"), "the dataset directory")(
      "split", po::value(&split)->value_name("SPLIT"), "train or val (default both)")(
      "shard", po::value(&shard)->value_name("N"), "only shard N")(
      "output,o", po::value(&out)->value_name("FILE"), "write here instead of stdout");
  cmd.positional.add("dir", 1);
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&cmd, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  if (dir.empty()) return Status::Usage("lm-pack cat: no dataset directory");
  if (!split.empty() && split != "train" && split != "val")
    return Status::Usage("--split must be train or val, not '" + split + "'");
  Manifest m;
  LM_RETURN_IF_ERROR(ReadManifest(dir, &m));
  std::vector<size_t> order;
  if (shard >= 0) {
    if ((uint64_t)shard >= m.shards.size())
      return Status::Usage("--shard " + std::to_string(shard) + ": the dataset has " +
                           std::to_string(m.shards.size()) + " shards");
    if (!split.empty() && m.shards[shard].split != split)
      return Status::Usage("shard " + std::to_string(shard) + " is in the " +
                           m.shards[shard].split + " split");
    order.push_back((size_t)shard);
  } else if (!split.empty()) {
    for (size_t i = 0; i < m.shards.size(); i++)
      if (m.shards[i].split == split) order.push_back(i);
  }
  if (!out.empty()) {
    // The output replaces its target once every input was read: an -o naming
    // the manifest or a shard (by any name: a link, a path through ..) would
    // replace a file of the dataset it came from with a token stream.
    std::vector<std::string> files = {JoinPath(dir, kManifestName)};
    for (const ManifestShard& e : m.shards) files.push_back(JoinPath(dir, e.file));
    for (const std::string& r : files)
      if (SameFile(out, r))
        return Status::Invalid(out + ": -o names a file of the dataset being read" +
                               (r == out ? "" : " (" + r + ")") + "; give another file");
  }
  AtomicFile file;
  FILE* f = stdout;
  std::string name = "<stdout>";
  if (!out.empty()) {
    // Written to a temporary through a FILE*, renamed on success.
    LM_RETURN_IF_ERROR(file.Open(out));
    f = fdopen(dup(file.fd()), "wb");
    if (!f) return Status::FromErrno(out, "cannot open");
    name = out;
  }
  TokenStreamInfo info;
  info.vocab_size = m.vocab_size;
  info.vocab_id = m.vocab_id;
  info.eot_id = m.eot_id;
  TokenStreamWriter w(f, name);
  Status s = w.Begin(info);
  if (s.ok()) {
    if (shard < 0 && split.empty()) {
      s = CatInInputOrder(dir, m, &w);
    } else {
      DocCursor c(dir, m, order);
      s = c.Start();
      if (s.ok()) s = c.Copy(&w, true);
    }
  }
  if (s.ok()) s = w.End();
  if (f != stdout) {
    if (fclose(f) != 0 && s.ok()) s = Status::FromErrno(out, "write failed");
    if (s.ok()) s = file.Commit();
  }
  return s;
}

Status Run(int argc, char** argv) {
  if (argc >= 2) {
    std::string sub = argv[1];
    if (sub == "verify") return RunVerify(argc - 1, argv + 1);
    if (sub == "inspect") return RunInspect(argc - 1, argv + 1);
    if (sub == "cat") return RunCat(argc - 1, argv + 1);
    if (sub == "clean") return RunClean(argc - 1, argv + 1);
  }
  return RunPack(argc, argv);
}

}  // namespace
}  // namespace lm

int main(int argc, char** argv) {
  return lm::cli::Main("lm-pack", argc, argv, lm::Run);
}
