// main.cpp: lm-eval, the mean loss, perplexity and bits per byte of a
// checkpoint on held-out tokens (a packed split, text files or token
// streams), one JSON line per checkpoint for logs, and a cron mode
// (--new-only) that evaluates each new checkpoint of a run exactly once.
// Method: engine/evaluate.h, docs/eval.md.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "data.h"
#include "engine/evaluate.h"
#include "engine/inference.h"
#include "manual.h"
#include "record.h"
#include "util/cli.h"
#include "util/file.h"
#include "util/hash.h"
#include "util/human.h"
#include "util/progress.h"

namespace lm {
namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string ckpt, data, split = "val", device = "auto";
  std::vector<std::string> text, tokens;
  int context = 0, stride = 0, batch = 4, threads = 0;
  cli::Count limit;
  bool json = false, new_only = false, quiet = false;
};

void Declare(cli::Command* cmd, Options* o) {
  cli::Options add(cmd);
  add("ckpt", &o->ckpt, "PATH", "run directory (its latest checkpoint) or a step directory")
      .Required();
  add("data", &o->data, "DIR", "packed dataset directory (lm-pack's output)");
  add("split", &o->split, "SPLIT", "split of --data: val or train").Default("val");
  add("text", &o->text, "FILE...", "text files, each one document").Multi();
  add("tokens", &o->tokens, "FILE...", "token streams (lm-tokenize encode)").Multi();
  add("context", &o->context, "T", "T: targets per window (default: the model's context)").Min(1);
  add("stride", &o->stride, "S", "S: windows start every S tokens (default: T)").Min(1);
  add("batch", &o->batch, "B", "windows per forward pass (speed only)").Default(4).Min(1);
  add("limit-tokens", &o->limit, "N", "use only the first N tokens of the data").Min(2);
  add.Flag("json", &o->json, "one JSON object per line");
  add.Flag("new-only", &o->new_only, "cron mode: each new checkpoint of RUN, once");
  add("device", &o->device, "DEV", "cpu, cuda or auto").Default("auto");
  add("threads,j", &o->threads, "N", "CPU threads (0: all cores)").Default(0);
  add.Flag("quiet,q", &o->quiet, "no progress or timing on stderr");
}

Status Validate(const cli::Command& cmd, Options* o) {
  LM_RETURN_IF_ERROR(cli::ResolveThreads(o->threads, &o->threads));
  SetQuiet(o->quiet);
  int sources = !o->data.empty() + !o->text.empty() + !o->tokens.empty();
  if (sources != 1) return Status::Usage("give exactly one of --data, --text, --tokens");
  if (o->split != "val" && o->split != "train")
    return Status::Usage("--split " + o->split + ": expected val or train");
  if (cmd.vm.count("stride") && o->context && o->stride > o->context)
    return Status::Usage("--stride " + std::to_string(o->stride) + ": expected 1 <= S <= T");
  if (o->device != "cpu" && o->device != "cuda" && o->device != "auto")
    return Status::Usage("--device " + o->device + ": expected cpu, cuda or auto");
  return Status::OK();
}

// What one evaluation measured.
struct Result {
  std::string step_dir, device;
  int64_t step = 0;
  uint64_t tokens_seen = 0;
  int T = 0, S = 0;
  EvalSums sums;
  double seconds = 0, eval_seconds = 0;
};

Json Number(double v) {
  return std::isfinite(v) ? Json(v) : Json(nullptr);
}

