// fixtures.h: helpers shared by the data unit tests (a temporary directory
// and its listing, a made-up vocabulary identity for token streams).
#pragma once

#include <dirent.h>
#include <stdlib.h>

#include <string>
#include <vector>

#include "format/tokens.h"
#include "util/hash.h"

namespace lm_test {

inline std::string TempDir(const char* name) {
  std::string t = std::string("/tmp/lm-") + name + ".XXXXXX";
  return mkdtemp(&t[0]);
}

// The names in dir, "." and ".." left out.
inline std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  while (struct dirent* e = d ? readdir(d) : nullptr) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  if (d) closedir(d);
  return names;
}

inline lm::TokenStreamInfo Vocab(uint32_t size) {
  lm::TokenStreamInfo v;
  v.vocab_size = size;
  v.eot_id = size - 1;
  v.vocab_id = lm::Hash64("v" + std::to_string(size));
  return v;
}

}  // namespace lm_test
