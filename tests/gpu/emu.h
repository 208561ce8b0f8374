// emu.h: runs the CUDA backend's kernels (common/cuda/*.cu, compiled as plain
// C++) on the CPU, one fiber per CUDA thread, one block at a time, so that
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

#include <ucontext.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <type_traits>
#include <vector>

namespace lm_emu {

// Every CUDA thread of a block is a fiber (ucontext) on the calling OS thread;
// a scheduler runs the runnable fibers in turn until all have returned. A
// barrier (a block's __syncthreads, or the lanes of one shuffle) blocks its
// fibers until the expected number have arrived. When nothing is runnable but
// fibers remain, the kernel would hang on a GPU too: the emulator says so and
// aborts.
struct Fiber {
  ucontext_t ctx;
  std::vector<char> stack;
  bool done = false, waiting = false;
  unsigned tid = 0;
};

class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void Wait();

 private:
  int n_;
  std::vector<Fiber*> waiters_;
};

// 32-byte aligned, as a device's shared memory is at least: wmma's loads and
// stores need 32-byte aligned pointers, which the checks below hold to.
struct alignas(32) SmemChunk {
  double d[4];
};

struct Block {
  explicit Block(int threads, size_t smem)
      : nthreads(threads), sync(threads), slots(threads), dynamic_smem(smem / 32 + 1) {}
  int nthreads;
  Barrier sync;
  std::map<std::pair<int, unsigned>, std::unique_ptr<Barrier>> groups;
  std::vector<double> slots;
  std::vector<SmemChunk> dynamic_smem;
};

inline uint3 t_thread, t_block;
inline dim3 t_bdim, t_gdim;
inline Block* t_blk = nullptr;
inline Fiber* t_cur = nullptr;
inline ucontext_t t_sched;
inline std::vector<std::unique_ptr<Fiber>> t_fibers;  // reused across launches
inline void (*t_entry_fn)(void*) = nullptr;
inline void* t_entry_arg = nullptr;

// Back to the scheduler until this fiber is released.
inline void Yield() {
  swapcontext(&t_cur->ctx, &t_sched);
}

inline void Barrier::Wait() {
  Fiber* me = t_cur;
  if ((int)waiters_.size() + 1 >= n_) {
    for (Fiber* f : waiters_) f->waiting = false;
    waiters_.clear();
    return;
  }
  me->waiting = true;
  waiters_.push_back(me);
  while (me->waiting) Yield();
}

inline void SyncThreads() {
  t_blk->sync.Wait();
}

template <typename T>
T ShflXor(unsigned mask, T v, int offset) {
  const int tid = (int)t_thread.x, warp = tid >> 5, lane = tid & 31;
  int in_warp = std::min(32, t_blk->nthreads - warp * 32);
  int n = __builtin_popcount(mask);
  if (n > in_warp) n = in_warp;
  auto& b = t_blk->groups[{warp, mask}];
  if (!b) b = std::make_unique<Barrier>(n);
  Barrier* bar = b.get();
  t_blk->slots[tid] = (double)v;
  bar->Wait();
  T r = (T)t_blk->slots[(warp << 5) | (lane ^ offset)];
  bar->Wait();
  return r;
}

inline void SyncWarp() {
  const int tid = (int)t_thread.x, warp = tid >> 5;
  int n = std::min(32, t_blk->nthreads - warp * 32);
  auto& b = t_blk->groups[{warp, 0xffffffffu}];
  if (!b) b = std::make_unique<Barrier>(n);
  b->Wait();
}

template <typename T>
T AtomicAdd(T* p, T v) {
  T old = *p;
  *p = old + v;
  return old;
}

// A 16-byte load or store (int4, float4) must be 16-byte aligned on a device,
// which faults otherwise ("misaligned address"); an x86 host would not notice,
// so the kernels check each such address through LM_CHECK_ALIGNED16.
inline void CheckAligned16(const void* p, const char* file, int line) {
  if (reinterpret_cast<uintptr_t>(p) % 16 != 0) {
    fprintf(stderr, "emu: %s:%d: 16-byte access at %p, which is not 16-byte aligned\n", file, line,
            p);
    abort();
  }
}

