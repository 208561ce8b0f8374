// sampler.cpp: next-token selection (see sampler.h for the order of the steps).
#include "model/sampler.h"

#include "util/hash.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace lm {

namespace {
inline uint64_t Rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

std::string Num(double v) {
  char b[32];
  snprintf(b, sizeof b, "%g", v);
  return b;
}
}  // namespace

void Rng::Seed(uint64_t seed) {
  uint64_t x = seed;
  for (auto& s : s_) s = SplitMix64Next(&x);
}

uint64_t Rng::Next() {
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

Status SamplerConfig::Validate() const {
  if (!(temperature >= 0) || !std::isfinite(temperature))
    return Status::Invalid("temperature " + Num(temperature) + ": expected a value >= 0");
  if (top_k < 0)
    return Status::Invalid("top_k " + std::to_string(top_k) + ": expected >= 0 (0: off)");
  if (!(top_p > 0 && top_p <= 1))
    return Status::Invalid("top_p " + Num(top_p) + ": expected a value in (0, 1] (1: off)");
  if (!(min_p >= 0 && min_p <= 1))
    return Status::Invalid("min_p " + Num(min_p) + ": expected a value in [0, 1] (0: off)");
  if (!(repeat_penalty > 0) || !std::isfinite(repeat_penalty))
    return Status::Invalid("repeat_penalty " + Num(repeat_penalty) +
                           ": expected a value > 0 (1: off)");
  if (repeat_last < 0)
    return Status::Invalid("repeat_last " + std::to_string(repeat_last) + ": expected >= 0");
  return Status::OK();
}

std::string SamplerConfig::Describe() const {
  std::string s = temperature == 0 ? "greedy" : "temperature " + Num(temperature);
  if (temperature != 0) {
    if (top_k > 0) s += ", top-k " + std::to_string(top_k);
    if (top_p < 1) s += ", top-p " + Num(top_p);
    if (min_p > 0) s += ", min-p " + Num(min_p);
  }
  if (repeat_penalty != 1)
    s += ", repeat penalty " + Num(repeat_penalty) + " over " + std::to_string(repeat_last);
  return s;
}

Sampler::Sampler(const SamplerConfig& cfg, int vocab_size)
    : cfg_(cfg), vocab_(vocab_size), rng_(cfg.seed) {}

Status Sampler::Sample(const float* logits, const int32_t* history, size_t n, int32_t* id) {
  const int V = vocab_;
  work_.assign(logits, logits + V);
  for (int v = 0; v < V; v++)
    if (std::isnan(work_[v])) return Status::Invalid("the model's logits contain NaN");

  if (cfg_.repeat_penalty != 1.0f && cfg_.repeat_last > 0 && n > 0) {
    size_t from = n > (size_t)cfg_.repeat_last ? n - (size_t)cfg_.repeat_last : 0;
    seen_.assign(history + from, history + n);
    std::sort(seen_.begin(), seen_.end());
    seen_.erase(std::unique(seen_.begin(), seen_.end()), seen_.end());
    for (int32_t t : seen_) {
      if (t < 0 || t >= V) continue;
      float& l = work_[t];
      l = l > 0 ? l / cfg_.repeat_penalty : l * cfg_.repeat_penalty;
    }
  }

  int best = -1;
  for (int v = 0; v < V; v++)
    if (std::isfinite(work_[v]) && (best < 0 || work_[v] > work_[best])) best = v;
  if (best < 0) return Status::Invalid("the model's logits are all infinite");
  if (cfg_.temperature == 0) {
    *id = best;
    return Status::OK();
  }

  // Softmax in double, relative to the largest logit so nothing overflows.
  const double inv_t = 1.0 / cfg_.temperature;
  const double top = work_[best];
  cand_.clear();
  double sum = 0;
  for (int v = 0; v < V; v++) {
    if (!std::isfinite(work_[v])) continue;
    double e = std::exp(((double)work_[v] - top) * inv_t);
    if (e > 0) {
      cand_.push_back({e, v});
      sum += e;
    }
  }
  auto by_prob = [](const std::pair<double, int>& a, const std::pair<double, int>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t keep = cand_.size();
  // A top-k that keeps every candidate is no filter: the draw must then be
  // the one --top-k 0 makes (id order), so that a seed gives the same text.
  const bool cut_k = cfg_.top_k > 0 && (size_t)cfg_.top_k < keep;
  const bool need_order = cut_k || cfg_.top_p < 1 || cfg_.min_p > 0;
  if (need_order) {
    if (cut_k) {
      keep = (size_t)cfg_.top_k;
      std::partial_sort(cand_.begin(), cand_.begin() + keep, cand_.end(), by_prob);
      cand_.resize(keep);
    } else {
      std::sort(cand_.begin(), cand_.end(), by_prob);
    }
    sum = 0;
    for (size_t i = 0; i < keep; i++) sum += cand_[i].first;
    if (cfg_.top_p < 1) {
      double acc = 0, want = cfg_.top_p * sum;
      size_t k = 0;
      while (k < keep) {
        acc += cand_[k].first;
        k++;
        if (acc >= want) break;
      }
      keep = k;
    }
    if (cfg_.min_p > 0) {
      double floor_p = cfg_.min_p * cand_[0].first;
      size_t k = 1;  // the most probable id always stays
      while (k < keep && cand_[k].first >= floor_p) k++;
      keep = k;
    }
    sum = 0;
    for (size_t i = 0; i < keep; i++) sum += cand_[i].first;
  }

  // Inverse CDF over the kept ids in their (fixed) order.
  double r = rng_.Uniform() * sum;
  double acc = 0;
  for (size_t i = 0; i < keep; i++) {
    acc += cand_[i].first;
    if (r < acc) {
      *id = cand_[i].second;
      return Status::OK();
    }
  }
  *id = cand_[keep - 1].second;  // r landed on the rounding slack at the end
  return Status::OK();
}

size_t Utf8CompletePrefix(const std::string& s, size_t from, size_t to) {
  // Walk back over at most 3 continuation bytes to the lead byte of the last character.
  size_t i = to;
  int cont = 0;
  while (i > from && cont < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
    i--;
    cont++;
  }
  if (i == from) return to;  // only continuation bytes: stray, nothing to wait for
  unsigned char lead = (unsigned char)s[i - 1];
  size_t need = lead >= 0xF0 && lead <= 0xF7 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  if (lead >= 0xF8) need = 1;  // not a lead byte in UTF-8: nothing will complete it
  if (need > 1 && (size_t)cont + 1 < need) return i - 1;
  return to;
}

TextStream::TextStream(std::vector<std::string> stops) : stops_(std::move(stops)) {
  stops_.erase(std::remove(stops_.begin(), stops_.end(), std::string()), stops_.end());
}

bool TextStream::Append(const std::string& bytes, std::string* out) {
  out->clear();
  if (stopped_) return true;
  text_ += bytes;
  // A stop string cannot start before emitted_: whatever could have begun one
  // was held back.
  size_t first = std::string::npos;
  for (const std::string& s : stops_) {
    size_t at = text_.find(s, emitted_);
    if (at < first) first = at;
  }
  if (first != std::string::npos) {
    out->assign(text_, emitted_, first - emitted_);
    emitted_ = first;
    stopped_ = true;
    return true;
  }
  size_t limit = text_.size();
  for (const std::string& s : stops_) {
    size_t longest = std::min(s.size() - 1, text_.size() - emitted_);
    for (size_t k = longest; k > 0; k--) {
      if (text_.compare(text_.size() - k, k, s, 0, k) == 0) {
        limit = std::min(limit, text_.size() - k);
        break;
      }
    }
  }
  limit = Utf8CompletePrefix(text_, emitted_, limit);
  out->assign(text_, emitted_, limit - emitted_);
  emitted_ = limit;
  return false;
}

void TextStream::Finish(std::string* out) {
  out->clear();
  if (stopped_) return;
  out->assign(text_, emitted_, std::string::npos);
  emitted_ = text_.size();
}

}  // namespace lm
