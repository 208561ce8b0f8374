// lm-eval: mean loss, perplexity and bits per byte of a checkpoint on held-out
// tokens (a packed split, text files or token streams), one JSON line per
// checkpoint for logs, and a cron mode (--new-only) that evaluates each new
// checkpoint of a run exactly once. Method: model/evaluate.h, docs/eval.md.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "data/loader.h"
#include "format/tokens.h"
#include "model/checkpoint.h"
#include "model/evaluate.h"
#include "text/vocab.h"
#include "util/cli.h"
#include "util/file.h"
#include "util/hash.h"
#include "util/human.h"
#include "util/json.h"
#include "util/progress.h"

namespace lm {
namespace {

using Json = nlohmann::ordered_json;

const char* kSynopsis =
    "lm-eval --ckpt RUN|RUN/step-N (--data DIR [--split val|train] | --text FILE... |\n"
    "               --tokens FILE...) [--context T] [--stride S] [--batch B]\n"
    "               [--limit-tokens N] [--json] [--new-only] [--device cpu|cuda|auto]";

const char* kManual = R"(DESCRIPTION
  Measures how well a checkpoint predicts held-out tokens: the mean loss in
  nats per target token, its standard error, the perplexity exp(loss), and
  bits per byte (the total loss in bits over the UTF-8 bytes the scored
  targets decode to; targets that are special tokens such as <|endoftext|>
  are left out of both sums, so that bits per byte compares models with
  different vocabularies).

