// test.h: a minimal unit-test harness that prints TAP (one "ok N name" or
// "not ok N name" line per test), so that tests/run-all.sh can count every
// test of every kind the same way.
//
//   TEST(hash_known_answer) { CHECK_EQ(lm::Hash64("", 0), 0x2d06800538d394c2ULL); }
//   int main() { return lm_test::RunAll(); }   // or TEST_MAIN()
#pragma once

#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace lm_test {

struct Case {
  const char* name;
  std::function<void()> fn;
};
inline std::vector<Case>& Registry() {
  static std::vector<Case> r;
  return r;
}
inline int& Failures() {
  static int f = 0;
  return f;
}
struct Register {
  Register(const char* n, std::function<void()> f) { Registry().push_back({n, std::move(f)}); }
};

inline void Fail(const char* file, int line, const std::string& what) {
  Failures()++;
  printf("# %s:%d: %s\n", file, line, what.c_str());
}

inline int RunAll() {
  auto& r = Registry();
  printf("1..%zu\n", r.size());
  int failed = 0;
  for (size_t i = 0; i < r.size(); i++) {
    int before = Failures();
    try {
      r[i].fn();
    } catch (const std::exception& e) {
      Fail(__FILE__, __LINE__, std::string("exception: ") + e.what());
    }
    bool ok = Failures() == before;
    if (!ok) failed++;
    printf("%s %zu %s\n", ok ? "ok" : "not ok", i + 1, r[i].name);
    fflush(stdout);
  }
  return failed ? 1 : 0;
}

}  // namespace lm_test

#define TEST(name)                                         \
  static void test_##name();                               \
  static lm_test::Register reg_##name(#name, test_##name); \
  static void test_##name()

#define TEST_MAIN()           \
  int main() {                \
    return lm_test::RunAll(); \
  }

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) lm_test::Fail(__FILE__, __LINE__, "CHECK(" #cond ") failed"); \
  } while (0)

#define CHECK_EQ(a, b)                                                 \
  do {                                                                 \
    auto _a = (a);                                                     \
    auto _b = (b);                                                     \
    if (!(_a == _b)) {                                                 \
      std::ostringstream _o;                                           \
      _o << "CHECK_EQ(" #a ", " #b ") failed: " << _a << " vs " << _b; \
      lm_test::Fail(__FILE__, __LINE__, _o.str());                     \
    }                                                                  \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                            \
  do {                                                                   \
    double _a = (a), _b = (b);                                           \
    if (!(std::fabs(_a - _b) <= (tol))) {                                \
      std::ostringstream _o;                                             \
      _o.precision(10);                                                  \
      _o << "CHECK_NEAR(" #a ", " #b ") failed: " << _a << " vs " << _b; \
      lm_test::Fail(__FILE__, __LINE__, _o.str());                       \
    }                                                                    \
  } while (0)

// A Status-returning expression must succeed.
#define CHECK_OK(expr)                                                           \
  do {                                                                           \
    ::lm::Status _s = (expr);                                                    \
    if (!_s.ok()) lm_test::Fail(__FILE__, __LINE__, #expr ": " + _s.ToString()); \
  } while (0)
