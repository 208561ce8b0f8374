// cuda_backend.h: the CUDA backend (bf16 mixed precision, cuBLASLt), which
// engine/make_backend.h chooses, and the peak-rate table behind PeakFlops
// (for MFU), exposed so that tests can check it without a GPU.
#pragma once

#include <memory>
#include <string>

#include "backend/backend.h"
#include "util/status.h"

namespace lm {

// Fails (Resource) when no usable GPU is visible.
Status NewCudaBackend(std::unique_ptr<Backend>* out);
namespace cuda {

// Dense bf16 peak FLOP/s for a device name as cudaGetDeviceProperties reports it
// ("NVIDIA H200", "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB"), 0 when the
// name is not in the table (MFU is then shown as unknown):
//   H100 / H200 SXM        989e12
//   H100 PCIe              756e12
//   H100 NVL / H200 NVL    835e12
//   A100                   312e12
double PeakFlopsForName(const std::string& name);
// The override from the environment: LM_PEAK_FLOPS (e.g. "989e12" or "989T");
// returns false when unset, *ok false when set but not a positive number.
bool PeakFlopsFromEnv(double* flops, bool* ok);

}  // namespace cuda
}  // namespace lm