  The data is a split of a packed dataset (--data, lm-pack's output), text
  files (--text: each file is one document, tokenized with the checkpoint's
  own vocabulary and ended with <|endoftext|>, after one <|endoftext|> that
  starts the data, so that every byte of text is scored), or token streams
  (--tokens: lm-tokenize encode's output, in the checkpoint's vocabulary).
  The tokens must be of the checkpoint's vocabulary; another vocabulary is an
  error.

METHOD
  The token sequence x[0..N) is cut into consecutive windows of T targets
  (T = --context, by default the model's context). Each target is predicted
  from the tokens before it in its own window. The first token of the data is
  never a target; every other token is a target exactly once. With --stride
  S < T the windows start every S tokens and overlap; each window after the
  first scores only its last S targets, so every target after the first
  window has at least T - S + 1 tokens of context (Hugging Face's strided
  perplexity). Windows are
  independent, so --batch changes only the speed, never the result. The
  standard error treats the per-token losses as independent samples.

OUTPUT
  One line per checkpoint. With --json, one JSON object per line with the
  fields ckpt, step, tokens_seen, data, split, data_id, context, stride,
  limit_tokens, loss, ppl, bpb, stderr, targets, text_targets, bytes,
  tokens_per_second, seconds, device, date, version (docs/eval.md defines
  each), a line that can be appended to a log forever.

CRON (--new-only)
  With --new-only, --ckpt names a run directory: every complete checkpoint
  of RUN that has not yet been evaluated on this data with these options is
  evaluated, oldest first, and recorded in RUN/eval-record.jsonl; checkpoints
  that appear meanwhile are evaluated too. A lock (RUN/eval-record.lock)
  makes overlapping runs wait for each other, so no checkpoint is evaluated
  twice and no lines interleave. Nothing new: no output, exit 0. A checkpoint
  still being written is invisible (lm-train renames each into place).

EXAMPLES
  lm-eval --ckpt run/ --data shards/
  lm-eval --ckpt run/step-0001000 --text held-out/*.txt --json
  lm-eval --ckpt run/ --data shards/ --context 512 --stride 256
  # crontab: evaluate each new checkpoint once, appending to a log
  */10 * * * * lm-eval --ckpt run/ --data shards/ --json --new-only >> eval.jsonl

EXIT STATUS
  0  success (with --new-only also when nothing was new)
  1  bad input or runtime error: a missing, truncated, corrupt or foreign
     checkpoint, data of another vocabulary, an empty split, an I/O error;
     with --new-only, when any checkpoint failed (the others are still done)
  2  usage error)";

struct Options {
  std::string ckpt, data, split = "val", device = "auto";
  std::vector<std::string> text, tokens;
  int context = 0, stride = 0, batch = 4, threads = 0;
  uint64_t limit = 0;
  bool json = false, new_only = false, quiet = false;
};

// The tokens to evaluate, whatever their source.
struct EvalData {
  std::string name;          // "shards/" or the files, for people and the JSON
  std::string split;         // "val", "train", or "" for files
  uint64_t identity = 0;     // names this exact data
  int64_t n_tokens = 0;      // after --limit-tokens
  uint64_t vocab_id = 0;     // 0: tokenized here with the checkpoint's vocabulary
  std::vector<int32_t> mem;  // files: the tokens
  std::unique_ptr<Dataset> ds;
  Split ds_split = Split::kVal;
  std::vector<uint32_t> buf;

  Status Read(int64_t start, int64_t n, int32_t* out) {
    if (!ds) {
      std::memcpy(out, mem.data() + start, (size_t)n * sizeof(int32_t));
      return Status::OK();
    }
    buf.resize((size_t)n);
    LM_RETURN_IF_ERROR(ds->Read(ds_split, (uint64_t)start, (size_t)n, buf.data()));
    for (int64_t i = 0; i < n; i++)
      out[i] = buf[(size_t)i] > (uint32_t)INT32_MAX ? -1 : (int32_t)buf[(size_t)i];
    return Status::OK();
  }
};

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

Status OpenDataset(const Options& o, EvalData* d) {
  LM_RETURN_IF_ERROR(Dataset::Open(o.data, &d->ds));
  const DatasetInfo& info = d->ds->info();
  d->ds_split = o.split == "train" ? Split::kTrain : Split::kVal;
  d->name = o.data;
  d->split = o.split;
  d->vocab_id = info.vocab_id;
  uint64_t n = info.tokens[(int)d->ds_split];
  // The manifest's counts size the plan: check them against the headers of
  // the shards to be read first (Read would, but only once it got there).
  LM_RETURN_IF_ERROR(d->ds->CheckShards(d->ds_split, o.limit ? std::min(n, o.limit) : n));
  if (n < 2)
    return Status::Invalid(
        o.data + ": the " + o.split + " split is empty (" + std::to_string(n) +
        " tokens; nothing to evaluate" +
        (o.split == "val" ? "; lm-pack --val-fraction holds out a split)" : ")"));
  // The split's identity: the manifest's shard hashes and which split.
  std::string id = HashHex(info.identity) + ":" + o.split;
  d->identity = Hash64(id);
  d->n_tokens = (int64_t)n;
  return Status::OK();
}

Status ReadTokenFiles(const std::vector<std::string>& files, EvalData* d) {
  Hasher h;
  for (const std::string& f : files) {
    std::string bytes;
    LM_RETURN_IF_ERROR(ReadFile(f, &bytes));
    h.Update(bytes);
    FILE* in = fmemopen((void*)bytes.data(), bytes.size(), "rb");
    if (!in) return Status::FromErrno(f, "fmemopen");
    TokenStreamReader r(in, f);
    Status s = r.Begin();
    if (s.ok() && d->vocab_id && r.info().vocab_id != d->vocab_id)
      s = Status::Invalid(f + ": token stream of vocabulary " + HashHex(r.info().vocab_id) +
                          ", unlike the files before it (" + HashHex(d->vocab_id) + ")");
    if (s.ok()) d->vocab_id = r.info().vocab_id;
    std::vector<uint32_t> chunk;
    bool done = false;
    while (s.ok() && !done) {
      s = r.Next(&chunk, &done);
      for (uint32_t t : chunk) d->mem.push_back((int32_t)t);
    }
    fclose(in);
    LM_RETURN_IF_ERROR(s);  // the reader's messages name f already
  }
  d->name = Join(files);
  d->identity = Hash64(HashHex(h.Digest()) + ":tokens");
  d->n_tokens = (int64_t)d->mem.size();
  if (d->n_tokens < 2)
    return Status::Invalid(d->name + ": " + std::to_string(d->n_tokens) +
                           " token(s): nothing to evaluate");
  return Status::OK();
}

// Each file one document ending in <|endoftext|>, in the checkpoint's
// vocabulary. One more <|endoftext|> goes first, as documents in packed data
// follow one: then the first token of the text is scored too, and bits/byte
// counts every byte of it.
Status TokenizeTextFiles(const std::vector<std::string>& files, const Vocab& vocab, EvalData* d) {
  std::vector<uint32_t> ids;
  d->mem.push_back((int32_t)vocab.eot_id());
  for (const std::string& f : files) {
    std::string text;
    LM_RETURN_IF_ERROR(ReadFile(f, &text));
    ids.clear();  // Encode appends
    LM_RETURN_IF_ERROR(vocab.Encode(text, false, &ids).With(f));
    for (uint32_t t : ids) d->mem.push_back((int32_t)t);
    d->mem.push_back((int32_t)vocab.eot_id());
  }
  d->vocab_id = vocab.id();
  d->n_tokens = (int64_t)d->mem.size();
  return Status::OK();
}

Json Number(double v) {
  return std::isfinite(v) ? Json(v) : Json(nullptr);
}

struct Result {
  std::string line;  // what goes to stdout, newline included
};

// Evaluates one step directory; data already opened (its vocabulary is checked here).
Status EvaluateCheckpoint(const Options& o, const std::string& step_dir, EvalData* data,
                          Result* out) {
  auto t0 = std::chrono::steady_clock::now();
  Checkpoint ck;
  LM_RETURN_IF_ERROR(LoadCheckpoint(step_dir, true, &ck));
  Vocab vocab;
  LM_RETURN_IF_ERROR(Vocab::Load(ck.vocab_path, &vocab));
  if ((int)vocab.size() != ck.config.vocab_size)
    return Status::Invalid(ck.vocab_path + ": " + std::to_string(vocab.size()) +
                           " tokens, but the model has " + std::to_string(ck.config.vocab_size));
  if (!data->ds && data->mem.empty() && !o.text.empty()) {
    LM_RETURN_IF_ERROR(TokenizeTextFiles(o.text, vocab, data));
    if (data->n_tokens == 1 + (int64_t)o.text.size())
      return Status::Invalid(data->name + ": no text to evaluate (the files are empty)");
  }
  if (data->vocab_id && data->vocab_id != vocab.id())
    return Status::Invalid(data->name + ": tokens of another vocabulary (" +
                           HashHex(data->vocab_id) + "; the checkpoint " + step_dir + " uses " +
                           HashHex(vocab.id()) + ")");
  int64_t n = data->n_tokens;
  if (o.limit && (int64_t)o.limit < n) n = (int64_t)o.limit;

  const int T = o.context ? o.context : ck.config.context;
  if (T > ck.config.context)
    return Status::Usage("--context " + std::to_string(T) + ": the model's context is " +
                         std::to_string(ck.config.context));
  const int S = o.stride ? o.stride : T;
  std::vector<EvalWindow> plan;
  LM_RETURN_IF_ERROR(PlanWindows(n, T, S, &plan));

  std::vector<int32_t> token_bytes(vocab.size());
  for (uint32_t id = 0; id < vocab.size(); id++)
    token_bytes[id] = vocab.is_special(id) ? -1 : (int32_t)vocab.token_bytes(id).size();

  std::unique_ptr<Backend> be;
  LM_RETURN_IF_ERROR(MakeBackend(o.device, &be));
  BackendOptions bo;
  bo.threads = o.threads;
  bo.max_batch = o.batch;
  bo.max_seq = std::min<int64_t>(T, n - 1) > 0 ? (int)std::min<int64_t>(T, n - 1) : 1;
  bo.training = false;
  LM_RETURN_IF_ERROR(be->Init(ck.config, bo));
  LM_RETURN_IF_ERROR(be->SetParams(ck.params.data()));
  ck.params.clear();
  ck.params.shrink_to_fit();

  Progress progress(BaseName(step_dir), (uint64_t)(n - 1), "tokens");
  auto t1 = std::chrono::steady_clock::now();
  EvalSums sums;
  EvalOptions eo{T, S, o.batch};
  LM_RETURN_IF_ERROR(Evaluate(
      be.get(), n,
      [data](int64_t start, int64_t k, int32_t* dst) { return data->Read(start, k, dst); },
      token_bytes, eo, [&progress](int64_t done) { progress.Update((uint64_t)done); }, &sums,
      nullptr));
  progress.Finish();
  auto t2 = std::chrono::steady_clock::now();
  double secs = std::chrono::duration<double>(t2 - t1).count();
  double tps = secs > 0 ? (double)sums.targets / secs : 0;

  if (o.json) {
    Json j;
    j["ckpt"] = step_dir;
    j["step"] = ck.step;
    j["tokens_seen"] = ck.tokens_seen;
    j["data"] = data->name;
    j["split"] = data->split.empty() ? Json(nullptr) : Json(data->split);
    j["data_id"] = HashHex(data->identity);
    j["context"] = T;
    j["stride"] = S;
    j["limit_tokens"] = o.limit ? Json(o.limit) : Json(nullptr);
    j["loss"] = Number(sums.mean_loss());
    j["ppl"] = Number(sums.perplexity());
    j["bpb"] = Number(sums.bits_per_byte());
    j["stderr"] = Number(sums.std_error());
    j["targets"] = sums.targets;
    j["text_targets"] = sums.text_targets;
    j["bytes"] = sums.bytes;
    j["tokens_per_second"] = Number(tps);
    j["seconds"] = Number(std::chrono::duration<double>(t2 - t0).count());
    j["device"] = be->Describe();
    j["date"] = NowUtcIso();
    j["version"] = std::string("lm-eval ") + kVersion;
    out->line = j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  } else {
    // "n/a" where JSON has null: bits/byte of targets that are all special
    // tokens, or a perplexity that overflows.
    auto fixed = [](double v, int prec) {
      char t[64];
      if (!std::isfinite(v)) return std::string("n/a");
      snprintf(t, sizeof t, "%.*f", prec, v);
      return std::string(t);
    };
    char b[512];
    snprintf(b, sizeof b,
             "%s: loss %s +- %s nats/token, ppl %s, %s bits/byte "
             "(%lld targets, %lld bytes, %.0f tokens/s)\n",
             step_dir.c_str(), fixed(sums.mean_loss(), 4).c_str(),
             fixed(sums.std_error(), 4).c_str(), fixed(sums.perplexity(), 3).c_str(),
             fixed(sums.bits_per_byte(), 4).c_str(), (long long)sums.targets, (long long)sums.bytes,
             tps);
    out->line = b;
  }
  if (!o.quiet)
    LogInfo("%s: step %lld, %lld targets in %.2f s (%.0f tokens/s) on %s", step_dir.c_str(),
            (long long)ck.step, (long long)sums.targets, secs, tps, be->Describe().c_str());
  return Status::OK();
}

// One write(2) per line: with stdout appended to a log by several processes
// (under our lock), a line is never split by stdio's buffering.
// When stdout is a file (>> eval.jsonl) and the write fails part way (disk
// full, ulimit -f), the file is cut back to where the line began: a torn line
// would glue onto the next run's and leave the log unreadable.
Status EmitLine(const std::string& line) {
  fflush(stdout);
  struct stat st;
  const bool file = fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode);
  Status s = WriteAll(STDOUT_FILENO, line.data(), line.size(), "<stdout>");
  if (!s.ok() && file && ftruncate(STDOUT_FILENO, st.st_size) != 0)
    return s.With("cannot remove the partial line (" + std::string(strerror(errno)) + ")");
  return s;
}

// What --new-only has done: RUN/eval-record.jsonl, one {"ckpt","id","key",...} per line.
std::string RecordKey(const Options& o, const EvalData& d) {
  std::string k = "data=" + HashHex(d.identity) + " context=" + std::to_string(o.context) +
                  " stride=" + std::to_string(o.stride) + " limit=" + std::to_string(o.limit);
  return HashHex(Hash64(k));
}

Status ReadRecord(const std::string& path, const std::string& key, std::set<std::string>* done) {
  if (!PathExists(path)) return Status::OK();
  std::string all;
  LM_RETURN_IF_ERROR(ReadFile(path, &all));
  size_t pos = 0;
  while (pos < all.size()) {
    size_t nl = all.find('\n', pos);
    if (nl == std::string::npos) break;  // a line cut by a crash: not a record
    std::string line = all.substr(pos, nl - pos);
    pos = nl + 1;
    Json j;
    if (!ParseJsonText(line, &j).ok() || !j.is_object() || !j.contains("ckpt") ||
        !j.contains("id") || !j.contains("key") || !j["ckpt"].is_string() || !j["id"].is_string() ||
        !j["key"].is_string())
      continue;
    if (j["key"].get<std::string>() == key)
      done->insert(j["ckpt"].get<std::string>() + "/" + j["id"].get<std::string>());
  }
  return Status::OK();
}

Status AppendRecord(const std::string& path, const std::string& line) {
  int fd = open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(path, "open");
  // After a line torn by a crash, start a new line so this record stays whole.
  std::string text = line;
  off_t size = lseek(fd, 0, SEEK_END);
  char last = '\n';
  if (size > 0 && pread(fd, &last, 1, size - 1) == 1 && last != '\n') text = "\n" + text;
  Status s = WriteAll(fd, text.data(), text.size(), path);
  if (s.ok() && fsync(fd) != 0) s = Status::FromErrno(path, "fsync");
  close(fd);
  return s;
}

Status RunNewOnly(const Options& o, EvalData* data) {
  const std::string& run = o.ckpt;
  if (!IsDirectory(run)) return Status::NotFound(run + ": no such run directory");
  if (PathExists(JoinPath(run, "trainer-state.json")))
    return Status::Usage("--new-only: " + run +
                         " is a step directory; give the run directory that holds it");
  FileLock lock;
  LM_RETURN_IF_ERROR(lock.Lock(JoinPath(run, "eval-record.lock")));
  const std::string record = JoinPath(run, "eval-record.jsonl");
  const std::string key = RecordKey(o, *data);
  std::set<std::string> failed;
  int n_failed = 0;
  Status first_error;
  for (;;) {
    std::set<std::string> done;
    LM_RETURN_IF_ERROR(ReadRecord(record, key, &done));
    std::vector<std::string> steps;
    LM_RETURN_IF_ERROR(ListCheckpoints(run, &steps));
    std::string next, next_id;
    for (const std::string& s : steps) {
      // A checkpoint is its name and its contents (the hash of its
      // trainer-state.json, which holds every file's hash), so that a run
      // restarted from scratch in the same directory is evaluated again.
      std::string state, name = BaseName(s);
      if (!ReadFile(JoinPath(s, "trainer-state.json"), &state).ok()) continue;  // just deleted
      name += "/" + HashHex(Hash64(state));
      if (!done.count(name) && !failed.count(name)) {
        next = s;
        next_id = name;
        break;
      }
    }
    if (next.empty()) break;
    Result r;
    Status s = EvaluateCheckpoint(o, next, data, &r);
    if (!s.ok()) {
      failed.insert(next_id);
      if (!IsDirectory(next)) {  // removed by lm-train --keep while we read it
        LogWarn("%s: deleted while being evaluated; skipped", next.c_str());
        continue;
      }
      if (s.code() == Status::kUsage) return s;
      fprintf(stderr, "%s: error: %s\n", cli::ToolName().c_str(), s.ToString().c_str());
      if (n_failed++ == 0) first_error = s;
      continue;
    }
    // Printed before it is recorded: a crash in between repeats a line rather
    // than losing one.
    LM_RETURN_IF_ERROR(EmitLine(r.line));
    Json rec;
    rec["ckpt"] = BaseName(next);
    rec["id"] = next_id.substr(next_id.rfind('/') + 1);
    rec["key"] = key;
    rec["data"] = data->name;
    rec["date"] = NowUtcIso();
    LM_RETURN_IF_ERROR(
        AppendRecord(record, rec.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n"));
  }
  if (n_failed)
    return Status(first_error)
        .With(std::to_string(n_failed) + " checkpoint(s) of " + run + " failed, the first");
  return Status::OK();
}

Status Run(int argc, char** argv) {
  Options o;
  cli::Command cmd;
  cmd.synopsis = kSynopsis;
  cmd.manual = kManual;
  std::string limit;
  cmd.options.add_options()("ckpt", cli::po::value(&o.ckpt)->value_name("PATH")->required(),
                            "run directory (its latest checkpoint) or a step directory")(
      "data", cli::po::value(&o.data)->value_name("DIR"),
      "packed dataset directory (lm-pack's output)")(
      "split", cli::po::value(&o.split)->value_name("SPLIT")->default_value("val"),
      "split of --data: val or train")("text",
                                       cli::po::value(&o.text)->value_name("FILE...")->multitoken(),
                                       "text files, each one document")(
      "tokens", cli::po::value(&o.tokens)->value_name("FILE...")->multitoken(),
      "token streams (lm-tokenize encode)")("context", cli::po::value(&o.context)->value_name("T"),
                                            "T: targets per window (default: the model's context)")(
      "stride", cli::po::value(&o.stride)->value_name("S"),
      "S: windows start every S tokens (default: T)")(
      "batch", cli::po::value(&o.batch)->value_name("B")->default_value(4),
      "windows per forward pass (speed only)")("limit-tokens",
                                               cli::po::value(&limit)->value_name("N"),
                                               "use only the first N tokens of the data")(
      "json", cli::po::bool_switch(&o.json), "one JSON object per line")(
      "new-only", cli::po::bool_switch(&o.new_only), "cron mode: each new checkpoint of RUN, once")(
      "device", cli::po::value(&o.device)->value_name("DEV")->default_value("auto"),
      "cpu, cuda or auto")("threads,j",
                           cli::po::value(&o.threads)->value_name("N")->default_value(0),
                           "CPU threads (0: all cores)")("quiet,q", cli::po::bool_switch(&o.quiet),
                                                         "no progress or timing on stderr");
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&cmd, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  LM_RETURN_IF_ERROR(cli::ResolveThreads(o.threads, &o.threads));
  SetQuiet(o.quiet);
  int sources = !o.data.empty() + !o.text.empty() + !o.tokens.empty();
  if (sources != 1) return Status::Usage("give exactly one of --data, --text, --tokens");
  if (o.split != "val" && o.split != "train")
    return Status::Usage("--split " + o.split + ": expected val or train");
  if (!limit.empty()) {
    LM_RETURN_IF_ERROR(cli::ParseCount(limit, &o.limit).With("--limit-tokens"));
    if (o.limit < 2) return Status::Usage("--limit-tokens " + limit + ": at least 2 tokens");
  }
  if (cmd.vm.count("context") && o.context < 1)
    return Status::Usage("--context " + std::to_string(o.context) + ": expected >= 1");
  if (cmd.vm.count("stride") && (o.stride < 1 || (o.context && o.stride > o.context)))
    return Status::Usage("--stride " + std::to_string(o.stride) + ": expected 1 <= S <= T");
  if (o.batch < 1) return Status::Usage("--batch " + std::to_string(o.batch) + ": expected >= 1");
  if (o.device != "cpu" && o.device != "cuda" && o.device != "auto")
    return Status::Usage("--device " + o.device + ": expected cpu, cuda or auto");

  EvalData data;
  if (!o.data.empty()) LM_RETURN_IF_ERROR(OpenDataset(o, &data));
  if (!o.tokens.empty()) LM_RETURN_IF_ERROR(ReadTokenFiles(o.tokens, &data));
  if (!o.text.empty()) {
    // Tokenized with the checkpoint's vocabulary once it is loaded; the
    // identity is of the bytes here, so that --new-only can key on it.
    Hasher h;
    for (const std::string& f : o.text) {
      std::string text;
      LM_RETURN_IF_ERROR(ReadFile(f, &text));
      h.Update(HashHex(Hash64(text)));
    }
    data.identity = Hash64(HashHex(h.Digest()) + ":text");
    data.name = Join(o.text);
  }

  if (o.new_only) return RunNewOnly(o, &data);
  std::string step_dir;
  LM_RETURN_IF_ERROR(ResolveCheckpoint(o.ckpt, &step_dir));
  Result r;
  LM_RETURN_IF_ERROR(EvaluateCheckpoint(o, step_dir, &data, &r));
  return EmitLine(r.line);
}

}  // namespace
}  // namespace lm

int main(int argc, char** argv) {
  return lm::cli::Main("lm-eval", argc, argv, lm::Run);
}
