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

double DataConstrainedLoss(double params, double tokens, double unique, double tokens_per_param) {
  // Chinchilla's fit (Hoffmann et al. 2022, approach 3), as Muennighoff et al. use it.
  const double E = 1.69, A = 406.4, B = 410.7, alpha = 0.34, beta = 0.28;
  // Half-lives of repeated tokens and of excess parameters (their fitted R*_D, R*_N).
  const double rd_star = 15.387756, rn_star = 5.309743;
  double d = tokens, n = params;
  if (unique > 0 && tokens > unique) {  // repeated epochs are worth less and less
    const double rd = tokens / unique - 1;
    d = unique + unique * rd_star * (1 - std::exp(-rd / rd_star));
  }
  if (unique > 0) {  // parameters beyond the compute-optimal ones for the unique data
    const double un = std::min(params, unique / tokens_per_param);
    const double rn = params / un - 1;
    n = un + un * rn_star * (1 - std::exp(-rn / rn_star));
  }
  return E + A / std::pow(n, alpha) + B / std::pow(d, beta);
}

namespace {

// Probes one candidate; a shape that does not fit in memory is noted, not an error.
Status ProbeCandidate(const AutoSizeOptions& opt, int B, AutoSizeCandidate* c, bool* fits,
                      std::string* device) {
  double tps = 0;
  Status s = Probe(opt, c->config, B, &tps, device);
  *fits = s.ok();
  if (!s.ok()) {
    if (s.code() != Status::kResource) return s.With("auto-size probe of " + c->name);
    c->note = "does not fit: " + s.message();
    return Status::OK();
  }
  c->tokens_per_second = tps;
  c->tokens_in_budget = tps * opt.budget_seconds * opt.usable_fraction * opt.ranks;
  if (opt.unique_tokens > 0) c->epochs = c->tokens_in_budget / opt.unique_tokens;
  return Status::OK();
}

// The compute rule: the largest shape that sees its compute-optimal tokens.
// Probing stops at the first shape that falls short or does not fit.
Status ProbeLadder(const AutoSizeOptions& opt, int B, AutoSizeResult* out) {
  bool short_fall = false;
  for (size_t i = 0; i < out->candidates.size(); i++) {
    AutoSizeCandidate& c = out->candidates[i];
    c.optimal_tokens = opt.tokens_per_param * (double)c.config.num_params();
    if (short_fall) {
      c.note = "not probed: a smaller shape already cannot reach its optimal tokens";
      continue;
    }
    bool fits = false;
    LM_RETURN_IF_ERROR(ProbeCandidate(opt, B, &c, &fits, &out->device));
    if (fits && c.tokens_in_budget >= c.optimal_tokens)
      out->chosen = (int)i;
    else
      short_fall = true;  // larger shapes fall shorter still, or do not fit either
  }
  return Status::OK();
}

// The data rule, when the compute rule's choice would repeat the data more
// than useful_epochs times: the lowest data-constrained loss among the probed
// shapes and the larger ones, probed while the predicted loss keeps falling.
Status ChooseForData(const AutoSizeOptions& opt, int B, AutoSizeResult* out) {
  if (opt.unique_tokens <= 0 || out->chosen < 0) return Status::OK();
  if (out->candidates[out->chosen].epochs <= opt.useful_epochs) return Status::OK();
  auto loss = [&](AutoSizeCandidate& c) {
    c.predicted_loss = DataConstrainedLoss((double)c.config.num_params(), c.tokens_in_budget,
                                           opt.unique_tokens, opt.tokens_per_param);
    return c.predicted_loss;
  };
  int best = out->chosen;
  double best_loss = loss(out->candidates[best]);
  for (size_t i = 0; i < out->candidates.size(); i++) {
    AutoSizeCandidate& c = out->candidates[i];
    if (c.tokens_per_second <= 0 && (int)i > out->chosen) {
      if (!c.note.empty() && c.note.rfind("does not fit", 0) == 0) break;
      bool fits = false;
      c.note.clear();
      LM_RETURN_IF_ERROR(ProbeCandidate(opt, B, &c, &fits, &out->device));
      if (!fits) break;
    }
    if (c.tokens_per_second <= 0) continue;
    const double l = loss(c);
    if (l < best_loss - 1e-9) {  // a tie keeps the smaller shape
      best = (int)i;
      best_loss = l;
    } else if ((int)i > best) {
      break;  // past the minimum
    }
  }
  out->chosen = best;
  out->data_limited = true;
  return Status::OK();
}

}  // namespace

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
  LM_RETURN_IF_ERROR(ProbeLadder(opt, B, out));
  LM_RETURN_IF_ERROR(ChooseForData(opt, B, out));
  const double usable = opt.budget_seconds * opt.usable_fraction;
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
  } else if (out->data_limited) {
    const AutoSizeCandidate& c = out->candidates[out->chosen];
    snprintf(buf, sizeof buf,
             "%.1fM parameters: the data limits this run, not the compute (%.3g unique training "
             "tokens; the compute-optimal shape would pass %.0f epochs), and this shape has the "
             "lowest data-constrained loss (Muennighoff et al. 2023): %.3g tokens in the budget, "
             "%.1f epochs",
             c.config.num_params() / 1e6, opt.unique_tokens, opt.useful_epochs, c.tokens_in_budget,
             c.epochs);
  } else {
    const AutoSizeCandidate& c = out->candidates[out->chosen];
    // The probe measures one device; every rank trains at that rate.
    const std::string ranks = opt.ranks > 1 ? " x " + std::to_string(opt.ranks) + " ranks" : "";
    snprintf(buf, sizeof buf,
             "%.1fM parameters, the largest shape whose compute-optimal %.3g tokens "
             "(%.0f per parameter) fit the budget: %.0f tokens/s x %.0f s usable%s = %.3g tokens",
             c.config.num_params() / 1e6, c.optimal_tokens, opt.tokens_per_param,
             c.tokens_per_second, usable, ranks.c_str(), c.tokens_in_budget);
  }
  out->reason = buf;
  return Status::OK();
}

std::string AutoSizeResult::ToJson() const {
  nlohmann::json j;
  j["device"] = device;
  j["reason"] = reason;
  j["chosen"] = chosen >= 0 ? nlohmann::json(candidates[chosen].name) : nlohmann::json();
  j["data_limited"] = data_limited;
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
    if (c.epochs > 0) e["epochs"] = c.epochs;
    if (c.predicted_loss > 0) e["predicted_loss"] = c.predicted_loss;
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
      char extra[64] = "";
      if (c.epochs > 0) snprintf(extra, sizeof extra, "  %.1f epochs", c.epochs);
      snprintf(buf, sizeof buf,
               "  %s %-10s %8.1fM params %10.0f tok/s  budget %.3g tok  optimal %.3g tok%s\n",
               (int)i == chosen ? "*" : " ", c.name.c_str(), c.config.num_params() / 1e6,
               c.tokens_per_second, c.tokens_in_budget, c.optimal_tokens, extra);
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
