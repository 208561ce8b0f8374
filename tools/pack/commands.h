// commands.h: lm-pack's subcommands that live in their own files.
#pragma once

#include <cstdint>
#include <string>

#include "util/status.h"

namespace lm {

// lm-pack clean DIR [-n] [-q] (clean.cpp).
Status RunClean(int argc, char** argv);

// "1 file", "2 files": a count and its noun (plural by an "s").
std::string Count(uint64_t n, const char* what);

}  // namespace lm