// What a device refuses to launch (an sm_90 GPU's limits): the launch fails
// with "invalid configuration" or "too many resources", which the emulator
// would otherwise run happily. Dynamic shared memory beyond 48 KB needs the
// kernel's cudaFuncAttributeMaxDynamicSharedMemorySize raised first
// (LM_SET_MAX_SMEM), up to 227 KB.
constexpr size_t kSmemDefault = 48 << 10, kSmemOptin = 227 << 10;
inline std::map<const void*, size_t>& MaxDynamicSmem() {
  static std::map<const void*, size_t> m;
  return m;
}
template <typename K>
void SetMaxDynamicSmem(K kernel, size_t bytes, const char* name) {
  if (bytes > kSmemOptin) {
    fprintf(stderr, "emu: %s: %zu B of dynamic shared memory, beyond a device's 227 KB\n", name,
            bytes);
    abort();
  }
  MaxDynamicSmem()[reinterpret_cast<const void*>(kernel)] = bytes;
}
template <typename K>
void CheckLaunchConfig(K kernel, dim3 grid, dim3 block, size_t smem, const char* name) {
  const char* bad = nullptr;
  uint64_t threads = (uint64_t)block.x * block.y * block.z;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || threads == 0)
    bad = "an empty grid or block";
  else if (grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535)
    bad = "a grid beyond 2^31-1 x 65535 x 65535 blocks";
  else if (threads > 1024 || block.z > 64)
    bad = "more than 1024 threads (or 64 in z) in a block";
  else if (smem > kSmemDefault) {
    auto it = MaxDynamicSmem().find(reinterpret_cast<const void*>(kernel));
    if (it == MaxDynamicSmem().end() || it->second < smem)
      bad = "dynamic shared memory beyond 48 KB without LM_SET_MAX_SMEM for this kernel";
  }
  if (bad) {
    fprintf(stderr,
            "emu: launch of %s (grid %u x %u x %u, block %u x %u x %u, %zu B dynamic shared "
            "memory): %s, which a device refuses\n",
            name, grid.x, grid.y, grid.z, block.x, block.y, block.z, smem, bad);
    abort();
  }
}

inline void FiberEntry() {
  t_entry_fn(t_entry_arg);
  t_cur->done = true;  // returning switches to uc_link, the scheduler
}

// On a GPU the host cannot dereference device memory. A test that serves
// cudaMalloc itself (backend_emu_test) keeps device memory inaccessible to the
// host and sets this hook, which opens it (true) while an emulated device
// operation runs and closes it (false) after, so a host access faults here as
// it would there. DeviceScope nests.
inline void (*g_device_access)(bool open) = nullptr;
inline int g_device_depth = 0;
struct DeviceScope {
  DeviceScope() {
    if (g_device_depth++ == 0 && g_device_access) g_device_access(true);
  }
  ~DeviceScope() {
    if (--g_device_depth == 0 && g_device_access) g_device_access(false);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;
};

// Runs every block of the grid in turn, each with blockDim.x fibers. (No
// object with a destructor here: getcontext would make its locals clobberable.)
template <typename F>
void LaunchGrid(dim3 grid, dim3 block, size_t smem, F f) {
  const int n = (int)(block.x * block.y * block.z);
  constexpr size_t kStack = 128 << 10;
  while ((int)t_fibers.size() < n) {
    t_fibers.push_back(std::make_unique<Fiber>());
    t_fibers.back()->stack.resize(kStack);
  }
  // A heap copy of the kernel call (a local's address in a global would dangle
  // by the compiler's reckoning, though every fiber ends before we return).
  std::unique_ptr<F> call(new F(f));
  t_entry_fn = [](void* p) { (*static_cast<F*>(p))(); };
  t_entry_arg = call.get();
  t_bdim = block;
  t_gdim = grid;
  for (unsigned z = 0; z < grid.z; z++)
    for (unsigned y = 0; y < grid.y; y++)
      for (unsigned x = 0; x < grid.x; x++) {
        Block blk(n, smem);
        t_blk = &blk;
        t_block = make_uint3(x, y, z);
        for (int t = 0; t < n; t++) {
          Fiber* fb = t_fibers[t].get();
          fb->done = fb->waiting = false;
          fb->tid = (unsigned)t;
          getcontext(&fb->ctx);
          fb->ctx.uc_stack.ss_sp = fb->stack.data();
          fb->ctx.uc_stack.ss_size = fb->stack.size();
          fb->ctx.uc_link = &t_sched;
          makecontext(&fb->ctx, FiberEntry, 0);
        }
        for (int remaining = n; remaining > 0;) {
          bool progressed = false;
          remaining = 0;
          for (int t = 0; t < n; t++) {
            Fiber* fb = t_fibers[t].get();
            if (fb->done) continue;
            if (!fb->waiting) {
              t_cur = fb;
              t_thread = make_uint3(fb->tid, 0, 0);
              swapcontext(&t_sched, &fb->ctx);
              progressed = true;
            }
            if (!fb->done) remaining++;
          }
          if (remaining > 0 && !progressed) {
            fprintf(stderr,
                    "emu: block (%u,%u,%u): %d threads wait at a barrier others never reach\n", x,
                    y, z, remaining);
            abort();
          }
        }
        t_blk = nullptr;
      }
  t_entry_arg = nullptr;
}

template <typename F>
void Launch(dim3 grid, dim3 block, size_t smem, F f) {
  DeviceScope device;
  LaunchGrid(grid, block, smem, f);
}

}  // namespace lm_emu

