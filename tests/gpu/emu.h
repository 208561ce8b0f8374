// emu.h: runs the CUDA backend's kernels (common/cuda/*.cu, compiled as plain
// C++) on the CPU, one OS thread per CUDA thread, one block at a time, so that
// their index arithmetic, masking, barriers and shuffles can be checked against
// the CPU twins on a machine without a GPU. Not a performance tool and not a
// full CUDA model: it covers what these kernels use (1-D blocks, static and
// dynamic shared memory, __syncthreads, __shfl_xor_sync on any lane mask,
// atomicAdd). Include it before any .cu file, with the CUDA toolkit's headers
// on the include path (they compile under a host compiler).
#pragma once

#define LM_CUDA_EMULATE 1

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace lm_emu {

class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void Wait() {
    std::unique_lock<std::mutex> l(m_);
    uint64_t gen = gen_;
    if (++count_ == n_) {
      count_ = 0;
      gen_++;
      cv_.notify_all();
      return;
    }
    cv_.wait(l, [&] { return gen_ != gen; });
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int n_, count_ = 0;
  uint64_t gen_ = 0;
};

struct Block {
  explicit Block(int threads, size_t smem) : nthreads(threads), sync(threads), slots(threads) {
    dynamic_smem.resize(smem / 8 + 1);
  }
  int nthreads;
  Barrier sync;
  std::mutex mu;
  std::map<std::pair<int, unsigned>, std::unique_ptr<Barrier>> groups;
  std::vector<double> slots;
  std::vector<double> dynamic_smem;  // 8-byte aligned
};

inline thread_local uint3 t_thread, t_block;
inline thread_local dim3 t_bdim, t_gdim;
inline thread_local Block* t_blk = nullptr;
inline std::mutex g_atomic;

inline void SyncThreads() {
  t_blk->sync.Wait();
}

template <typename T>
T ShflXor(unsigned mask, T v, int offset) {
  const int tid = (int)t_thread.x, warp = tid >> 5, lane = tid & 31;
  int in_warp = std::min(32, t_blk->nthreads - warp * 32);
  int n = __builtin_popcount(mask);
  if (n > in_warp) n = in_warp;
  Barrier* b;
  {
    std::lock_guard<std::mutex> l(t_blk->mu);
    auto& p = t_blk->groups[{warp, mask}];
    if (!p) p = std::make_unique<Barrier>(n);
    b = p.get();
  }
  t_blk->slots[tid] = (double)v;
  b->Wait();
  T r = (T)t_blk->slots[(warp << 5) | (lane ^ offset)];
  b->Wait();
  return r;
}

template <typename T>
T AtomicAdd(T* p, T v) {
  std::lock_guard<std::mutex> l(g_atomic);
  T old = *p;
  *p = old + v;
  return old;
}

// Runs every block of the grid in turn, each with blockDim.x threads.
template <typename F>
void Launch(dim3 grid, dim3 block, size_t smem, F f) {
  const int n = (int)(block.x * block.y * block.z);
  for (unsigned z = 0; z < grid.z; z++)
    for (unsigned y = 0; y < grid.y; y++)
      for (unsigned x = 0; x < grid.x; x++) {
        Block blk(n, smem);
        std::vector<std::thread> th;
        th.reserve(n);
        for (int t = 0; t < n; t++)
          th.emplace_back([&, t] {
            t_thread = make_uint3((unsigned)t, 0, 0);
            t_block = make_uint3(x, y, z);
            t_bdim = block;
            t_gdim = grid;
            t_blk = &blk;
            f();
          });
        for (auto& t : th) t.join();
      }
}

}  // namespace lm_emu

// CUDA's qualifiers and built-ins, for a host compiler.
#undef __global__
#undef __device__
#undef __shared__
#undef __forceinline__
#undef __launch_bounds__
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
// One block runs at a time, so a function-local static is per-block shared memory.
#define __shared__ static
#define threadIdx (::lm_emu::t_thread)
#define blockIdx (::lm_emu::t_block)
#define blockDim (::lm_emu::t_bdim)
#define gridDim (::lm_emu::t_gdim)
#define __syncthreads() ::lm_emu::SyncThreads()
#define __shfl_xor_sync(mask, v, o) ::lm_emu::ShflXor((mask), (v), (o))
#define atomicAdd(p, v) ::lm_emu::AtomicAdd((p), (v))
inline float rsqrtf(float x) {
  return 1.0f / std::sqrt(x);
}
inline float __expf(float x) {
  return std::exp(x);
}
using std::max;
using std::min;

#define LM_LAUNCH(kernel, grid, block, smem, stream, ...) \
  ::lm_emu::Launch(dim3(grid), dim3(block), (smem), [&]() { kernel(__VA_ARGS__); })
#define LM_DYNAMIC_SHARED(type, name) \
  type* name = reinterpret_cast<type*>(::lm_emu::t_blk->dynamic_smem.data())
#define LM_CUDA_LAUNCHED(name) \
  do {                         \
  } while (0)
