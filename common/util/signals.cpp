// signals.cpp: the cleanup registry and the handlers that run it.
#include "util/signals.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>

namespace lm {

namespace {

// Fixed arrays of plain memory, so that the handler neither allocates nor locks.
constexpr int kMaxCleanups = 64;
constexpr int kMaxPath = 4096;
struct Entry {
  std::atomic<bool> used{false};
  CleanupFn fn = nullptr;  // null: unlink(path)
  const void* arg = nullptr;
  char path[kMaxPath];
};
Entry g_entries[kMaxCleanups];
std::mutex g_mu;  // serializes registration; the handler never takes it

const int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP};

int Claim(CleanupFn fn, const void* arg, const std::string* path) {
  if (path && path->size() >= (size_t)kMaxPath) return -1;
  std::lock_guard<std::mutex> lk(g_mu);
  for (int i = 0; i < kMaxCleanups; i++) {
    Entry& e = g_entries[i];
    if (e.used.load()) continue;
    e.fn = fn;
    e.arg = arg;
    if (path) std::memcpy(e.path, path->c_str(), path->size() + 1);
    e.used.store(true);  // published last: the handler sees a whole entry
    return i;
  }
  return -1;
}

void CleanupHandler(int sig) {
  DieOfSignal(sig);
}

}  // namespace

int RegisterCleanup(CleanupFn fn, const void* arg) {
  return fn ? Claim(fn, arg, nullptr) : -1;
}

int RegisterCleanupPath(const std::string& path) {
  return Claim(nullptr, nullptr, &path);
}

void UnregisterCleanup(int slot) {
  if (slot < 0 || slot >= kMaxCleanups) return;
  std::lock_guard<std::mutex> lk(g_mu);
  g_entries[slot].used.store(false);
}

void RunCleanups() {
  for (Entry& e : g_entries) {
    if (!e.used.load()) continue;
    if (e.fn)
      e.fn(e.arg);
    else
      unlink(e.path);
  }
}

void InstallCleanupHandlers() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = CleanupHandler;
  sigemptyset(&sa.sa_mask);
  for (int s : kStopSignals) sigaction(s, &sa, nullptr);
  // A closed pipe downstream (lm-sample ... | head) ends the tool quietly, as it
  // ends cat: temporaries are removed and the process dies of SIGPIPE.
  sigaction(SIGPIPE, &sa, nullptr);
  signal(SIGXFSZ, SIG_IGN);
}

void DieOfSignal(int sig) {
  RunCleanups();
  signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
  raise(sig);
}

SignalBlock::SignalBlock() {
  static_assert(sizeof(sigset_t) <= sizeof(old_), "sigset_t does not fit");
  sigset_t set;
  sigemptyset(&set);
  for (int s : kStopSignals) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, reinterpret_cast<sigset_t*>(old_));
}

SignalBlock::~SignalBlock() {
  pthread_sigmask(SIG_SETMASK, reinterpret_cast<sigset_t*>(old_), nullptr);
}

int TakePendingStopSignal() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : kStopSignals) sigaddset(&set, s);
  struct timespec zero = {0, 0};
  int sig = sigtimedwait(&set, nullptr, &zero);
  return sig > 0 ? sig : 0;
}

const char* SignalName(int sig) {
  switch (sig) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
    case SIGUSR1:
      return "SIGUSR1";
    case SIGPIPE:
      return "SIGPIPE";
    default:
      return "a signal";
  }
}

}  // namespace lm
