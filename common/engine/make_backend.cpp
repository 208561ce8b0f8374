// make_backend.cpp: choosing a backend by name (make_backend.h).
#include "engine/make_backend.h"

#include "cpu/backend_cpu.h"
#ifdef LM_HAVE_CUDA
#include "cuda/cuda_backend.h"
#include "cuda/profile.h"
#endif

namespace lm {

bool HaveCudaBackend() {
#ifdef LM_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

Status MakeBackend(const std::string& device, std::unique_ptr<Backend>* out, std::string* chosen) {
  std::string ignored;
  if (!chosen) chosen = &ignored;
  *chosen = "cpu";
  if (device == "cpu") {
    *out = NewCpuBackend();
    return Status::OK();
  }
  if (device != "cuda" && device != "auto")
    return Status::Usage("unknown device '" + device + "' (expected cpu, cuda or auto)");
#ifdef LM_HAVE_CUDA
  Status s = NewCudaBackend(out);
  if (s.ok()) *chosen = "cuda";
  if (s.ok() || device == "cuda") return s;
#else
  if (device == "cuda")
    return Status::Invalid(
        "device cuda: this build has no CUDA backend (nvcc was not found at build time)");
#endif
  *out = NewCpuBackend();
  return Status::OK();
}

std::string TakeBackendProfile() {
#ifdef LM_HAVE_CUDA
  if (cuda::ProfileOn()) return cuda::ProfileReport();
#endif
  return "";
}

}  // namespace lm
