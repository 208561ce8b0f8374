// progress.cpp: stderr progress meter and log lines.
#include "util/progress.h"

#include <unistd.h>

#include <cstdarg>
#include <cstdio>

#include "util/cli.h"

namespace lm {

namespace {
bool g_quiet = false;

std::string Human(double v, const std::string& unit) {
  char b[64];
  if (unit == "B") {
    snprintf(b, sizeof b, "%.1f MB", v / 1e6);
  } else if (v >= 1e9) {
    snprintf(b, sizeof b, "%.2fG %s", v / 1e9, unit.c_str());
  } else if (v >= 1e6) {
    snprintf(b, sizeof b, "%.2fM %s", v / 1e6, unit.c_str());
  } else {
    snprintf(b, sizeof b, "%.0f %s", v, unit.c_str());
  }
  return b;
}
}  // namespace

bool Progress::Enabled() {
  return isatty(2) && !g_quiet;
}

Progress::Progress(std::string label, uint64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), enabled_(Enabled()) {
  start_ = last_ = std::chrono::steady_clock::now();
}

Progress::~Progress() {
  Finish();
}

void Progress::Update(uint64_t done) {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lk(mu_);
  done_ = done;
  Draw(false);
}

void Progress::Add(uint64_t n) {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lk(mu_);
  done_ += n;
  Draw(false);
}

void Progress::Draw(bool force) {
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_ < std::chrono::milliseconds(200)) return;
  last_ = now;
  double secs = std::chrono::duration<double>(now - start_).count();
  double rate = secs > 0 ? done_ / secs : 0;
  char line[256];
  if (total_ > 0) {
    double pct = 100.0 * (double)done_ / (double)total_;
    double eta = rate > 0 ? (double)(total_ - std::min(done_, total_)) / rate : 0;
    snprintf(line, sizeof line, "%s: %5.1f%%  %s  %s/s  eta %.0fs", label_.c_str(), pct,
             Human((double)done_, unit_).c_str(), Human(rate, unit_).c_str(), eta);
  } else {
    snprintf(line, sizeof line, "%s: %s  %s/s", label_.c_str(), Human((double)done_, unit_).c_str(),
             Human(rate, unit_).c_str());
  }
  fprintf(stderr, "\r\033[K%s", line);
  fflush(stderr);
}

void Progress::Finish() {
  if (!enabled_ || finished_) return;
  std::lock_guard<std::mutex> lk(mu_);
  finished_ = true;
  fprintf(stderr, "\r\033[K");
  fflush(stderr);
}

void SetQuiet(bool q) {
  g_quiet = q;
}

void LogInfo(const char* fmt, ...) {
  if (g_quiet || cli::LogsSilenced()) return;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", cli::ToolName().c_str());
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

void LogWarn(const char* fmt, ...) {
  if (cli::LogsSilenced()) return;  // rank 0 warns for the job
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: %swarning: ", cli::ToolName().c_str(), cli::RankTag().c_str());
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

}  // namespace lm
