// muon_step.h: one Muon step of a weight matrix on the device: the momentum
// kernel (with the update's sum of squares), normalisation into bf16,
// `ns_steps` Newton-Schulz iterations as three bf16 cuBLASLt products each
// (the quintic's coefficients in their alpha and beta), then the update of the
// fp32 master weights and their bf16 copy. Nothing waits for the host; the
// same inputs give the same bits on every run. CPU twin: cpu::muon_update
// (common/cpu/muon.h), which runs the same products in fp32.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <functional>

#include "backend/backend.h"
#include "cuda/matmul.h"
#include "util/status.h"

namespace lm {
namespace cuda {

// Device scratch for matrices of at most `max_numel` values whose shorter
// side is at most `max_k`.
struct MuonScratch {
  float* u = nullptr;                         // the update before orthogonalisation (fp32)
  __nv_bfloat16 *x = nullptr, *xn = nullptr;  // the iterate, and the next one
  __nv_bfloat16 *a = nullptr, *b = nullptr;   // the k x k Gram matrix and polynomial
  double* partial = nullptr;                  // sum_squares_scratch() doubles
  double* sumsq = nullptr;                    // one double: the update's sum of squares
  int64_t max_numel = 0, max_k = 0;
};

// Device memory of `bytes` into *p (or, while a caller only sizes, nullptr).
using DeviceAlloc = std::function<Status(void** p, size_t bytes)>;

// Sizes *s for the ParamGroup::kMatrix tensors of `layout` and allocates each
// buffer with `alloc` (none when there are no matrices). The caller frees
// what alloc gave; FreeMuonScratch does it for cudaMalloc.
Status AllocMuonScratch(const ParamLayout& layout, const DeviceAlloc& alloc, MuonScratch* s);
void FreeMuonScratch(MuonScratch* s);

// W (rows,cols) with its bf16 copy w16, gradient grad and momentum mom (fp32,
// device): one Muon step with the settings `mc` (lr already scheduled) and the
// clipping factor grad_scale, on `stream`.
Status MuonStepDevice(Matmul* mm, const MuonScratch& s, float* w, __nv_bfloat16* w16,
                      const float* grad, float* mom, int64_t rows, int64_t cols,
                      const MuonConfig& mc, float grad_scale, cudaStream_t stream);

// `steps` Newton-Schulz iterations on the bf16 iterate X (rows,cols), already
// normalised, in s.x; the result ends in *out (s.x or s.xn).
Status NewtonSchulzDevice(Matmul* mm, const MuonScratch& s, int64_t rows, int64_t cols, int steps,
                          __nv_bfloat16** out);

}  // namespace cuda
}  // namespace lm
