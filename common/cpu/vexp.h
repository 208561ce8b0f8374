// vexp.h: exp for the CPU ops' hot loops (softmax, cross-entropy, SiLU) in a
// form the compiler vectorises: libm's expf is a call per element, which took
// a quarter of a training step. Cephes' expf (range reduction by ln 2 in two
// parts, degree-6 polynomial): within 2 ulp of the true value over
// [-87, 88], 0 below, inf above; NaN (and, unlike expf, +-inf) give NaN.
// The double twin uses std::exp.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

// The hot element-wise loops are compiled twice, for AVX2 and for the
// baseline, and picked at load time by CPU feature (GCC function
// multiversioning): the build targets plain x86-64, where these loops run on
// 4-wide SSE2. The helpers below are forced inline so that each copy gets its
// own instruction set.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define LM_CPU_CLONES __attribute__((target_clones("avx2", "default")))
#define LM_CPU_INLINE inline __attribute__((always_inline))
#else
#define LM_CPU_CLONES
#define LM_CPU_INLINE inline
#endif

namespace lm {
namespace cpu {

LM_CPU_INLINE float vexp(float x) {
  // n = round(x / ln 2) = floor(t + 0.5), t = x log2(e), through integer
  // conversions and compares only: a float compare would keep GCC (trapping
  // math) from vectorising the loop. The +16384 shift makes truncation a floor
  // for every t that matters; beyond [-127, 128] the result is 0 or inf, with r
  // zeroed so that the polynomial stays finite. |x| >= 256 (inf and NaN too)
  // is first made +-256, on its bits: a float out of int's range converted to
  // int is undefined behaviour (UBSan caught vexp(-1e30f); x86 happened to
  // give INT_MIN). NaN still gives NaN: the last line adds x - x of the x given.
  uint32_t xb;
  std::memcpy(&xb, &x, sizeof xb);
  const uint32_t huge = 0u - (uint32_t)((xb & 0x7fffffffu) >= 0x43800000u);  // |x| >= 256
  const uint32_t cb = xb ^ ((xb ^ ((xb & 0x80000000u) | 0x43800000u)) & huge);
  float xc;
  std::memcpy(&xc, &cb, sizeof xc);
  const float t = xc * 1.44269504088896341f;  // |t| <= 370
  const int n0 = (int)((unsigned)(int)(t + 16384.5f) - 16384u);
  const int lo = n0 < -127;
  const int hi = n0 > 128;
  int n = n0 < -127 ? -127 : n0;
  n = n > 128 ? 128 : n;
  const float fn = (float)n;
  float r = xc - fn * 0.693359375f;  // ln 2 in two parts: fn * 0.693359375 is exact
  r = r - fn * -2.12194440e-4f;
  int32_t rb;  // r = 0 when clamped, by masking its bits (a select would not vectorise)
  std::memcpy(&rb, &r, sizeof rb);
  rb &= (lo | hi) - 1;
  std::memcpy(&r, &rb, sizeof r);
  const float r2 = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r2 + r + 1.0f;
  const int32_t bits = (n + 127) << 23;  // 2^n (0 for n = -127: underflow to 0)
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale + (x - x);  // x - x: NaN in, NaN out
}

inline double vexp(double x) {
  return std::exp(x);
}

// Largest of x[0..n), n >= 1.
template <typename T>
LM_CPU_INLINE T max_of(const T* x, int n) {
  T m = x[0];
#pragma omp simd reduction(max : m)
  for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
}

// out[i] = exp(x[i] - shift) for i < n (out may be x, or null to only sum);
// returns the sum in double. Sums run in T over blocks of 256 (short enough
// that float loses nothing that matters, and vectorisable), blocks in double.
template <typename T>
LM_CPU_INLINE double exp_sum(T* out, const T* x, int n, T shift) {
  double total = 0;
  for (int b = 0; b < n; b += 256) {
    const int e = n - b < 256 ? n : b + 256;
    T s = 0;
    if (out) {
#pragma omp simd reduction(+ : s)
      for (int i = b; i < e; i++) {
        const T v = vexp(x[i] - shift);
        out[i] = v;
        s += v;
      }
    } else {
#pragma omp simd reduction(+ : s)
      for (int i = b; i < e; i++) s += vexp(x[i] - shift);
    }
    total += (double)s;
  }
  return total;
}

}  // namespace cpu
}  // namespace lm
