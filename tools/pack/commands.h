// commands.h (lm-pack): one function per command, each in its own file;
// argv[0] is the command's name.
#pragma once

#include <cstdint>
#include <string>

#include "util/status.h"

namespace lm {

Status RunPack(int argc, char** argv);     // pack.cpp: lm-pack -o DIR [STREAM...]
Status RunVerify(int argc, char** argv);   // verify.cpp
Status RunInspect(int argc, char** argv);  // inspect.cpp
Status RunCat(int argc, char** argv);      // cat.cpp
Status RunClean(int argc, char** argv);    // clean.cpp

// "1 file", "2 files": a count and its noun (plural by an "s").
std::string Count(uint64_t n, const char* what);

// Says on stderr (unless -q) that a run waits for lock_path, held by `who`.
void SayWaiting(const std::string& lock_path, const char* who);

}  // namespace lm
