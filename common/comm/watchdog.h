// watchdog.h: the bound on how long a rank waits for the others. MPI has no
// timeout of its own, and a NCCL kernel waits for a dead peer forever, so a
// thread watches the collective in progress: past the timeout it runs the
// abort hook (NCCL: ncclCommAbort) and then the tool's on_timeout, which ends
// the process. Internal to comm/.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "comm/comm.h"

namespace lm {
namespace comm {

class Watchdog {
 public:
  // Starts the thread when opt has a positive timeout and an on_timeout.
  // `done`, when given, is polled while armed: true once the watched work
  // has finished (NCCL: its last event), which disarms it.
  explicit Watchdog(const CommOptions& opt, std::function<void()> abort_hook = nullptr,
                    std::function<bool()> done = nullptr);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // A collective named `what` (a string literal) starts waiting, or is done.
  void Arm(const char* what);
  void Disarm();

 private:
  void Loop();
  CommOptions opt_;
  std::function<void()> abort_hook_;
  std::function<bool()> done_;
  std::atomic<const char*> what_{nullptr};
  std::atomic<double> since_{0};  // steady-clock seconds when armed
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// Arms a watchdog for a scope (null: nothing).
class Watch {
 public:
  Watch(Watchdog* w, const char* what) : w_(w) {
    if (w_) w_->Arm(what);
  }
  ~Watch() {
    if (w_) w_->Disarm();
  }
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

 private:
  Watchdog* w_;
};

}  // namespace comm
}  // namespace lm
