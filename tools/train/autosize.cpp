// autosize.cpp: throughput probes of candidate shapes, and the choice.
#include "autosize.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>

#include "engine/make_backend.h"
#include "model/params.h"

namespace lm {

namespace {

ModelConfig Shape(int vocab, int context, int dim, int layers, int heads) {
  ModelConfig c;
  c.vocab_size = vocab;
  c.dim = dim;
  c.n_layers = layers;
  c.n_heads = heads;
  c.n_kv_heads = heads;
  c.ffn_dim = DefaultFfnDim(dim);
  c.context = context;
  c.tied_embeddings = true;
  c.Pad();
  return c;
}

// Measures training tokens/s of one shape: one warm-up step, then full steps
// until probe_seconds have passed (at least two).
Status Probe(const AutoSizeOptions& opt, const ModelConfig& cfg, int B, double* tps,
             std::string* device) {
  std::unique_ptr<Backend> be;
  LM_RETURN_IF_ERROR(MakeBackend(opt.device, &be));
  BackendOptions bo;
  bo.max_batch = B;
  bo.max_seq = cfg.context;
  LM_RETURN_IF_ERROR(be->Init(cfg, bo));
  *device = be->Describe();
  ParamLayout layout = MakeParamLayout(cfg);
  std::vector<float> params(layout.total);
  InitParams(cfg, layout, 1, params.data());
  LM_RETURN_IF_ERROR(be->SetParams(params.data()));
  params.clear();
  params.shrink_to_fit();
  const int T = cfg.context;
  std::vector<int32_t> in((size_t)B * T), tg((size_t)B * T);
  std::mt19937 rng(7);
  for (size_t i = 0; i < in.size(); i++) {
    in[i] = (int32_t)(rng() % (uint32_t)cfg.vocab_size);
    tg[i] = (int32_t)(rng() % (uint32_t)cfg.vocab_size);
  }
  AdamWConfig ac;
  auto step = [&]() -> Status {
    float loss = 0, gn = 0;
    bool skipped = false;
    LM_RETURN_IF_ERROR(be->ZeroGrad());
    LM_RETURN_IF_ERROR(be->ForwardBackward(in.data(), tg.data(), B, T, 1.0f, &loss));
    return be->OptimizerStep(ac, &gn, &skipped);
  };
  LM_RETURN_IF_ERROR(step());  // warm-up: allocations, kernel selection
  auto t0 = std::chrono::steady_clock::now();
  int steps = 0;
  double el = 0;
  while (steps < 2 || el < opt.probe_seconds) {
    LM_RETURN_IF_ERROR(step());
    steps++;
    el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  *tps = (double)steps * B * T / el;
  return Status::OK();
}

}  // namespace

std::vector<AutoSizeCandidate> AutoSizeLadder(int vocab_size, int context) {
  struct S {
    int dim, layers, heads;
  };
  const S ladder[] = {{256, 4, 4},    {384, 6, 6},    {512, 8, 8},    {640, 10, 10},
                      {768, 12, 12},  {1024, 16, 16}, {1024, 24, 16}, {1280, 24, 20},
                      {1536, 24, 24}, {2048, 24, 32}};
  std::vector<AutoSizeCandidate> out;
  for (const S& s : ladder) {
    AutoSizeCandidate c;
    c.name = "d" + std::to_string(s.dim) + "-l" + std::to_string(s.layers);
    c.config = Shape(vocab_size, context, s.dim, s.layers, s.heads);
    out.push_back(c);
  }
  return out;
}

Status AutoSize(const AutoSizeOptions& opt, AutoSizeResult* out) {
  if (opt.budget_seconds <= 0) return Status::Invalid("auto-size: no time budget");
  if (opt.vocab_size <= 0) return Status::Invalid("auto-size: no vocabulary size");
  *out = AutoSizeResult();
  out->candidates = AutoSizeLadder(opt.vocab_size, opt.context);
  {
    std::unique_ptr<Backend> be;
    LM_RETURN_IF_ERROR(MakeBackend(opt.device, &be));
    out->device = be->Describe();
  }
  bool on_gpu = out->device.rfind("cuda", 0) == 0;
  int B = opt.micro_batch > 0 ? opt.micro_batch : (on_gpu ? 8 : 4);
  const double usable = opt.budget_seconds * opt.usable_fraction;
  bool short_fall = false;
  for (size_t i = 0; i < out->candidates.size(); i++) {
    AutoSizeCandidate& c = out->candidates[i];
    c.optimal_tokens = opt.tokens_per_param * (double)c.config.num_params();
    if (short_fall) {
      c.note = "not probed: a smaller shape already cannot reach its optimal tokens";
      continue;
    }
    double tps = 0;
    Status s = Probe(opt, c.config, B, &tps, &out->device);
    if (!s.ok()) {
      if (s.code() != Status::kResource) return s.With("auto-size probe of " + c.name);
      c.note = "does not fit: " + s.message();
      short_fall = true;  // larger shapes will not fit either
      continue;
    }
    c.tokens_per_second = tps;
    c.tokens_in_budget = tps * usable * opt.ranks;
    if (c.tokens_in_budget >= c.optimal_tokens) {
      out->chosen = (int)i;
    } else {
      short_fall = true;
    }
  }
  char buf[512];
  if (out->chosen < 0) {
    // Even the smallest shape cannot see its optimal token count: train it anyway,
    // it is the best use of a short budget among the candidates.
    for (size_t i = 0; i < out->candidates.size(); i++)
      if (out->candidates[i].tokens_per_second > 0) {
        out->chosen = (int)i;
        break;
      }
    if (out->chosen < 0)
      return Status::Resource("auto-size: no candidate shape fits on " + out->device);
    const AutoSizeCandidate& c = out->candidates[out->chosen];
    snprintf(buf, sizeof buf,
             "the smallest shape; at %.0f tokens/s the budget allows %.3g tokens, "
             "below its compute-optimal %.3g (%.0f per parameter)",
             c.tokens_per_second, c.tokens_in_budget, c.optimal_tokens, opt.tokens_per_param);
  } else {
    const AutoSizeCandidate& c = out->candidates[out->chosen];
    snprintf(buf, sizeof buf,
             "%.1fM parameters, the largest shape whose compute-optimal %.3g tokens "
             "(%.0f per parameter) fit the budget: %.0f tokens/s x %.0f s usable = %.3g tokens",
             c.config.num_params() / 1e6, c.optimal_tokens, opt.tokens_per_param,
             c.tokens_per_second, usable, c.tokens_in_budget);
  }
  out->reason = buf;
  return Status::OK();
}

std::string AutoSizeResult::ToJson() const {
  nlohmann::json j;
  j["device"] = device;
  j["reason"] = reason;
  j["chosen"] = chosen >= 0 ? nlohmann::json(candidates[chosen].name) : nlohmann::json();
  for (const AutoSizeCandidate& c : candidates) {
    nlohmann::json e;
    e["name"] = c.name;
    e["layers"] = c.config.n_layers;
    e["dim"] = c.config.dim;
    e["heads"] = c.config.n_heads;
    e["ffn_dim"] = c.config.ffn_dim;
    e["context"] = c.config.context;
    e["params"] = c.config.num_params();
    e["tokens_per_second"] = c.tokens_per_second;
    e["tokens_in_budget"] = c.tokens_in_budget;
    e["optimal_tokens"] = c.optimal_tokens;
    if (!c.note.empty()) e["note"] = c.note;
    j["candidates"].push_back(e);
  }
  return j.dump(2) + "\n";
}

std::string AutoSizeResult::Table() const {
  std::string t = "auto-size on " + device + ":\n";
  char buf[256];
  for (size_t i = 0; i < candidates.size(); i++) {
    const AutoSizeCandidate& c = candidates[i];
    if (c.tokens_per_second > 0) {
      snprintf(buf, sizeof buf,
               "  %s %-10s %8.1fM params %10.0f tok/s  budget %.3g tok  optimal %.3g tok\n",
               (int)i == chosen ? "*" : " ", c.name.c_str(), c.config.num_params() / 1e6,
               c.tokens_per_second, c.tokens_in_budget, c.optimal_tokens);
    } else {
      snprintf(buf, sizeof buf, "    %-10s %8.1fM params  %s\n", c.name.c_str(),
               c.config.num_params() / 1e6, c.note.c_str());
    }
    t += buf;
  }
  if (chosen >= 0) t += "chose " + candidates[chosen].name + ": " + reason + "\n";
  return t;
}

}  // namespace lm
