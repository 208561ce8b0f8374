// generate.cpp: the generation loop (generate.h).
#include "engine/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

namespace lm {

namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Holds the window the model sees and produces the logits for the next token,
// with the KV cache or, without it, by a full forward pass.
class Window {
 public:
  Window(Backend* be, int context, int vocab, bool cache)
      : be_(be), ctx_(context), vocab_(vocab), cache_(cache), logits_((size_t)vocab) {}

  // Starts from these tokens (the last `context` of them); logits() is then
  // the distribution after the last one.
  Status Prefill(const std::vector<int32_t>& tokens) {
    size_t from = tokens.size() > (size_t)ctx_ ? tokens.size() - (size_t)ctx_ : 0;
    window_.assign(tokens.begin() + (long)from, tokens.end());
    return Refill();
  }
  // Appends one token, sliding the window to half a context first when full.
  Status Push(int32_t t) {
    if ((int)window_.size() == ctx_) {
      size_t keep = std::max<size_t>(1, (size_t)ctx_ / 2);
      window_.erase(window_.begin(), window_.end() - (long)(keep - 1));
      window_.push_back(t);
      slides_++;
      return Refill();
    }
    window_.push_back(t);
    if (!cache_) return Refill();
    return be_->Decode(&t, 1, logits_.data());
  }
  float* logits() { return logits_.data(); }
  int size() const { return (int)window_.size(); }
  int slides() const { return slides_; }

 private:
  Status Refill() {
    if (cache_) {
      LM_RETURN_IF_ERROR(be_->ResetCache());
      return be_->Decode(window_.data(), (int)window_.size(), logits_.data());
    }
    const int T = (int)window_.size();
    all_.resize((size_t)T * (size_t)vocab_);
    LM_RETURN_IF_ERROR(be_->ForwardLogits(window_.data(), 1, T, all_.data()));
    std::memcpy(logits_.data(), all_.data() + (size_t)(T - 1) * vocab_, (size_t)vocab_ * 4);
    return Status::OK();
  }
  Backend* be_;
  int ctx_, vocab_;
  bool cache_;
  std::vector<int32_t> window_;
  std::vector<float> logits_, all_;
  int slides_ = 0;
};

}  // namespace

Status Generate(Backend* backend, int context, int vocab_size, const std::vector<int32_t>& prompt,
                Sampler* sampler, const GenerateOptions& opt, const OnToken& on_token,
                GenerateStats* stats) {
  *stats = GenerateStats();
  if (prompt.empty()) return Status::Invalid("generation needs a prompt of at least one token");
  Window win(backend, context, vocab_size, opt.kv_cache);
  auto t0 = Clock::now();
  LM_RETURN_IF_ERROR(win.Prefill(prompt));
  stats->prefill_seconds = Since(t0);
  stats->prefilled = win.size();
  std::vector<int32_t> history = prompt;  // what the repeat penalty looks back on
  auto t1 = Clock::now();
  for (int i = 0; i < opt.max_tokens; i++) {
    for (int32_t id : opt.banned) win.logits()[id] = -INFINITY;
    int32_t t;
    LM_RETURN_IF_ERROR(sampler->Sample(win.logits(), history.data(), history.size(), &t));
    stats->generated++;
    if (t == opt.eot_id) {
      stats->ended_by_eot = true;
      break;
    }
    bool stop = false;
    LM_RETURN_IF_ERROR(on_token(t, &stop));
    if (stop) {
      stats->stopped = true;
      break;
    }
    history.push_back(t);
    if (i + 1 < opt.max_tokens) LM_RETURN_IF_ERROR(win.Push(t));
  }
  stats->generate_seconds = Since(t1);
  stats->slides = win.slides();
  return Status::OK();
}

}  // namespace lm
