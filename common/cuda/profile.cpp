// profile.cpp: the LM_CUDA_PROFILE table (profile.h). Events come from a pool
// and go back to it when their samples are folded into the totals, which
// happens every kBatch samples, so that a long run holds a bounded number.
#ifdef LM_HAVE_CUDA
#include "cuda/profile.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

namespace lm {
namespace cuda {

namespace {

constexpr size_t kBatch = 512;

struct Sample {
  std::string name;
  double flops;
  cudaEvent_t begin, end;
};

struct Total {
  double ms = 0, flops = 0;
  int64_t calls = 0;
};

struct Profile {
  std::mutex mu;
  std::vector<cudaEvent_t> pool;
  std::vector<Sample> pending;
  std::map<std::string, Total> totals;
  cudaEvent_t open = nullptr;  // the Begin event awaiting its End
  cudaStream_t stream = nullptr;
  int64_t dropped = 0;
  int64_t warmup_ops = 0;
  double warmup_ms = 0;

  cudaEvent_t Take() {
    if (!pool.empty()) {
      cudaEvent_t e = pool.back();
      pool.pop_back();
      return e;
    }
    cudaEvent_t e = nullptr;
    if (cudaEventCreate(&e) != cudaSuccess) return nullptr;
    return e;
  }

  void Fold() {
    if (pending.empty()) return;
    bool ok = cudaEventSynchronize(pending.back().end) == cudaSuccess;
    for (Sample& s : pending) {
      float ms = 0;
      if (ok && cudaEventElapsedTime(&ms, s.begin, s.end) == cudaSuccess) {
        Total& t = totals[s.name];
        t.ms += ms;
        t.flops += s.flops;
        t.calls++;
      } else {
        dropped++;
      }
      pool.push_back(s.begin);
      pool.push_back(s.end);
    }
    pending.clear();
    cudaGetLastError();  // a failed sample must not surface as the next launch's error
  }
};

Profile& P() {
  static Profile* p = new Profile;  // never destroyed: CUDA may be torn down first
  return *p;
}

bool& Flag() {
  static bool on = [] {
    const char* v = getenv("LM_CUDA_PROFILE");
    return v && v[0] == '1';
  }();
  return on;
}

}  // namespace

bool ProfileOn() {
  return Flag();
}

void ProfileEnable(bool on) {
  Flag() = on;
}

void ProfileBegin(cudaStream_t stream) {
  Profile& p = P();
  std::lock_guard<std::mutex> lk(p.mu);
  if (p.open) p.pool.push_back(p.open);  // an End that never came
  p.open = p.Take();
  p.stream = stream;
  if (p.open && cudaEventRecord(p.open, stream) != cudaSuccess) {
    p.pool.push_back(p.open);
    p.open = nullptr;
    cudaGetLastError();
  }
}

void ProfileEnd(const std::string& name, double flops) {
  Profile& p = P();
  std::lock_guard<std::mutex> lk(p.mu);
  cudaEvent_t begin = p.open;
  p.open = nullptr;
  cudaEvent_t end = begin ? p.Take() : nullptr;
  if (!end || cudaEventRecord(end, p.stream) != cudaSuccess) {
    if (begin) p.pool.push_back(begin);
    if (end) p.pool.push_back(end);
    p.dropped++;
    cudaGetLastError();
    return;
  }
  p.pending.push_back({name, flops, begin, end});
  if (p.pending.size() >= kBatch) p.Fold();
}

void ProfileWarmedUp() {
  Profile& p = P();
  std::lock_guard<std::mutex> lk(p.mu);
  p.Fold();
  for (const auto& [name, t] : p.totals) {
    p.warmup_ops += t.calls;
    p.warmup_ms += t.ms;
  }
  p.totals.clear();
}

namespace {
std::string Format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Format(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}
}  // namespace

std::string ProfileReport() {
  Profile& p = P();
  std::lock_guard<std::mutex> lk(p.mu);
  p.Fold();
  if (p.totals.empty() && p.dropped == 0) return "";
  std::vector<std::pair<std::string, Total>> rows(p.totals.begin(), p.totals.end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
  double all = 0;
  int64_t calls = 0, fallbacks = 0;
  for (const auto& r : rows) {
    all += r.second.ms;
    calls += r.second.calls;
    if (r.first.find("cublasGemmEx") != std::string::npos) fallbacks += r.second.calls;
  }
  std::string out =
      Format("lm cuda profile (LM_CUDA_PROFILE=1): %.1f ms of GPU time in %lld operations", all,
             (long long)calls);
  if (p.warmup_ops)
    out += Format(" (after %lld warm-up operations, %.1f ms, left out)", (long long)p.warmup_ops,
                  p.warmup_ms);
  if (p.dropped) out += Format(", %lld samples lost to CUDA errors", (long long)p.dropped);
  if (fallbacks) out += Format(", %lld products fell back to cublasGemmEx", (long long)fallbacks);
  out += Format("\n%10s %6s %8s %10s %8s  %s\n", "ms", "%", "calls", "us/call", "TFLOP/s",
                "operation");
  for (const auto& [name, t] : rows) {
    char rate[32] = "-";
    if (t.flops > 0 && t.ms > 0)
      snprintf(rate, sizeof rate, "%.4g", t.flops / (t.ms * 1e-3) / 1e12);
    out += Format("%10.2f %6.1f %8lld %10.1f %8s  ", t.ms, all > 0 ? 100 * t.ms / all : 0.0,
                  (long long)t.calls, 1e3 * t.ms / (double)t.calls, rate) +
           name + "\n";
  }
  p.totals.clear();
  p.dropped = p.warmup_ops = 0;
  p.warmup_ms = 0;
  return out;
}

}  // namespace cuda
}  // namespace lm
#endif  // LM_HAVE_CUDA
