// hash.h: XXH3-64 for checksums and identities (libxxhash).
// Stored digests are written little-endian in binary formats (docs/formats/)
// and as 16 lowercase hex digits (big-endian "canonical" order) in text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace lm {

uint64_t Hash64(const void* data, size_t n);
inline uint64_t Hash64(const std::string& s) {
  return Hash64(s.data(), s.size());
}
// 16 lowercase hex digits, most significant first.
std::string HashHex(uint64_t h);
// Parses HashHex's output; false if malformed.
bool ParseHashHex(const std::string& s, uint64_t* h);

// SplitMix64 (Steele, Lea and Flood): the mix of x + the golden gamma, a
// fixed function, so that seeds give the same numbers on every machine.
inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
// The SplitMix64 generator: returns SplitMix64(*state), then advances it.
inline uint64_t SplitMix64Next(uint64_t* state) {
  uint64_t r = SplitMix64(*state);
  *state += 0x9e3779b97f4a7c15ULL;
  return r;
}

// Streaming XXH3-64: same digest as Hash64 over the concatenation.
class Hasher {
 public:
  Hasher();
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void Reset();
  void Update(const void* data, size_t n);
  void Update(const std::string& s) { Update(s.data(), s.size()); }
  uint64_t Digest() const;

 private:
  void* state_;  // XXH3_state_t
};

}  // namespace lm
