// device_info.cpp: what the CUDA backend knows of GPUs without running
// anything on them (cuda_backend.h): the compute capability it needs, and the
// dense bf16 peak rates behind PeakFlops (MFU).
#ifdef LM_HAVE_CUDA
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "cuda/cuda_backend.h"

namespace lm {
namespace cuda {

namespace {
struct Peak {
  const char* name;  // words of the device name; the first match wins
  double flops;
};
// Dense bf16 tensor-core rates with fp32 accumulation, from the vendors'
// datasheets and architecture whitepapers (sparsity figures halved). More
// specific names first ("H100 PCIe" before "H100").
constexpr Peak kPeaks[] = {
    {"H100 PCIe", 756e12},  {"H100 NVL", 835e12},       {"H200 NVL", 835e12},
    {"H100", 989e12},       {"H200", 989e12},           {"GH200", 989e12},
    {"B200", 2250e12},      {"A100", 312e12},           {"A800", 312e12},
    {"A6000", 154.8e12},    {"A40", 149.7e12},          {"A30", 165e12},
    {"A10", 125e12},        {"L40S", 362.05e12},        {"L40", 181e12},
    {"L4", 121e12},         {"RTX 6000 Ada", 364.2e12}, {"RTX 5090", 209.5e12},
    {"RTX 4090", 165.2e12}, {"RTX 3090", 71e12},
};
}  // namespace

namespace {
// `word` in `name` as a whole word: "A40" in "NVIDIA A40", not in "RTX A4000";
// "H200" not in "GH200".
bool HasWord(const std::string& name, const std::string& word) {
  auto alnum = [](char c) { return std::isalnum((unsigned char)c) != 0; };
  for (size_t at = name.find(word); at != std::string::npos; at = name.find(word, at + 1)) {
    const size_t end = at + word.size();
    if ((at == 0 || !alnum(name[at - 1])) && (end == name.size() || !alnum(name[end]))) return true;
  }
  return false;
}
}  // namespace

double PeakFlopsForName(const std::string& name) {
  for (const Peak& p : kPeaks)
    if (HasWord(name, p.name)) return p.flops;
  return 0;
}

bool PeakFlopsFromEnv(double* flops, bool* ok) {
  const char* v = getenv("LM_PEAK_FLOPS");
  if (!v || !*v) return false;
  char* end = nullptr;
  double x = strtod(v, &end);
  if (end && (*end == 'T' || *end == 't')) {
    x *= 1e12;
    end++;
  }
  *ok = end && *end == 0 && std::isfinite(x) && x > 0;
  *flops = *ok ? x : 0;
  return true;
}

Status CheckComputeCapability(const std::string& name, int major, int minor) {
  if (major >= kMinMajor) return Status::OK();
  return Status::Invalid("cuda backend: " + name + " (compute capability " + std::to_string(major) +
                         "." + std::to_string(minor) + ") is older than the " +
                         std::to_string(kMinMajor) +
                         ".0 (Ampere) this backend needs; use --device cpu");
}

}  // namespace cuda
}  // namespace lm
#endif  // LM_HAVE_CUDA
