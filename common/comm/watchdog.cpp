// watchdog.cpp: the collective timeout (watchdog.h).
#include "comm/watchdog.h"

#include <chrono>

namespace lm {
namespace comm {

namespace {
double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

Watchdog::Watchdog(const CommOptions& opt, std::function<void()> abort_hook,
                   std::function<bool()> done)
    : opt_(opt), abort_hook_(std::move(abort_hook)), done_(std::move(done)) {
  if (opt_.timeout_seconds > 0 && opt_.on_timeout) thread_ = std::thread([this] { Loop(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Watchdog::Arm(const char* what) {
  since_ = Now();
  what_ = what;
}

void Watchdog::Disarm() {
  what_ = nullptr;
}

void Watchdog::Loop() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    // Checked four times a second: the timeout is minutes in practice and
    // seconds in the tests, so the overshoot is at most 0.25 s.
    cv_.wait_for(lk, std::chrono::milliseconds(250));
    const char* what = what_;
    if (stop_ || !what) continue;
    if (done_ && done_()) {
      what_.compare_exchange_strong(what, nullptr);  // unless re-armed meanwhile
      continue;
    }
    if (Now() - since_ < opt_.timeout_seconds) continue;
    if (abort_hook_) abort_hook_();
    opt_.on_timeout(what, opt_.timeout_seconds);  // ends the process
    what_ = nullptr;                              // (should it return) once per wait
  }
}

}  // namespace comm
}  // namespace lm
