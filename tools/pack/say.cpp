// say.cpp (lm-pack): wording the commands share in what they tell people.
#include <string>

#include "commands.h"
#include "util/progress.h"

namespace lm {

std::string Count(uint64_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

void SayWaiting(const std::string& lock_path, const char* who) {
  LogInfo("waiting for %s (%s)", lock_path.c_str(), who);
}

}  // namespace lm