// nvcuda::wmma for 16x16x16 bf16 tiles with fp32 accumulators. A fragment
// holds the whole tile in every lane (the hardware spreads it over the warp in
// an unspecified way, which the kernels never rely on): loads, products and
// stores are done redundantly by each lane, so a kernel that reads fragments
// through store_matrix_sync, or element by element through a map of the
// layout that it loaded itself (attention.cu's FragMap), computes what it
// would on a GPU. Element (r, c) sits at a scrambled index (Slot), so that a
// kernel that assumed a row-major fragment would fail here too.
namespace nvcuda {
namespace wmma {
struct row_major {};
struct col_major {};
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
enum layout_t { mem_row_major, mem_col_major };
template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
  static constexpr int rows = std::is_same<Use, matrix_b>::value ? K : M;
  static constexpr int cols = std::is_same<Use, matrix_a>::value ? K : N;
  static constexpr int num_elements = rows * cols;
  float x[rows * cols];
};
// Where element (r, c) of a rows x cols fragment is kept: column-major order
// times 7 (odd, so a bijection on 256 slots).
inline int Slot(int rows, int cols, int r, int c) {
  return ((c * rows + r) * 7) % (rows * cols);
}
template <typename Use, int M, int N, int K, typename T, typename Layout>
void fill_fragment(fragment<Use, M, N, K, T, Layout>& f, float v) {
  for (float& e : f.x) e = v;
}
// What the device requires of wmma's loads and stores: a 256-bit aligned
// pointer (CUDA C++ Programming Guide, "Warp Matrix Functions"), and, by the
// PTX ISA's binding rule ("Matrix Storage for WMMA": each row or column must
// start aligned to the fragment's size), a leading dimension of a multiple of
// 16 bytes for bf16 operands (a fragment of four .b32 registers) and of 32
// bytes for fp32 accumulators (eight .f32 registers): 8 floats, not the 4 the
// Guide states. A violation faults or misreads on a GPU; here it stops the test.
template <typename T>
void check_wmma_operand(const T* p, unsigned ldm, const char* what) {
  const size_t unit = sizeof(T) == 4 ? 32 : 16;
  if (reinterpret_cast<uintptr_t>(p) % 32 != 0 || (ldm * sizeof(T)) % unit != 0) {
    fprintf(
        stderr,
        "emu: wmma::%s: pointer %p (must be 32-byte aligned), ldm %u (must be a multiple of %zu)\n",
        what, (const void*)p, ldm, unit / sizeof(T));
    abort();
  }
}
template <typename Use, int M, int N, int K, typename T, typename Layout>
void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const T* p, unsigned ldm) {
  check_wmma_operand(p, ldm, "load_matrix_sync");
  using F = fragment<Use, M, N, K, T, Layout>;
  const bool row = std::is_same<Layout, row_major>::value;
  for (int r = 0; r < F::rows; r++)
    for (int c = 0; c < F::cols; c++)
      f.x[Slot(F::rows, F::cols, r, c)] =
          (float)(row ? p[(size_t)r * ldm + c] : p[(size_t)c * ldm + r]);
}
// An accumulator loaded from memory (the layout is given at run time, as on the device).
template <int M, int N, int K>
void load_matrix_sync(fragment<accumulator, M, N, K, float>& f, const float* p, unsigned ldm,
                      layout_t layout) {
  check_wmma_operand(p, ldm, "load_matrix_sync");
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++)
      f.x[Slot(M, N, i, j)] =
          layout == mem_row_major ? p[(size_t)i * ldm + j] : p[(size_t)j * ldm + i];
}
template <int M, int N, int K, typename T, typename LA, typename LB>
void mma_sync(fragment<accumulator, M, N, K, float>& d, const fragment<matrix_a, M, N, K, T, LA>& a,
              const fragment<matrix_b, M, N, K, T, LB>& b,
              const fragment<accumulator, M, N, K, float>& c) {
  float out[M * N];
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      float acc = c.x[Slot(M, N, i, j)];
      for (int k = 0; k < K; k++) acc += a.x[Slot(M, K, i, k)] * b.x[Slot(K, N, k, j)];
      out[Slot(M, N, i, j)] = acc;
    }
  for (int i = 0; i < M * N; i++) d.x[i] = out[i];
}
template <int M, int N, int K>
void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, float>& f, unsigned ldm,
                       layout_t layout) {
  check_wmma_operand(p, ldm, "store_matrix_sync");
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++)
      (layout == mem_row_major ? p[(size_t)i * ldm + j] : p[(size_t)j * ldm + i]) =
          f.x[Slot(M, N, i, j)];
}
}  // namespace wmma
}  // namespace nvcuda

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
#define __syncwarp(...) ::lm_emu::SyncWarp()
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

