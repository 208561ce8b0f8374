// main.cpp: lm-sample, text generated from a checkpoint and streamed to
// stdout as it comes, with a KV cache so that each new token costs one
// position. Sampling rules: model/sampler.h; the loop and its sliding window:
// engine/generate.h.
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "engine/generate.h"
#include "engine/inference.h"
#include "manual.h"
#include "model/sampler.h"
#include "prompt.h"
#include "util/cli.h"
#include "util/file.h"
#include "util/progress.h"

namespace lm {
namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string ckpt, prompt, prompt_file, device = "auto", seed;
  std::vector<std::string> stops;
  int n = 256, num_samples = 1, threads = 0;
  bool json = false, quiet = false, no_cache = false;
  SamplerConfig sc;
};

void Declare(cli::Command* cmd, Options* o) {
  cli::Options add(cmd);
  SamplerConfig& sc = o->sc;
  add("ckpt", &o->ckpt, "PATH", "run directory (its latest checkpoint) or a step directory")
      .Required();
  add("prompt", &o->prompt, "TEXT", "the prompt text");
  add("prompt-file", &o->prompt_file, "F", "read the prompt from a file (text or token stream)");
  add(",n", &o->n, "N", "tokens to generate per sample, at most").Default(256).Min(0);
  add("temperature", &sc.temperature, "T", "0: greedy")
      .Default(1.0f, "1")
      .Check(cli::NonNegative());
  add("top-k", &sc.top_k, "K", "keep the K most likely tokens (0: off)").Default(0).Min(0);
  add("top-p", &sc.top_p, "P", "nucleus: probability mass kept (1: off)")
      .Default(1.0f, "1")
      .Check(cli::In(0, 1, true, false));
  add("min-p", &sc.min_p, "P", "drop tokens below P x the best (0: off)")
      .Default(0.0f, "0")
      .Check(cli::In(0, 1));
  add("repeat-penalty", &sc.repeat_penalty, "R", "penalty for recent tokens (1: off)")
      .Default(1.0f, "1")
      .Check(cli::Positive());
  add("repeat-last", &sc.repeat_last, "N", "how many recent tokens the penalty sees")
      .Default(64)
      .Min(0);
  add("seed", &o->seed, "S", "random seed (default: random, printed on stderr)");
  add("stop", &o->stops, "STR", "stop string (repeatable; not printed; \\n escapes)");
  add("num-samples", &o->num_samples, "K", "samples to generate").Default(1).Min(1);
  add.Flag("json", &o->json, "one JSON object per sample");
  add("device", &o->device, "DEV", "cpu, cuda or auto").Default("auto");
  add("threads,j", &o->threads, "N", "CPU threads (0: all cores)").Default(0);
  add.Flag("no-kv-cache", &o->no_cache, "recompute the window for every token (benchmarks)");
  add.Flag("quiet,q", &o->quiet, "no seed or timing on stderr");
}

// The seed as given (digits only: strtoull takes " -5" for 2^64 - 5), or a
// random one short enough to retype.
Status ResolveSeed(const std::string& seed, uint64_t* out) {
  if (seed.empty()) {
    std::random_device rd;
    *out = ((uint64_t)rd() << 32 | rd()) & 0xffffffffffffULL;
    return Status::OK();
  }
  char* end = nullptr;
  errno = 0;
  unsigned long long v = strtoull(seed.c_str(), &end, 10);
  if (errno || !end || *end || seed.find_first_not_of("0123456789") != std::string::npos)
    return Status::Usage("--seed " + seed + ": expected an integer 0 .. 2^64-1");
  *out = v;
  return Status::OK();
}

Status Validate(const cli::Command& cmd, Options* o) {
  LM_RETURN_IF_ERROR(cli::ResolveThreads(o->threads, &o->threads));
  SetQuiet(o->quiet);
  if (cmd.vm.count("prompt") && cmd.vm.count("prompt-file"))
    return Status::Usage("give --prompt or --prompt-file, not both");
  if (o->device != "cpu" && o->device != "cuda" && o->device != "auto")
    return Status::Usage("--device " + o->device + ": expected cpu, cuda or auto");
  for (std::string& s : o->stops) {
    std::string u;
    LM_RETURN_IF_ERROR(cli::Unescape(s, &u).With("--stop"));
    if (u.empty()) return Status::Usage("--stop: an empty stop string");
    s = u;
  }
  return ResolveSeed(o->seed, &o->sc.seed);
}

// The prompt's bytes, read before the (slower) load so that a bad prompt
// file fails first: --prompt, --prompt-file, or stdin when it is not a terminal.
Status ReadPrompt(const cli::Command& cmd, const Options& o, std::string* bytes,
                  std::string* name) {
  *name = "--prompt";
  if (cmd.vm.count("prompt")) {
    *bytes = o.prompt;
  } else if (cmd.vm.count("prompt-file")) {
    *name = o.prompt_file;
    LM_RETURN_IF_ERROR(ReadFile(o.prompt_file, bytes));
  } else if (!isatty(STDIN_FILENO)) {
    *name = "<stdin>";
    LM_RETURN_IF_ERROR(ReadFile("-", bytes));
  }
  return Status::OK();
}

Status WriteOut(const std::string& s) {
  if (s.empty()) return Status::OK();
  if (fwrite(s.data(), 1, s.size(), stdout) != s.size() || fflush(stdout) != 0)
    return Status::FromErrno("<stdout>", "write failed");
  return Status::OK();
}

