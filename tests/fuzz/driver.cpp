// driver.cpp: main() for a fuzz target built without libFuzzer (make test,
// and the sanitizer build of CI). It runs LLVMFuzzerTestOneInput once on every
// file of the target's seed corpus and regression inputs,
// tests/fuzz/corpus/NAME/ and tests/fuzz/regress/NAME/ (NAME from the
// program's name, NAME_test), or on the files and directories given, and
// prints TAP: one test per input, so that a failing one is named. A crash
// ends the plan early, which tests/run-all.sh counts as failures.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

// Files under `path` (itself when a file), sorted; none when it is missing.
void Collect(const std::string& path, std::vector<std::string>* out) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return;
  if (!S_ISDIR(st.st_mode)) {
    out->push_back(path);
    return;
  }
  DIR* d = opendir(path.c_str());
  if (!d) return;
  std::vector<std::string> names;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') names.push_back(e->d_name);
  closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string& n : names) Collect(path + "/" + n, out);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> roots(argv + 1, argv + argc);
  if (roots.empty()) {
    std::string name = argv[0];
    name = name.substr(name.rfind('/') + 1);
    if (name.size() > 5 && name.compare(name.size() - 5, 5, "_test") == 0)
      name.resize(name.size() - 5);
    roots = {"tests/fuzz/corpus/" + name, "tests/fuzz/regress/" + name};
  }
  std::vector<std::string> files;
  for (const std::string& r : roots) Collect(r, &files);
  if (files.empty()) {
    printf("1..1\nnot ok 1 no input under %s\n", roots[0].c_str());
    return 1;
  }
  printf("1..%zu\n", files.size());
  for (size_t i = 0; i < files.size(); i++) {
    std::ifstream in(files[i], std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // A copy of exactly its size, so that ASan sees a read past the end.
    std::vector<uint8_t> data(bytes.begin(), bytes.end());
    fflush(stdout);
    const int before = lm_fuzz::Accepted();
    LLVMFuzzerTestOneInput(data.data(), data.size());
    printf("ok %zu %s%s\n", i + 1, files[i].c_str(),
           lm_fuzz::Accepted() > before ? " (accepted)" : " (refused)");
    fflush(stdout);
  }
  return 0;
}