std::string JsonLine(const Options& o, const EvalData& data, const Result& r) {
  const EvalSums& s = r.sums;
  Json j;
  j["ckpt"] = r.step_dir;
  j["step"] = r.step;
  j["tokens_seen"] = r.tokens_seen;
  j["data"] = data.name;
  j["split"] = data.split.empty() ? Json(nullptr) : Json(data.split);
  j["data_id"] = HashHex(data.identity);
  j["context"] = r.T;
  j["stride"] = r.S;
  j["limit_tokens"] = o.limit.n ? Json(o.limit.n) : Json(nullptr);
  j["loss"] = Number(s.mean_loss());
  j["ppl"] = Number(s.perplexity());
  j["bpb"] = Number(s.bits_per_byte());
  j["stderr"] = Number(s.std_error());
  j["targets"] = s.targets;
  j["text_targets"] = s.text_targets;
  j["bytes"] = s.bytes;
  j["tokens_per_second"] = Number(r.eval_seconds > 0 ? (double)s.targets / r.eval_seconds : 0);
  j["seconds"] = Number(r.seconds);
  j["device"] = r.device;
  j["date"] = NowUtcIso();
  j["version"] = std::string("lm-eval ") + kVersion;
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

// "n/a" where JSON has null: bits/byte of targets that are all special
// tokens, or a perplexity that overflows.
std::string Fixed(double v, int prec) {
  char t[64];
  if (!std::isfinite(v)) return "n/a";
  snprintf(t, sizeof t, "%.*f", prec, v);
  return t;
}

std::string TextLine(const Result& r) {
  const EvalSums& s = r.sums;
  char b[512];
  snprintf(b, sizeof b,
           "%s: loss %s +- %s nats/token, ppl %s, %s bits/byte "
           "(%lld targets, %lld bytes, %.0f tokens/s)\n",
           r.step_dir.c_str(), Fixed(s.mean_loss(), 4).c_str(), Fixed(s.std_error(), 4).c_str(),
           Fixed(s.perplexity(), 3).c_str(), Fixed(s.bits_per_byte(), 4).c_str(),
           (long long)s.targets, (long long)s.bytes,
           r.eval_seconds > 0 ? (double)s.targets / r.eval_seconds : 0.0);
  return b;
}

// Scores the data on a loaded model (its vocabulary is checked here).
Status Score(const Options& o, InferenceModel* m, EvalData* data, Result* r) {
  if (data->needs_tokenizing()) LM_RETURN_IF_ERROR(TokenizeText(m->vocab, data));
  if (data->vocab_id && data->vocab_id != m->vocab.id())
    return Status::Invalid(data->name + ": tokens of another vocabulary (" +
                           HashHex(data->vocab_id) + "; the checkpoint " + m->step_dir + " uses " +
                           HashHex(m->vocab.id()) + ")");
  const int64_t n =
      o.limit.n && (int64_t)o.limit.n < data->n_tokens ? (int64_t)o.limit.n : data->n_tokens;
  const int context = m->checkpoint.config.context;
  r->T = o.context ? o.context : context;
  if (r->T > context)
    return Status::Usage("--context " + std::to_string(r->T) + ": the model's context is " +
                         std::to_string(context));
  r->S = o.stride ? o.stride : r->T;
  std::vector<int32_t> token_bytes(m->vocab.size());
  for (uint32_t id = 0; id < m->vocab.size(); id++)
    token_bytes[id] = m->vocab.is_special(id) ? -1 : (int32_t)m->vocab.token_bytes(id).size();
  Progress progress(BaseName(m->step_dir), (uint64_t)(n - 1), "tokens");
  auto t0 = Clock::now();
  LM_RETURN_IF_ERROR(Evaluate(
      m->backend.get(), n,
      [data](int64_t start, int64_t k, int32_t* dst) { return data->Read(start, k, dst); },
      token_bytes, EvalOptions{r->T, r->S, o.batch},
      [&progress](int64_t done) { progress.Update((uint64_t)done); }, &r->sums, nullptr));
  progress.Finish();
  r->eval_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return Status::OK();
}

// Evaluates one step directory; *line gets what goes to stdout.
Status EvaluateCheckpoint(const Options& o, const std::string& step_dir, EvalData* data,
                          std::string* line) {
  auto t0 = Clock::now();
  InferenceOptions io;
  io.device = o.device;
  io.threads = o.threads;
  io.max_batch = o.batch;
  io.max_seq = o.context;
  InferenceModel m;
  LM_RETURN_IF_ERROR(LoadInferenceModel(step_dir, io, &m));
  Result r;
  LM_RETURN_IF_ERROR(Score(o, &m, data, &r));
  r.step_dir = step_dir;
  r.device = m.backend->Describe();
  r.step = m.checkpoint.step;
  r.tokens_seen = m.checkpoint.tokens_seen;
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  *line = o.json ? JsonLine(o, *data, r) : TextLine(r);
  if (!o.quiet)
    LogInfo("%s: step %lld, %lld targets in %.2f s (%.0f tokens/s) on %s", step_dir.c_str(),
            (long long)r.step, (long long)r.sums.targets, r.eval_seconds,
            r.eval_seconds > 0 ? (double)r.sums.targets / r.eval_seconds : 0.0, r.device.c_str());
  return Status::OK();
}

// The oldest complete checkpoint of `run` that is neither done nor failed:
// *next its step directory, *id "step-N/HASH" (a checkpoint is its name and
// the hash of its trainer-state.json, which holds every file's hash, so that
// a run restarted from scratch in the same directory is evaluated again).
Status NextCheckpoint(const std::string& run, const std::set<std::string>& skip, std::string* next,
                      std::string* id) {
  next->clear();
  std::vector<std::string> steps;
  LM_RETURN_IF_ERROR(ListCheckpoints(run, &steps));
  for (const std::string& s : steps) {
    std::string state;
    if (!ReadFile(JoinPath(s, "trainer-state.json"), &state).ok()) continue;  // just deleted
    std::string name = BaseName(s) + "/" + HashHex(Hash64(state));
    if (!skip.count(name)) {
      *next = s;
      *id = name;
      return Status::OK();
    }
  }
  return Status::OK();
}

Status RecordDone(const std::string& record, const std::string& key, const std::string& step_dir,
                  const std::string& id, const EvalData& data) {
  Json rec;
  rec["ckpt"] = BaseName(step_dir);
  rec["id"] = id.substr(id.rfind('/') + 1);
  rec["key"] = key;
  rec["data"] = data.name;
  rec["date"] = NowUtcIso();
  return AppendRecord(record, rec.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n");
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
  const std::string key = RecordKey(data->identity, o.context, o.stride, o.limit.n);
  std::set<std::string> failed;
  int n_failed = 0;
  Status first_error;
  for (;;) {
    std::set<std::string> skip = failed;
    LM_RETURN_IF_ERROR(ReadRecord(record, key, &skip));
    std::string next, id, line;
    LM_RETURN_IF_ERROR(NextCheckpoint(run, skip, &next, &id));
    if (next.empty()) break;
    Status s = EvaluateCheckpoint(o, next, data, &line);
    if (!s.ok()) {
      failed.insert(id);
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
    LM_RETURN_IF_ERROR(EmitLine(line));
    LM_RETURN_IF_ERROR(RecordDone(record, key, next, id, *data));
  }
  if (n_failed)
    return Status(first_error)
        .With(std::to_string(n_failed) + " checkpoint(s) of " + run + " failed, the first");
  return Status::OK();
}

Status Run(int argc, char** argv) {
  Options o;
  cli::Command cmd;
  cmd.synopsis = kEvalSynopsis;
  cmd.manual = kEvalManual;
  Declare(&cmd, &o);
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&cmd, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  LM_RETURN_IF_ERROR(Validate(cmd, &o));

  EvalData data;
  if (!o.data.empty()) LM_RETURN_IF_ERROR(OpenDataset(o.data, o.split, o.limit.n, &data));
  if (!o.tokens.empty()) LM_RETURN_IF_ERROR(ReadTokenFiles(o.tokens, &data));
  if (!o.text.empty()) LM_RETURN_IF_ERROR(NameTextFiles(o.text, &data));
  if (o.new_only) return RunNewOnly(o, &data);
  std::string step_dir, line;
  LM_RETURN_IF_ERROR(ResolveCheckpoint(o.ckpt, &step_dir));
  LM_RETURN_IF_ERROR(EvaluateCheckpoint(o, step_dir, &data, &line));
  return EmitLine(line);
}

}  // namespace
}  // namespace lm

int main(int argc, char** argv) {
  return lm::cli::Main("lm-eval", argc, argv, lm::Run);
}