std::string SampleJson(const InferenceModel& m, int k, uint64_t seed, const std::string& prompt,
                       size_t prompt_tokens, const std::string& text, const char* reason,
                       const GenerateStats& st) {
  Json j;
  j["sample"] = k;
  j["seed"] = seed;
  j["ckpt"] = m.step_dir;
  j["step"] = m.checkpoint.step;
  j["prompt"] = prompt;
  j["text"] = text;
  j["prompt_tokens"] = prompt_tokens;
  j["tokens"] = st.generated;
  j["stop_reason"] = reason;
  j["prompt_tokens_per_second"] = st.prefill_seconds > 0 ? st.prefilled / st.prefill_seconds : 0.0;
  j["tokens_per_second"] = st.generate_seconds > 0 ? st.generated / st.generate_seconds : 0.0;
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

// One sample: streamed to stdout as text, or one JSON line at its end.
Status OneSample(const Options& o, InferenceModel* m, Sampler* sampler, const GenerateOptions& go,
                 const std::vector<int32_t>& prompt, const std::string& prompt_text, int k) {
  const uint64_t seed = o.sc.seed + (uint64_t)k;
  sampler->Reseed(seed);
  if (!o.json && k > 0) LM_RETURN_IF_ERROR(WriteOut("\n---\n"));
  TextStream stream(o.stops);
  std::string text, out, piece;
  auto on_token = [&](int32_t t, bool* stop) -> Status {
    uint32_t u = (uint32_t)t;
    piece.clear();
    LM_RETURN_IF_ERROR(m->vocab.Decode(&u, 1, &piece));
    *stop = stream.Append(piece, &out);
    text += out;
    return o.json ? Status::OK() : WriteOut(out);
  };
  GenerateStats st;
  const ModelConfig& c = m->checkpoint.config;
  LM_RETURN_IF_ERROR(
      Generate(m->backend.get(), c.context, c.vocab_size, prompt, sampler, go, on_token, &st));
  stream.Finish(&out);
  text += out;
  if (!o.json) LM_RETURN_IF_ERROR(WriteOut(out));
  const char* reason = st.ended_by_eot ? "eot" : st.stopped ? "stop" : "length";
  if (o.json)
    LM_RETURN_IF_ERROR(
        WriteOut(SampleJson(*m, k, seed, prompt_text, prompt.size(), text, reason, st)));
  if (!o.quiet)
    fprintf(stderr,
            "lm-sample: sample %d: prompt %d tokens at %.0f tokens/s; generated %d tokens at "
            "%.1f tokens/s (%s%s)%s\n",
            k, st.prefilled, st.prefill_seconds > 0 ? st.prefilled / st.prefill_seconds : 0.0,
            st.generated, st.generate_seconds > 0 ? st.generated / st.generate_seconds : 0.0,
            reason, o.no_cache ? ", no KV cache" : "", st.slides ? " (window slid)" : "");
  return Status::OK();
}

void SayLoaded(const Options& o, const InferenceModel& m, double seconds, size_t prompt_tokens) {
  if (o.quiet) return;
  const ModelConfig& c = m.checkpoint.config;
  fprintf(stderr, "lm-sample: loaded %s (%s) in %.2f s on %s\n", m.step_dir.c_str(),
          c.Describe().c_str(), seconds, m.backend->Describe().c_str());
  fprintf(stderr, "lm-sample: seed %llu (%s)\n", (unsigned long long)o.sc.seed,
          o.sc.Describe().c_str());
  if ((int)prompt_tokens > c.context)
    fprintf(stderr, "lm-sample: the prompt's %zu tokens exceed the context; using its last %d\n",
            prompt_tokens, c.context);
}

Status Run(int argc, char** argv) {
  Options o;
  cli::Command cmd;
  cmd.synopsis = kSampleSynopsis;
  cmd.manual = kSampleManual;
  Declare(&cmd, &o);
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&cmd, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  LM_RETURN_IF_ERROR(Validate(cmd, &o));
  std::string prompt_bytes, prompt_name;
  LM_RETURN_IF_ERROR(ReadPrompt(cmd, o, &prompt_bytes, &prompt_name));

  auto t0 = Clock::now();
  InferenceOptions io;
  io.device = o.device;
  io.threads = o.threads;
  InferenceModel m;
  LM_RETURN_IF_ERROR(LoadInferenceModel(o.ckpt, io, &m));
  std::vector<int32_t> prompt;
  std::string prompt_text;
  LM_RETURN_IF_ERROR(PromptIds(prompt_name, prompt_bytes, !cmd.vm.count("prompt"), m.vocab, &prompt,
                               &prompt_text));
  SayLoaded(o, m, std::chrono::duration<double>(Clock::now() - t0).count(), prompt.size());

  GenerateOptions go;
  go.max_tokens = o.n;
  go.eot_id = (int32_t)m.vocab.eot_id();
  go.kv_cache = !o.no_cache;
  for (uint32_t id = 0; id < m.vocab.size(); id++)
    if (m.vocab.is_unused(id)) go.banned.push_back((int32_t)id);
  Sampler sampler(o.sc, m.checkpoint.config.vocab_size);
  for (int k = 0; k < o.num_samples; k++)
    LM_RETURN_IF_ERROR(OneSample(o, &m, &sampler, go, prompt, prompt_text, k));
  return Status::OK();
}

}  // namespace
}  // namespace lm

int main(int argc, char** argv) {
  return lm::cli::Main("lm-sample", argc, argv, lm::Run);
}
