// profile.h: LM_CUDA_PROFILE=1 times every kernel and matrix product of the CUDA
// backend with CUDA events and makes a table of where the GPU's time went: per
// kernel, and per product shape with the rate it reached, products that fell
// back to cublasGemmEx named as such. It is how one short run on a lent GPU
// says which op to work on. The tool that ran the backend prints the table
// (ProfileReport): nothing in the library prints. Off (the default), each
// hook is one test of a flag read once.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

namespace lm {
namespace cuda {

// True when LM_CUDA_PROFILE=1 was set when first asked, or after ProfileEnable(true).
bool ProfileOn();
void ProfileEnable(bool on);  // tests

// Brackets one operation on `stream`: Begin before its launch, End after it,
// with the operation's name and floating-point operations (0: not counted).
// Operations must not nest. Profiling never fails the run: a CUDA error inside
// it drops the sample and is counted in the report.
void ProfileBegin(cudaStream_t stream);
void ProfileEnd(const std::string& name, double flops = 0);

// Drops what was timed so far, as warm-up (lazy module loading and the first
// cuBLASLt calls inflate the first step); the report says how much it dropped.
void ProfileWarmedUp();

// Waits for the samples still in flight, returns the table (lines ending in
// '\n') and clears it; "" when nothing was timed.
std::string ProfileReport();

}  // namespace cuda
}  // namespace lm