#define LM_DYNAMIC_SHARED(type, name) \
  type* name = reinterpret_cast<type*>(::lm_emu::t_blk->dynamic_smem.data())
// A constant cudaSuccess, as before, so that the kernel test links without check.cpp.
#define LM_SET_MAX_SMEM(kernel, bytes) \
  (::lm_emu::SetMaxDynamicSmem((kernel), (bytes), #kernel), cudaSuccess)
#define LM_CHECK_ALIGNED16(p) ::lm_emu::CheckAligned16((p), __FILE__, __LINE__)
#ifdef LM_EMU_RUNTIME
// The test serves the CUDA runtime and links check.cpp and profile.cpp: launches
// are checked and profiled as on a device.
#define LM_LAUNCH(kernel, grid, block, smem, stream, ...)                              \
  do {                                                                                 \
    if (::lm::cuda::ProfileOn()) ::lm::cuda::ProfileBegin(stream);                     \
    ::lm_emu::CheckLaunchConfig(kernel, dim3(grid), dim3(block), (smem), #kernel);     \
    ::lm_emu::Launch(dim3(grid), dim3(block), (smem), [&]() { kernel(__VA_ARGS__); }); \
  } while (0)
#else
#define LM_LAUNCH(kernel, grid, block, smem, stream, ...)                              \
  do {                                                                                 \
    ::lm_emu::CheckLaunchConfig(kernel, dim3(grid), dim3(block), (smem), #kernel);     \
    ::lm_emu::Launch(dim3(grid), dim3(block), (smem), [&]() { kernel(__VA_ARGS__); }); \
  } while (0)
#define LM_CUDA_LAUNCHED(name) \
  do {                         \
  } while (0)
#define LM_CUDA_LAUNCHED_FLOPS(name, flops) \
  do {                                      \
    (void)(flops);                          \
  } while (0)
#endif
