// main.cpp: lm-train, training a Llama-architecture model on packed shards to
// a step count, a token count or a wall-clock budget, with checkpoints that
// resume bit-exactly (on the CPU) and load in transformers. This file holds
// the signals and the dispatch; options.cpp the command line, trainer.cpp
// and train_loop.cpp the work.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>

#include "engine/make_backend.h"
#include "manual.h"
#include "options.h"
#include "trainer.h"
#include "util/cli.h"
#include "util/human.h"
#include "util/progress.h"
#include "util/signals.h"

namespace lm {
namespace {

std::atomic<int> g_stop{0};        // the signal that asked to stop
std::atomic<int> g_checkpoint{0};  // SIGUSR1: checkpoint now
// "lm-train: ", or "lm-train: rank 3: " in a job of several ranks (set once
// the rank is known; read by the signal handler).
char g_prefix[64] = "lm-train: ";

void OnStop(int sig) {
  if (g_stop.load()) {
    // A second request while finishing the step: stop now. The step directory
    // being written (if any) is a temporary that the next run removes.
    DieOfSignal(sig);
    return;
  }
  g_stop = sig;
  // Said at once (write(2) is safe here): a long step or save gives no other
  // sign that the first Ctrl-C was heard, and a second one loses the save.
  const char* m = sig == SIGINT ? "SIGINT: " : sig == SIGTERM ? "SIGTERM: " : "SIGHUP: ";
  const char* tail =
      "stopping after this micro-step and saving a checkpoint; "
      "send it again to stop at once without saving\n";
  ssize_t ignored = write(STDERR_FILENO, g_prefix, strlen(g_prefix));
  ignored = write(STDERR_FILENO, m, strlen(m));
  ignored = write(STDERR_FILENO, tail, strlen(tail));
  (void)ignored;
}

void OnUsr1(int) {
  g_checkpoint = 1;
}

// A collective that waited past --comm-timeout (on the watchdog's thread):
// another rank died or hangs. Exiting non-zero makes mpirun (and srun -K)
// end the job; the last checkpoint is complete, since a step directory only
// appears whole.
void OnCommTimeout(const std::string& what, double seconds) {
  fprintf(stderr,
          "%s: %serror: %s: no answer from the other ranks in %s (--comm-timeout): a rank has "
          "died or hangs; exiting\n",
          cli::ToolName().c_str(), cli::RankTag().c_str(), what.c_str(),
          FormatDuration(seconds).c_str());
  fflush(stderr);
  _exit(cli::kExitError);
}

void InstallSignals() {
  struct sigaction sa = {};
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = OnStop;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);  // a closed terminal or ssh session: save, then stop
  sa.sa_handler = OnUsr1;
  sigaction(SIGUSR1, &sa, nullptr);
  // Past `ulimit -f` a write then fails with EFBIG, reported like any write error.
  signal(SIGXFSZ, SIG_IGN);
  // stderr piped into a `tee` that has gone (killed, its pane closed): the
  // log lines are lost, not the run, which would otherwise die at its next
  // line without a checkpoint. metrics.jsonl still records every step.
  signal(SIGPIPE, SIG_IGN);
}

// An error: one that every rank knows of is returned (each rank reports it
// and leaves MPI); one that only this rank knows of is reported here and
// ends the whole job, so that no other rank waits for this one.
Status Failed(Trainer* tr, const Status& s) {
  if (tr->world() > 1 && !tr->failure_shared()) {
    const int code = cli::ReportError(s);
    fflush(nullptr);
    tr->comm()->Abort(code);
  }
  return s;
}

Status Run(int argc, char** argv) {
  cli::Command cmd;
  cmd.synopsis = kTrainSynopsis;
  cmd.manual = kTrainManual;
  TrainFlags flags;
  DeclareTrainOptions(&cmd, &flags);
  bool exit_now = false;
  LM_RETURN_IF_ERROR(cli::Parse(&cmd, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  TrainerOptions o;
  LM_RETURN_IF_ERROR(ResolveTrainOptions(cmd, argc, argv, &flags, &o));
  o.on_comm_timeout = OnCommTimeout;

  InstallSignals();
  // LM_CUDA_PROFILE=1: the CUDA backend's table of GPU time, however the run
  // ends (printed before tr, and with it the backend, goes).
  struct PrintProfile {
    ~PrintProfile() { fputs(TakeBackendProfile().c_str(), stderr); }
  } print_profile;
  Trainer tr;
  if (Status s = tr.Setup(o); !s.ok()) {
    tr.RemoveEmptyRunDirectory();
    return Failed(&tr, s);
  }
  if (tr.world() > 1) snprintf(g_prefix, sizeof g_prefix, "lm-train: rank %d: ", tr.rank());
  if (tr.complete_read_only()) {
    LogInfo("%s is already complete at step %lld (read-only: nothing to write)", o.out_dir.c_str(),
            (long long)tr.step());
    return Status::OK();
  }
  tr.SetInterrupt([] { return g_stop.load(); });
  StopRequests stop;
  stop.stop_signal = [] { return g_stop.load(); };
  stop.take_checkpoint = [] { return g_checkpoint.exchange(0) != 0; };
  TrainOutcome out;
  if (Status s = tr.Train(stop, &out); !s.ok()) return Failed(&tr, s);
  if (out.signal) {
    // Saved (and fsynced): now die of the signal, as the other tools do, so
    // that the caller sees an interrupted run, not a finished one: exiting 0
    // would let `lm-train ... && lm-eval ...` go on, and bash, seeing a child
    // that handled the Ctrl-C, go on with the rest of a script.
    // Every rank is here (the checkpoint was agreed): leave MPI together.
    tr.CloseComm();
    fflush(nullptr);
    DieOfSignal(out.signal);
    return Status::Interrupted(std::string("stopped by ") + SignalName(out.signal));
  }
  return Status::OK();
}

}  // namespace
}  // namespace lm

int main(int argc, char** argv) {
  return lm::cli::Main("lm-train", argc, argv, lm::Run, /*install_cleanup=*/false);
}
