// signals.h: the one registry of what to undo when a signal ends a tool.
//
// Owners of half-written files register a cleanup: a path to unlink, or an
// async-signal-safe function of plain memory that the owner keeps alive until
// it unregisters. When SIGINT, SIGTERM, SIGHUP or SIGPIPE arrives (after
// InstallCleanupHandlers), every registered cleanup runs, then the process
// dies of the signal, so that the caller sees 128+N and nothing half-written
// is left with a name a reader would trust.
#pragma once

#include <string>

namespace lm {

// An async-signal-safe action: no allocation, no locks, only system calls
// such as unlink(2) and rmdir(2) on memory that `arg` points to.
using CleanupFn = void (*)(const void* arg);

// Registers `fn(arg)`; returns a slot for UnregisterCleanup, or -1 when the
// registry is full (the cleanup is then left to `lm-pack clean` or the next
// run, which remove temporaries by name).
int RegisterCleanup(CleanupFn fn, const void* arg);
// Registers unlink(path) (the path is copied). -1 when full or too long.
int RegisterCleanupPath(const std::string& path);
// Forgets a slot (-1 is ignored). Safe against a concurrent signal.
void UnregisterCleanup(int slot);
// Runs every registered cleanup (async-signal-safe).
void RunCleanups();

// SIGINT/SIGTERM/SIGHUP/SIGPIPE: RunCleanups, then die of the signal. SIGXFSZ
// is ignored, so that a write past `ulimit -f` fails with EFBIG and is
// reported like any write error. Tools with their own stop handling
// (lm-train) skip it and call DieOfSignal themselves.
void InstallCleanupHandlers();
// RunCleanups, restore the default action of `sig`, unblock it and raise it.
void DieOfSignal(int sig);

// Blocks SIGINT/SIGTERM/SIGHUP for a scope, so that a commit and the
// forgetting of its cleanup happen together; the signals stay pending.
class SignalBlock {
 public:
  SignalBlock();
  ~SignalBlock();
  SignalBlock(const SignalBlock&) = delete;
  SignalBlock& operator=(const SignalBlock&) = delete;

 private:
  unsigned char old_[128];  // a sigset_t, kept opaque to callers
};

// Takes a cleanup signal that arrived while blocked (after a commit that
// makes the work complete), so that it no longer ends the process; returns
// it, or 0 when none was pending.
int TakePendingStopSignal();

// "SIGINT", "SIGTERM", "SIGHUP", ... for the signals the tools handle; "a signal" otherwise.
const char* SignalName(int sig);

}  // namespace lm
