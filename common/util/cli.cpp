// cli.cpp: option parsing and exit codes shared by every tool.
#include "util/cli.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <new>
#include <thread>

#include "util/file.h"
#include "util/signals.h"

namespace lm {

const char* const kVersion = "0.1.0";

namespace cli {

namespace {
std::string g_tool = "lm";
std::string g_rank_tag;
bool g_silenced = false;
}  // namespace

const std::string& ToolName() {
  return g_tool;
}

void SetRank(int rank, int ranks) {
  g_rank_tag = ranks > 1 ? "rank " + std::to_string(rank) + ": " : "";
  g_silenced = ranks > 1 && rank > 0;
}
const std::string& RankTag() {
  return g_rank_tag;
}
bool LogsSilenced() {
  return g_silenced;
}

int ReportError(const Status& s) {
  fprintf(stderr, "%s: %serror: %s\n", g_tool.c_str(), g_rank_tag.c_str(), s.ToString().c_str());
  if (s.code() != Status::kUsage) return kExitError;
  fprintf(stderr, "Try '%s --help' for more information.\n", g_tool.c_str());
  return kExitUsage;
}

int Main(const char* tool, int argc, char** argv, const std::function<Status(int, char**)>& fn,
         bool install_cleanup) {
  g_tool = tool;
  ReserveStandardFds();
  if (install_cleanup) InstallCleanupHandlers();
  Status s;
  try {
    s = fn(argc, argv);
  } catch (const std::bad_alloc&) {
    s = Status::Resource("out of memory");
  } catch (const po::error& e) {
    s = Status::Usage(e.what());
  } catch (const std::exception& e) {
    s = Status::IOError(std::string("unexpected failure: ") + e.what());
  }
  fflush(stdout);
  int code = kExitOk;
  if (s.ok()) {
    if (ferror(stdout)) {
      fprintf(stderr, "%s: error: <stdout>: write failed\n", tool);
      code = kExitError;
    }
  } else {
    code = ReportError(s);
  }
  // Under an address-space limit, an OpenBLAS thread may be stuck retrying an
  // allocation forever, and exit() would wait for it (OpenBLAS joins its
  // threads at unload): leave without running the exit handlers. Everything
  // the tool wrote is closed by now.
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    fflush(nullptr);
    _exit(code);
  }
  return code;
}

namespace {
// Boost converts "-1" to an unsigned option by wrapping it to 2^64-1 (lexical_cast's
// rule), so that --seed -1 or -j -2 would silently mean something huge.
template <typename T>
bool IsTyped(const po::value_semantic* s) {
  return dynamic_cast<const po::typed_value<T>*>(s) != nullptr;
}

Status RefuseNegativeUnsigned(const po::options_description& options,
                              const po::parsed_options& parsed) {
  for (const po::option& opt : parsed.options) {
    const po::option_description* d = options.find_nothrow(opt.string_key, false);
    if (!d) continue;
    const po::value_semantic* s = d->semantic().get();
    if (!IsTyped<unsigned char>(s) && !IsTyped<unsigned short>(s) && !IsTyped<unsigned int>(s) &&
        !IsTyped<unsigned long>(s) && !IsTyped<unsigned long long>(s))
      continue;
    for (const std::string& v : opt.value) {
      size_t i = v.find_first_not_of(" \t");
      if (i != std::string::npos && v[i] == '-')
        return Status::Usage("the argument ('" + v + "') for option '--" + d->long_name() +
                             "' is invalid (expected a non-negative integer)");
    }
  }
  return Status::OK();
}
}  // namespace

Status Parse(Command* cmd, int argc, char** argv, bool* exit_now) {
  *exit_now = false;
  cmd->options.add_options()("help,h", "print this help and exit")("version",
                                                                   "print the version and exit");
  try {
    po::parsed_options parsed = po::command_line_parser(argc, argv)
                                    .options(cmd->options)
                                    .positional(cmd->positional)
                                    .style(po::command_line_style::unix_style)
                                    .run();
    Status neg = RefuseNegativeUnsigned(cmd->options, parsed);
    if (!neg.ok()) return neg;
    po::store(parsed, cmd->vm);
    if (cmd->vm.count("help")) {
      std::cout << "Usage: " << cmd->synopsis << "\n\n" << cmd->options << "\n";
      if (!cmd->manual.empty())
        std::cout << cmd->manual << (cmd->manual.back() == '\n' ? "" : "\n");
      *exit_now = true;
      return Status::OK();
    }
    if (cmd->vm.count("version")) {
      std::cout << ToolName() << " " << kVersion << "\n";
      *exit_now = true;
      return Status::OK();
    }
    po::notify(cmd->vm);
  } catch (const po::error& e) {
    return Status::Usage(e.what());
  }
  for (const auto& check : cmd->checks) LM_RETURN_IF_ERROR(check());
  return Status::OK();
}

namespace {
// A malformed typed value: Boost names the option ("--budget: bad duration ...").
class BadValue : public po::validation_error {
 public:
  explicit BadValue(const Status& s)
      : po::validation_error(po::validation_error::invalid_option_value) {
    m_error_template = "%canonical_option%: " + s.message();
  }
};

const std::string& OneValue(const boost::any& v, const std::vector<std::string>& values) {
  po::validators::check_first_occurrence(v);
  return po::validators::get_single_string(values);
}
}  // namespace

void validate(boost::any& v, const std::vector<std::string>& values, Count*, int) {
  Count c;
  Status s = ParseCount(OneValue(v, values), &c.n);
  if (!s.ok()) throw BadValue(s);
  v = c;
}

void validate(boost::any& v, const std::vector<std::string>& values, Duration*, int) {
  Duration d;
  Status s = ParseDuration(OneValue(v, values), &d.seconds);
  if (!s.ok()) throw BadValue(s);
  v = d;
}

void validate(boost::any& v, const std::vector<std::string>& values, Every*, int) {
  Every e;
  Status s = ParseEvery(OneValue(v, values), &e);
  if (!s.ok()) throw BadValue(s);
  v = e;
}

bool Range::Contains(double x) const {
  if (std::isnan(x)) return false;
  if (lo_open ? !(x > lo) : !(x >= lo)) return false;
  if (hi_open ? !(x < hi) : !(x <= hi)) return false;
  return true;
}

Range AtLeast(double lo) {
  Range r;
  r.lo = lo;
  r.hi_open = true;
  r.words = "at least " + NumberText(lo);
  return r;
}

Range Positive() {
  Range r = AtLeast(0);
  r.lo_open = true;
  r.words = "a positive number";
  return r;
}

Range NonNegative() {
  Range r = AtLeast(0);
  r.words = "a number >= 0";
  return r;
}

Range In(double lo, double hi, bool lo_open, bool hi_open) {
  Range r;
  r.lo = lo;
  r.hi = hi;
  r.lo_open = lo_open;
  r.hi_open = hi_open;
  r.words = std::string("in ") + (lo_open ? "(" : "[") + NumberText(lo) + ", " + NumberText(hi) +
            (hi_open ? ")" : "]");
  return r;
}

std::string NumberText(double x, bool as_float) {
  char b[64];
  if (std::fabs(x) < 1e15 && x == std::floor(x)) {  // whole numbers in full: 20, not 2e+01
    snprintf(b, sizeof b, "%.0f", x);
    return b;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(b, sizeof b, "%.*g", prec, x);
    if (std::isnan(x) || (as_float ? strtof(b, nullptr) == (float)x : strtod(b, nullptr) == x))
      break;
  }
  return b;
}

Status ParseEvery(const std::string& s, Every* every) {
  *every = Every();
  if (s == "0" || s == "off" || s == "never") return Status::OK();
  const bool digits = !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
  uint64_t n;
  if (digits || (s.size() > 1 && (s.back() == 'k' || s.back() == 'M') && ParseCount(s, &n).ok())) {
    LM_RETURN_IF_ERROR(ParseCount(s, &n));
    every->steps = (int64_t)n;
    return Status::OK();
  }
  if (!ParseDuration(s, &every->seconds).ok() || !(every->seconds > 0))
    return Status::Usage("expected a step count (500) or a duration (30m), got '" + s + "'");
  return Status::OK();
}

Status ParseDuration(const std::string& s, double* seconds) {
  if (s.empty()) return Status::Usage("empty duration");
  double total = 0;
  size_t i = 0;
  bool any = false;
  while (i < s.size()) {
    size_t used = 0;
    double v;
    try {
      v = std::stod(s.substr(i), &used);
    } catch (...) {
      return Status::Usage("bad duration '" + s + "' (expected e.g. 24h, 90m, 3600s, 1h30m)");
    }
    if (used == 0 || !(v >= 0) || !std::isfinite(v))
      return Status::Usage("bad duration '" + s + "' (expected e.g. 24h, 90m, 3600s, 1h30m)");
    i += used;
    double unit = 1;
    if (i < s.size()) {
      char c = s[i];
      if (c == 'd')
        unit = 86400;
      else if (c == 'h')
        unit = 3600;
      else if (c == 'm')
        unit = 60;
      else if (c == 's')
        unit = 1;
      else
        return Status::Usage("bad duration '" + s + "': unknown unit '" + std::string(1, c) + "'");
      i++;
    } else if (any) {
      return Status::Usage("bad duration '" + s + "': a number without a unit after another");
    }
    total += v * unit;
    any = true;
  }
  *seconds = total;
  return Status::OK();
}

Status ParseCount(const std::string& s, uint64_t* n) {
  size_t used = 0;
  double v;
  try {
    v = std::stod(s, &used);
  } catch (...) {
    return Status::Usage("bad number '" + s + "'");
  }
  double mul = 1;
  std::string rest = s.substr(used);
  if (rest == "k" || rest == "K")
    mul = 1e3;
  else if (rest == "M")
    mul = 1e6;
  else if (rest == "G")
    mul = 1e9;
  else if (rest == "T")
    mul = 1e12;
  else if (!rest.empty())
    return Status::Usage("bad number '" + s + "'");
  v *= mul;
  if (!(v >= 0) || v > 1.8e19 || v != std::floor(v))
    return Status::Usage("bad number '" + s + "' (expected a non-negative integer)");
  *n = (uint64_t)v;
  return Status::OK();
}

Status Unescape(const std::string& s, std::string* out) {
  out->clear();
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] != '\\') {
      out->push_back(s[i]);
      continue;
    }
    if (++i >= s.size()) return Status::Usage("trailing backslash in '" + s + "'");
    switch (s[i]) {
      case 'n':
        out->push_back('\n');
        break;
      case 't':
        out->push_back('\t');
        break;
      case 'r':
        out->push_back('\r');
        break;
      case '0':
        out->push_back('\0');
        break;
      case '\\':
        out->push_back('\\');
        break;
      case 'x': {
        if (i + 2 >= s.size()) return Status::Usage("bad \\x escape in '" + s + "'");
        std::string h = s.substr(i + 1, 2);
        // Exactly two hex digits: strtol alone would take "+4", "-1" or " f".
        if (!isxdigit((unsigned char)h[0]) || !isxdigit((unsigned char)h[1]))
          return Status::Usage("bad \\x escape in '" + s + "'");
        long v = strtol(h.c_str(), nullptr, 16);
        out->push_back((char)v);
        i += 2;
        break;
      }
      default:
        return Status::Usage("unknown escape '\\" + std::string(1, s[i]) + "' in '" + s + "'");
    }
  }
  return Status::OK();
}

Status ResolveThreads(int j, int* threads) {
  if (j < 0)
    return Status::Usage("-j/--threads must be 0 (every core) or more, not " + std::to_string(j));
  const unsigned n = std::thread::hardware_concurrency();
  const int cores = n ? (int)n : 1;
  *threads = j == 0 ? cores : std::min(j, cores);
  return Status::OK();
}

}  // namespace cli
}  // namespace lm
