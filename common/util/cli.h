// cli.h: what every tool's main shares (docs/cli.md): Boost.ProgramOptions
// parsing with --help/--version, typed option values with range checks,
// Status-to-exit-code mapping, value parsers.
//
//   int main(int argc, char** argv) {
//     return lm::cli::Main("lm-pack", argc, argv, Run);  // Run returns Status
//   }
#pragma once

#include <boost/program_options.hpp>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "util/status.h"

namespace lm {

extern const char* const kVersion;  // "0.1.0"

namespace cli {

namespace po = boost::program_options;

// Exit codes (docs/cli.md).
constexpr int kExitOk = 0;
constexpr int kExitError = 1;  // bad input or runtime error
constexpr int kExitUsage = 2;  // bad command line

// The running tool's name, for messages ("lm-tokenize").
const std::string& ToolName();

// One rank of `ranks` in a data-parallel job (lm-train): with more than one,
// errors and warnings name the rank ("lm-train: rank 1: error: ..."), and
// only rank 0 logs (LogInfo, LogWarn). RankTag() is "rank 1: ", or "".
void SetRank(int rank, int ranks);
const std::string& RankTag();
bool LogsSilenced();  // a rank other than 0
// Prints `s` as Main does ("TOOL: [rank R: ]error: MESSAGE", plus the --help
// hint for a usage error) and returns its exit code.
int ReportError(const Status& s);

// Runs `fn`, prints a failed Status as "TOOL: error: MESSAGE" on one line, and
// returns the exit code. Exceptions (bad_alloc, boost errors) are caught and
// reported the same way. Installs the temp-file cleanup signal handlers unless
// install_cleanup is false.
int Main(const char* tool, int argc, char** argv, const std::function<Status(int, char**)>& fn,
         bool install_cleanup = true);

// A command's options. `synopsis` and `manual` are printed by --help, around the
// option table; the manual is man-page prose (DESCRIPTION, EXAMPLES, EXIT
// STATUS). Options are declared through cli::Options (below), one per line.
struct Command {
  std::string synopsis;  // "lm-pack -o DIR [options] [STREAM...]"
  std::string manual;
  po::options_description options{"Options", 100};
  po::positional_options_description positional;
  po::variables_map vm;
  // Range checks of the options, run by Parse once the values are stored.
  std::vector<std::function<Status()>> checks;
  // On the command line (not only a default).
  bool Given(const std::string& key) const { return vm.count(key) && !vm[key].defaulted(); }
};

// Typed option values. Boost converts them through the validate() overloads
// below, so that a malformed value is a usage error naming the option.
struct Count {  // "1000", "10k", "2M", "1G", "1e6": a non-negative integer
  uint64_t n = 0;
};
struct Duration {  // "24h", "90m", "1h30m", "3600s", "45" (seconds)
  double seconds = 0;
};
// A period in steps or in time: "500" or "10k" (steps), "30m" (a duration),
// "0", "off" or "never" (neither: both stay 0).
struct Every {
  int64_t steps = 0;
  double seconds = 0;
  bool off() const { return steps == 0 && seconds == 0; }
};
void validate(boost::any& v, const std::vector<std::string>& values, Count*, int);
void validate(boost::any& v, const std::vector<std::string>& values, Duration*, int);
void validate(boost::any& v, const std::vector<std::string>& values, Every*, int);

// What a numeric option may be, checked with one wording: "--NAME must be
// WORDS (got X)". NaN is in no range.
struct Range {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;
  std::string words;  // "at least 1", "a positive number", "in [0, 1)"
  bool Contains(double x) const;
};
Range AtLeast(double lo);  // lo <= x < inf
Range Positive();          // 0 < x < inf
Range NonNegative();       // 0 <= x < inf
// lo <= x <= hi, an end left out where open: In(0, 1, false, true) is [0, 1).
Range In(double lo, double hi, bool lo_open = false, bool hi_open = false);

inline double NumberOf(const Count& c) {
  return (double)c.n;
}
inline double NumberOf(const Duration& d) {
  return d.seconds;
}
template <class T>
double NumberOf(const T& x) {
  static_assert(std::is_arithmetic<T>::value, "a Range needs a number");
  return (double)x;
}
// Shortest text that reads back as x ("0.0006", "-1", "nan"), a whole number
// below 1e15 without an exponent ("20"); as_float: as the float x holds (0.1f
// is "0.1").
std::string NumberText(double x, bool as_float = false);

// One option of a Command, as cli::Options::operator() returns it.
template <class T>
class Opt {
 public:
  Opt(Command* cmd, const std::string& name, T* x, po::typed_value<T>* value)
      : cmd_(cmd), x_(x), value_(value) {
    // "threads,j" -> key "threads", flag "--threads"; ",n" -> key and flag "-n"
    // (Boost keys a short-only option by its dashed name).
    const bool short_only = !name.empty() && name[0] == ',';
    key_ = short_only ? "-" + name.substr(1) : name.substr(0, name.find(','));
    flag_ = short_only ? key_ : "--" + key_;
  }
  Opt& Default(const T& v) {
    value_->default_value(v);
    return *this;
  }
  Opt& Default(const T& v, const std::string& shown) {
    value_->default_value(v, shown);
    return *this;
  }
  Opt& Required() {
    value_->required();
    return *this;
  }
  Opt& Multi() {
    value_->multitoken();
    return *this;
  }
  // The value must lie in r (checked when given or defaulted).
  Opt& Check(const Range& r) {
    cmd_->checks.push_back([cmd = cmd_, key = key_, flag = flag_, x = x_, r]() -> Status {
      if (!cmd->vm.count(key) || r.Contains(NumberOf(*x))) return Status::OK();
      return Status::Usage(flag + " must be " + r.words + " (got " +
                           NumberText(NumberOf(*x), std::is_same<T, float>::value) + ")");
    });
    return *this;
  }
  Opt& Min(double lo) { return Check(AtLeast(lo)); }

