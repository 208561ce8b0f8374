// hash.cpp: thin wrappers over libxxhash's XXH3.
#include "util/hash.h"

#include <xxhash.h>

#include <cstdio>

namespace lm {

uint64_t Hash64(const void* data, size_t n) {
  return XXH3_64bits(data, n);
}

std::string HashHex(uint64_t h) {
  char b[17];
  snprintf(b, sizeof b, "%016llx", (unsigned long long)h);
  return b;
}

bool ParseHashHex(const std::string& s, uint64_t* h) {
  if (s.size() != 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else
      return false;
    v = (v << 4) | (uint64_t)d;
  }
  *h = v;
  return true;
}

Hasher::Hasher() : state_(XXH3_createState()) {
  Reset();
}
Hasher::~Hasher() {
  XXH3_freeState(static_cast<XXH3_state_t*>(state_));
}
void Hasher::Reset() {
  XXH3_64bits_reset(static_cast<XXH3_state_t*>(state_));
}
void Hasher::Update(const void* data, size_t n) {
  XXH3_64bits_update(static_cast<XXH3_state_t*>(state_), data, n);
}
uint64_t Hasher::Digest() const {
  return XXH3_64bits_digest(static_cast<XXH3_state_t*>(state_));
}

}  // namespace lm
