// backend_cpu.h: the CPU backend (fp32, OpenBLAS + OpenMP), the reference
// every other backend is checked against. engine/make_backend.h chooses it.
#pragma once

#include <memory>

#include "backend/backend.h"

namespace lm {

std::unique_ptr<Backend> NewCpuBackend();

}  // namespace lm
