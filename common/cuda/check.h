// check.h: CUDA and cuBLAS return codes turned into lm::Status, for the CUDA
// backend (common/cuda/) and the kernel-check program (tests/gpu/). Every CUDA
// call goes through one of these macros; a launch is followed by
// LM_CUDA_LAUNCHED(name), which also synchronizes when LM_CUDA_SYNC=1 is set in
// the environment, so that an asynchronous fault is reported at the kernel that
// caused it rather than at some later call.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "cuda/profile.h"
#include "util/status.h"

namespace lm {
namespace cuda {

// "file.cu:42: cudaMalloc(...): out of memory" as a Status (Resource for
// allocation failures and missing devices, Invalid otherwise).
Status CudaError(cudaError_t e, const char* what, const char* file, int line);
// The last launch error of `kernel`; with LM_CUDA_SYNC=1, also waits for it.
// With LM_CUDA_PROFILE=1, ends the kernel's timing (profile.h), counting `flops`.
Status CheckLaunch(const char* kernel, const char* file, int line, double flops = 0);
// True when LM_CUDA_SYNC=1 (read once).
bool SyncEachLaunch();

}  // namespace cuda
}  // namespace lm

#define LM_CUDA_RETURN(expr)                                                                  \
  do {                                                                                        \
    cudaError_t _lm_e = (expr);                                                               \
    if (_lm_e != cudaSuccess) return ::lm::cuda::CudaError(_lm_e, #expr, __FILE__, __LINE__); \
  } while (0)

#ifndef LM_CUDA_LAUNCHED
#define LM_CUDA_LAUNCHED(name) LM_RETURN_IF_ERROR(::lm::cuda::CheckLaunch(name, __FILE__, __LINE__))
// The same for a kernel whose floating-point work the profile should rate.
#define LM_CUDA_LAUNCHED_FLOPS(name, flops) \
  LM_RETURN_IF_ERROR(::lm::cuda::CheckLaunch(name, __FILE__, __LINE__, flops))
#endif
