// cuda_backend.h: the CUDA backend (bf16 mixed precision, cuBLASLt, cuDNN
// attention), which engine/make_backend.h chooses, and the device checks and
// the peak-rate table behind PeakFlops (for MFU), exposed so that tests can
// check them without a GPU (device_info.cpp).
#pragma once

#include <memory>
#include <string>

#include "backend/backend.h"
#include "util/status.h"

namespace lm {

// Fails (Resource) when no usable GPU is visible.
Status NewCudaBackend(std::unique_ptr<Backend>* out);
namespace cuda {

// The oldest GPU generation the build has machine code for: Ampere (8.0).
constexpr int kMinMajor = 8;
// Invalid, with one line naming the GPU and --device cpu, when a GPU of compute
// capability major.minor is older than that.
Status CheckComputeCapability(const std::string& name, int major, int minor);

// Dense bf16 peak FLOP/s (fp32 accumulation) for a device name as
// cudaGetDeviceProperties reports it ("NVIDIA H200", "NVIDIA A100-SXM4-80GB",
// "NVIDIA GeForce RTX 4090"), 0 when the name is not in the table (MFU is then
// shown as unknown). The table (device_info.cpp, from the datasheets): H100/H200
// SXM 989e12, H100 PCIe 756e12, H100/H200 NVL 835e12, B200 2250e12, A100/A800
// 312e12, A6000 154.8e12, A40 149.7e12, A30 165e12, A10 125e12, L40S 362.05e12,
// L40 181e12, L4 121e12, RTX 6000 Ada 364.2e12, RTX 5090 209.5e12, RTX 4090
// 165.2e12, RTX 3090 71e12.
double PeakFlopsForName(const std::string& name);
// The override from the environment: LM_PEAK_FLOPS (e.g. "989e12" or "989T");
// returns false when unset, *ok false when set but not a positive number.
bool PeakFlopsFromEnv(double* flops, bool* ok);

}  // namespace cuda
}  // namespace lm