 private:
  Command* cmd_;
  std::string key_, flag_;
  T* x_;
  po::typed_value<T>* value_;
};

// Declares options one per line, in the order --help lists them:
//   cli::Options add(&cmd);
//   add("keep", &o.keep, "K", "step directories kept (0: all)").Default(3).Min(0);
//   add("lr", &o.lr, "X", "peak learning rate").Default(6e-4f, "6e-4").Check(cli::Positive());
//   add.Flag("untied", &o.untied, "a separate LM head");
class Options {
 public:
  explicit Options(Command* cmd) : cmd_(cmd) {}
  // --NAME VALUE_NAME, stored in *x. NAME may carry a short form ("threads,j").
  template <class T>
  Opt<T> operator()(const char* name, T* x, const char* value_name, const char* help) {
    po::typed_value<T>* v = po::value<T>(x);
    v->value_name(value_name);
    cmd_->options.add_options()(name, v, help);
    return Opt<T>(cmd_, name, x, v);
  }
  // --NAME, a switch that sets *x.
  void Flag(const char* name, bool* x, const char* help) {
    cmd_->options.add_options()(name, po::bool_switch(x), help);
  }
  // Positional arguments fill option NAME (count -1: all that are left).
  void Positional(const char* name, int count) { cmd_->positional.add(name, count); }

 private:
  Command* cmd_;
};

// Parses argv into cmd->vm, adding --help and --version, then runs cmd->checks.
// Returns a Usage status on unknown, malformed or out-of-range options. Sets
// *exit_now when --help or --version was printed (the caller returns OK).
Status Parse(Command* cmd, int argc, char** argv, bool* exit_now);

// "24h", "90m", "3600s", "1h30m", "45" (seconds), "1.5h" -> seconds.
Status ParseDuration(const std::string& s, double* seconds);
// "1000", "10k", "2M", "1G", "1e6" -> count (k = 1000, M = 1e6, G = 1e9).
Status ParseCount(const std::string& s, uint64_t* n);
// "500", "10k" (steps), "30m" (a duration), "0"/"off"/"never" -> *every.
Status ParseEvery(const std::string& s, Every* every);
// "\n%\n" style escapes: \n \t \r \0 \\ \xHH.
Status Unescape(const std::string& s, std::string* out);

// Threads for -j / --threads: 0 means every online core, and more than the
// cores is capped to them (more threads only add memory and contention, and
// the OpenMP runtime crashes when it cannot create them). Negative is a usage
// error.
Status ResolveThreads(int j, int* threads);

}  // namespace cli
}  // namespace lm
