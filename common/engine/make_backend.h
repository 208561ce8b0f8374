// make_backend.h: choosing a backend by name. The engine layer sits above
// every implementation (cpu/, cuda/), so that they depend only on the
// interface (backend/backend.h), never on each other or on the chooser.
#pragma once

#include <memory>
#include <string>

#include "backend/backend.h"
#include "util/status.h"

namespace lm {

// True when this build has the CUDA backend (nvcc was found at build time).
bool HaveCudaBackend();

// "cpu", "cuda" or "auto" (cuda when built with it and a GPU is present, else
// cpu). Asking for cuda where it is not built, or where no GPU is usable, is
// an error that says why; an unknown name is a usage error. *chosen (when
// given) gets the one made: "cpu" or "cuda".
Status MakeBackend(const std::string& device, std::unique_ptr<Backend>* out,
                   std::string* chosen = nullptr);

// LM_CUDA_PROFILE=1: the CUDA backend's table of where the GPU's time went,
// for the tool to print (cuda/profile.h), cleared; "" when off or not built.
std::string TakeBackendProfile();

}  // namespace lm
