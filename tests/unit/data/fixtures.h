// fixtures.h: helpers shared by the data unit tests (a temporary directory,
// a made-up vocabulary identity for token streams).
#pragma once

#include <stdlib.h>

#include <string>

#include "format/tokens.h"
#include "util/hash.h"

namespace lm_test {

inline std::string TempDir(const char* name) {
  std::string t = std::string("/tmp/lm-") + name + ".XXXXXX";
  return mkdtemp(&t[0]);
}

inline lm::TokenStreamInfo Vocab(uint32_t size) {
  lm::TokenStreamInfo v;
  v.vocab_size = size;
  v.eot_id = size - 1;
  v.vocab_id = lm::Hash64("v" + std::to_string(size));
  return v;
}

}  // namespace lm_test
