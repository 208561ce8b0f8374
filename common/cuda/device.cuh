// device.cuh: small device-side helpers shared by the kernels in common/cuda/
// (bf16 conversion, warp and block reductions, launch-size arithmetic).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

#include "cuda/check.h"
#include "cuda/kernels.h"

// Launches go through LM_LAUNCH so that tests/gpu/emu.h can run the same
// kernels on the CPU (one thread per CUDA thread) where no GPU is present.
#ifndef LM_CUDA_EMULATE
// With LM_CUDA_PROFILE=1 the launch's timing starts here and ends in
// LM_CUDA_LAUNCHED (cuda/profile.h).
#define LM_LAUNCH(kernel, grid, block, smem, stream, ...)          \
  do {                                                             \
    if (::lm::cuda::ProfileOn()) ::lm::cuda::ProfileBegin(stream); \
    kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__);    \
  } while (0)
#define LM_DYNAMIC_SHARED(type, name) extern __shared__ __align__(128) type name[]
// Dynamic shared memory beyond 48 KB must be asked for per kernel.
#define LM_SET_MAX_SMEM(kernel, bytes) \
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)(bytes))
// A 16-byte access (int4, float4) at an address that is not a multiple of 16
// faults on a device ("misaligned address"); the host CPU under the emulator
// would not notice, so tests/gpu/emu.h defines this to check every such
// access. Nothing on the device.
#define LM_CHECK_ALIGNED16(p) \
  do {                        \
  } while (0)
#endif

namespace lm {
namespace cuda {

__device__ __forceinline__ float to_f(bf16 x) {
  return __bfloat162float(x);
}
__device__ __forceinline__ float to_f(float x) {  // for kernels templated on the type
  return x;
}
__device__ __forceinline__ bf16 to_bf(float x) {
  return __float2bfloat16(x);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread
// gets the result. `scratch` holds 32 floats of shared memory; the call starts
// with a barrier so that it can be reused back to back.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float t = lane < nw ? scratch[lane] : 0.f;
  return warp_sum(t);
}
__device__ __forceinline__ float block_max(float v, float* scratch) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float t = lane < nw ? scratch[lane] : -INFINITY;
  return warp_max(t);
}

// Eight bf16 values moved with one 16-byte access; p must be 16-byte aligned.
// The bytes go through memcpy (registers on the device) rather than a cast of
// the int4, which C++'s aliasing rules let the emulator's host compiler break.
struct Floats8 {
  float x[8];
};
__device__ __forceinline__ Floats8 load_bf16x8(const bf16* p) {
  LM_CHECK_ALIGNED16(p);
  int4 raw = *reinterpret_cast<const int4*>(p);
  unsigned short b[8];
  memcpy(b, &raw, sizeof raw);
  Floats8 r;
#pragma unroll
  for (int i = 0; i < 8; i++) r.x[i] = to_f(__ushort_as_bfloat16(b[i]));
  return r;
}
__device__ __forceinline__ void store_bf16x8(bf16* p, const Floats8& v) {
  unsigned short b[8];
#pragma unroll
  for (int i = 0; i < 8; i++) b[i] = __bfloat16_as_ushort(to_bf(v.x[i]));
  int4 raw;
  memcpy(&raw, b, sizeof raw);
  LM_CHECK_ALIGNED16(p);
  *reinterpret_cast<int4*>(p) = raw;
}
// Eight floats with two 16-byte accesses; p must be 16-byte aligned.
__device__ __forceinline__ Floats8 load_f32x8(const float* p) {
  LM_CHECK_ALIGNED16(p);
  LM_CHECK_ALIGNED16(p + 4);
  float4 a = *reinterpret_cast<const float4*>(p), b = *reinterpret_cast<const float4*>(p + 4);
  return Floats8{{a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w}};
}
__device__ __forceinline__ void store_f32x8(float* p, const Floats8& v) {
  LM_CHECK_ALIGNED16(p);
  LM_CHECK_ALIGNED16(p + 4);
  *reinterpret_cast<float4*>(p) = make_float4(v.x[0], v.x[1], v.x[2], v.x[3]);
  *reinterpret_cast<float4*>(p + 4) = make_float4(v.x[4], v.x[5], v.x[6], v.x[7]);
}
// Either type, for kernels templated on it.
__device__ __forceinline__ Floats8 load_x8(const bf16* p) {
  return load_bf16x8(p);
}
__device__ __forceinline__ Floats8 load_x8(const float* p) {
  return load_f32x8(p);
}
__host__ __device__ inline bool aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15) == 0;
}

inline unsigned blocks_for(int64_t work, int per_block, int64_t cap = 1 << 20) {
  int64_t b = (work + per_block - 1) / per_block;
  if (b < 1) b = 1;
  if (b > cap) b = cap;
  return static_cast<unsigned>(b);
}

}  // namespace cuda
}  // namespace lm
