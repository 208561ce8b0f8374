// check.cpp: CUDA error codes as lm::Status (check.h).
#ifdef LM_HAVE_CUDA
#include "cuda/check.h"

#include <cstdlib>
#include <cstring>

namespace lm {
namespace cuda {

Status CudaError(cudaError_t e, const char* what, const char* file, int line) {
  const char* base = strrchr(file, '/');
  std::string msg = std::string(base ? base + 1 : file) + ":" + std::to_string(line) + ": " + what +
                    ": " + cudaGetErrorString(e);
  if (e == cudaErrorMemoryAllocation || e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver)
    return Status::Resource(msg);
  return Status::Invalid(msg);
}

bool SyncEachLaunch() {
  static const bool on = [] {
    const char* v = getenv("LM_CUDA_SYNC");
    return v && v[0] == '1';
  }();
  return on;
}

Status CheckLaunch(const char* kernel, const char* file, int line, double flops) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    return CudaError(e, (std::string("launch of ") + kernel).c_str(), file, line);
  if (ProfileOn()) ProfileEnd(kernel, flops);
  if (SyncEachLaunch()) {
    e = cudaDeviceSynchronize();
    if (e != cudaSuccess)
      return CudaError(e, (std::string("running ") + kernel).c_str(), file, line);
  }
  return Status::OK();
}

}  // namespace cuda
}  // namespace lm
#endif  // LM_HAVE_CUDA
