// backend.cpp: choosing a backend by name.
#include "backend/backend.h"

namespace lm {

Status MakeBackend(const std::string& device, std::unique_ptr<Backend>* out) {
  if (device == "cpu") {
    *out = NewCpuBackend();
    return Status::OK();
  }
  if (device == "cuda" || device == "auto") {
#ifdef LM_HAVE_CUDA
    Status s = NewCudaBackend(out);
    if (s.ok() || device == "cuda") return s;
#else
    if (device == "cuda")
      return Status::Invalid(
          "--device cuda: this build has no CUDA backend (nvcc was not found at build time)");
#endif
    *out = NewCpuBackend();
    return Status::OK();
  }
  return Status::Usage("unknown device '" + device + "' (expected cpu, cuda or auto)");
}

}  // namespace lm
