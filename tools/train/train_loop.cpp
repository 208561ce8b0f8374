// train_loop.cpp: the loop that trains to the end of the run: steps, the
// progress line, validation, samples and checkpoints at the run's cadence,
// non-finite steps, stop requests and the deadline (Trainer::Train).
#include <cmath>
#include <cstdio>
#include <cstring>

#include "recipe.h"
#include "trainer.h"
#include "util/human.h"
#include "util/progress.h"
#include "util/signals.h"

namespace lm {

using Clock = std::chrono::steady_clock;

struct Trainer::Loop {
  explicit Loop(const Trainer* t) : tr(t), start(t->elapsed()) {}
  const Trainer* tr;
  double start;                          // the run's clock when the loop began
  double peak = 0, flops_per_token = 0;  // for MFU
  double last_log = -1e9, last_val = 0, last_sample = 0, last_ckpt = 0;
  int64_t log_step0 = 0;  // the step and time of the last progress line
  double log_t0 = 0;
  int bad_run = 0;  // non-finite steps in a row, the first of them
  int64_t first_bad = -1;
  double avg_step = 0;  // seconds, a running average
  // The current weights gave the last step a non-finite loss: such weights
  // (a diverged run) are never saved as a checkpoint.
  bool diverged = false;
  bool checkpoint = false;  // SIGUSR1 on some rank, not yet acted on
  double step_start = 0;    // the clock when the current step began

  // Seconds since the loop began, by the clock every rank agrees on.
  double now() const { return tr->elapsed() - start; }
};

namespace {

// Whether a periodic event is due after `step` at loop time t.
bool Due(const cli::Every& every, int64_t step, double t, double last) {
  return (every.steps > 0 && step % every.steps == 0) ||
         (every.seconds > 0 && t - last >= every.seconds);
}

std::string Escaped(const std::string& x) {
  std::string r;
  for (char ch : x) r += ch == '\n' ? std::string("\\n") : std::string(1, ch);
  return r;
}

}  // namespace

void Trainer::LogPlan() const {
  LogInfo("model: %s", cfg_.Describe().c_str());
  if (launch_.launcher != "none")  // launched (mpirun -np 1 too): the collectives' path
    LogInfo(
        "device: %s on each of %d rank%s, collectives %s; %d x %d tokens x %d micro-steps x "
        "%d rank%s = %llu tokens per step",
        backend_->Describe().c_str(), world(), world() > 1 ? "s" : "",
        data_comm_->Describe().c_str(), micro_batch_, T_, micro_steps_, world(),
        world() > 1 ? "s" : "", (unsigned long long)tokens_per_step());
  else
    LogInfo("device: %s; %d x %d tokens x %d micro-steps = %llu tokens per step",
            backend_->Describe().c_str(), micro_batch_, T_, micro_steps_,
            (unsigned long long)tokens_per_step());
  if (budget() > 0)
    LogInfo("length: budget %s; schedule %s, peak lr %g", FormatDuration(budget()).c_str(),
            opt_.schedule.Describe().c_str(), (double)opt_.adam.lr);
  else
    LogInfo("length: %lld steps (%llu tokens); schedule %s, peak lr %g", (long long)total_steps_,
            (unsigned long long)(tokens_seen_ +
                                 std::max<int64_t>(0, total_steps_ - step_) * tokens_per_step()),
            opt_.schedule.Describe().c_str(), (double)opt_.adam.lr);
  if (resumed_)
    LogInfo("resuming from %s (step %lld, %s trained)", resumed_from_.c_str(), (long long)step_,
            FormatDuration(elapsed()).c_str());
  if (!has_val())
    LogWarn("%s: no validation split: no validation loss or samples", opt_.data_dir.c_str());
}

// A run already at its end: the final checkpoint, unless it exists.
Status Trainer::FinishWithoutSteps() {
  if (last_saved_ == step_) {
    LogInfo("%s is already complete at step %lld", opt_.out_dir.c_str(), (long long)step_);
    return Status::OK();
  }
  std::string dir;
  LM_RETURN_IF_ERROR(Save(&dir));
  LogInfo("saved %s", dir.c_str());
  return Status::OK();
}

Status Trainer::Train(const StopRequests& stop, TrainOutcome* out) {
  *out = TrainOutcome();
  LogPlan();
  if (Finished()) return FinishWithoutSteps();
  Loop lp(this);
  lp.peak = opt_.peak_flops > 0 ? opt_.peak_flops : backend_->PeakFlops();
  lp.flops_per_token = cfg_.train_flops_per_token();
  lp.log_step0 = step_;
  for (;;) {
    // The ranks agree on the clock and the stop requests before each step,
    // and on the clock after it, so they take the same decisions.
    Agreed ag;
    LM_RETURN_IF_ERROR(Sync(Status::OK(), &stop, &ag));
    lp.checkpoint = lp.checkpoint || ag.checkpoint;
    if (ShouldStop(ag, &lp, out)) break;
    StepStats st;
    LM_RETURN_IF_ERROR(Step(&st));
    if (st.abandoned) {  // a stop request between micro-steps
      out->signal = st.signal;
      break;
    }
    LM_RETURN_IF_ERROR(Sync(Status::OK()));
    st.seconds = elapsed() - lp.step_start;
    LM_RETURN_IF_ERROR(AfterStep(st, &lp));
    if (Finished()) break;
    LM_RETURN_IF_ERROR(Periodic(&lp));
  }
  return End(*out, &lp);
}

// Before a step: a stop signal, the end of the run, --stop-at, or (under a
// budget) a step that would end well past the deadline, which is not begun.
bool Trainer::ShouldStop(const Agreed& ag, Loop* lp, TrainOutcome* out) {
  lp->step_start = elapsed();
  if ((out->signal = ag.signal) != 0) return true;
  if (Finished()) return true;
  if (opt_.stop_at >= 0 && step_ >= opt_.stop_at) {
    out->stop_reason = "--stop-at " + std::to_string(opt_.stop_at);
    return true;
  }
  if (budget() > 0 && lp->avg_step > 0 && elapsed() + 0.5 * lp->avg_step >= budget()) {
    ended_ = true;  // recorded in the checkpoint: rerunning the command leaves the run alone
    return true;
  }
  return false;
}

// After a step: its metrics line, the count of non-finite steps, and the
// progress line when due.
Status Trainer::AfterStep(const StepStats& st, Loop* lp) {
  lp->avg_step = lp->avg_step == 0 ? st.seconds : 0.9 * lp->avg_step + 0.1 * st.seconds;
  LM_RETURN_IF_ERROR(LogStep(st, st.tokens / std::max(st.seconds, 1e-9)));
  lp->diverged = st.skipped && !std::isfinite(st.loss);
  if (st.skipped) {
    if (lp->bad_run++ == 0) lp->first_bad = st.step;
    LogWarn("step %lld: %s is not finite; update skipped (%d in a row)", (long long)st.step,
            std::isfinite(st.loss) ? "the gradient" : "the loss", lp->bad_run);
    if (lp->bad_run >= opt_.max_bad_steps)
      return Status::Invalid("steps " + std::to_string(lp->first_bad) + " to " +
                             std::to_string(st.step) +
                             " all had a non-finite loss or gradient; stopping (the last good "
                             "checkpoint: " +
                             LastGood() + "; try a lower --lr)");
  } else {
    lp->bad_run = 0;
  }
  if (!warned_epochs_ && epochs() > kUsefulEpochs) {
    warned_epochs_ = true;
    LogWarn(
        "step %lld: the run has passed %.0f epochs of its %llu training tokens; repeated data "
        "helps little beyond that (Muennighoff et al. 2023): more data, a larger model or "
        "--max-epochs serve better%s",
        (long long)st.step, kUsefulEpochs,
        (unsigned long long)ds_->info().tokens[(int)Split::kTrain],
        opt_.keep_best ? "; RUN/best keeps the weights of lowest validation loss" : "");
  }
  const double t = lp->now();
  if (t - lp->last_log < opt_.cadence.log_seconds && !Finished() && st.step != 1)
    return Status::OK();
  // The whole job's tokens/s and MFU (over every rank's device), and each
  // rank's share beside them.
  const double tps =
      (double)(step_ - lp->log_step0) * tokens_per_step() / std::max(t - lp->log_t0, 1e-9);
  char mfu[32], per[48] = "";
  if (lp->peak > 0)
    snprintf(mfu, sizeof mfu, "MFU %.1f%%",
             100.0 * tps * lp->flops_per_token / (lp->peak * world()));
  else
    snprintf(mfu, sizeof mfu, "MFU unknown");
  if (world() > 1) snprintf(per, sizeof per, " (%s per rank)", FormatRate(tps / world()).c_str());
  const double left =
      budget() > 0 ? budget() - elapsed() : (double)(total_steps_ - step_) * lp->avg_step;
  const std::string of = total_steps_ >= 0 ? "/" + std::to_string(total_steps_) : "";
  LogInfo(
      "step %lld%s | epoch %.2f | loss %.4f | lr %.2e | grad norm %.3f | %s tok/s%s | %s | %s "
      "elapsed, %s left",
      (long long)step_, of.c_str(), epochs(), st.loss, st.lr, st.grad_norm, FormatRate(tps).c_str(),
      per, mfu, FormatDuration(elapsed()).c_str(), FormatDuration(std::max(0.0, left)).c_str());
  lp->last_log = t;
  lp->log_step0 = step_;
  lp->log_t0 = t;
  return Status::OK();
}

// Between steps: validation, a sample and a checkpoint, each when due.
// Each is the same decision on every rank (the clock and the SIGUSR1 flag are
// agreed); the clock is agreed again after each.
Status Trainer::Periodic(Loop* lp) {
  const Cadence& c = opt_.cadence;
  const double t = lp->now();
  if (Due(c.val, step_, t, lp->last_val)) {
    LM_RETURN_IF_ERROR(RunValidation(lp));
    LM_RETURN_IF_ERROR(Sync(Status::OK()));
    lp->last_val = lp->now();
  }
  if (Due(c.sample, step_, t, lp->last_sample)) {
    RunSample();
    LM_RETURN_IF_ERROR(Sync(Status::OK()));
    lp->last_sample = lp->now();
  }
  if (lp->checkpoint) {
    lp->checkpoint = false;
    return SaveFor("SIGUSR1", lp);
  }
  if (Due(c.ckpt, step_, lp->now(), lp->last_ckpt)) {
    if (last_saved_ != step_) return SaveFor("periodic", lp);
    lp->last_ckpt = lp->now();  // saved already at this step (RUN/best)
  }
  return Status::OK();
}

Status Trainer::RunValidation(Loop* lp) {
  if (!has_val()) return Status::OK();
  double loss, bpb;
  Status s = Validate(&loss, &bpb);
  if (s.code() == Status::kInvalid && s.message().find("not finite") != std::string::npos) {
    // Weights that diverged: recorded as such (null in metrics.jsonl); the
    // non-finite steps and the refusal to save them deal with the run.
    LogWarn("step %lld: validation: %s", (long long)step_, s.message().c_str());
    return LogVal(NAN, NAN);
  }
  LM_RETURN_IF_ERROR(s);
  LM_RETURN_IF_ERROR(LogVal(loss, bpb));
  LogInfo("step %lld: val loss %.4f (%.4f bits/byte)", (long long)step_, loss, bpb);
  return UpdateBest(loss, lp);
}

// A validation loss below every earlier one makes this step RUN/best (saved
// now unless it is already), so that a run that overfits keeps its best
// weights whatever --keep prunes. Saving is optional, as a periodic one.
Status Trainer::UpdateBest(double loss, Loop* lp) {
  if (!opt_.keep_best || (best_step_ >= 0 && !(loss < best_loss_))) return Status::OK();
  const int64_t prev_step = best_step_;
  const double prev_loss = best_loss_;
  best_step_ = step_;  // before the save, so that the checkpoint records itself as best
  best_loss_ = loss;
  if (last_saved_ != step_) LM_RETURN_IF_ERROR(SaveFor("best", lp));
  // Rank 0 writes RUN/best; every rank learns whether it did.
  Status s = last_saved_ != step_ ? Status::IOError("not saved")  // diverged, or the disk is full
             : rank() == 0
                 ? PointBest(opt_.out_dir, JoinPath(opt_.out_dir, CheckpointDirName(step_)))
                 : Status::OK();
  if (last_saved_ == step_ && world() > 1) {
    double failed = s.ok() ? 0.0 : 1.0;
    LM_RETURN_IF_ERROR(comm_->AllReduce(&failed, 1, ReduceOp::kMax));
    if (failed > 0 && s.ok()) s = Status::IOError("rank 0 could not write RUN/best");
  }
  if (!s.ok()) {
    if (last_saved_ == step_ && rank() == 0)
      LogWarn("step %lld: cannot update RUN/best: %s", (long long)step_, s.ToString().c_str());
    best_step_ = prev_step;
    best_loss_ = prev_loss;
  }
  return Status::OK();
}

void Trainer::RunSample() {
  if (!has_val() || rank() > 0) return;  // rank 0's log only
  std::string prompt, text;
  Status s = Sample(&prompt, &text);
  if (!s.ok()) {
    LogWarn("sample failed: %s", s.ToString().c_str());
    return;
  }
  LogInfo("sample: [%s]%s", Escaped(prompt).c_str(), Escaped(text).c_str());
}

std::string Trainer::LastGood() const {
  return last_saved_ >= 0 ? JoinPath(opt_.out_dir, CheckpointDirName(last_saved_))
                          : std::string("none was written");
}

// A checkpoint for `why`. The periodic and SIGUSR1 ones are optional: weights
// that diverged are not saved, and a full disk or another I/O error leaves the
// previous checkpoint as it is, with a warning, to be retried at the next
// interval. The others (a stop, the end) must succeed.
Status Trainer::SaveFor(const char* why, Loop* lp) {
  const bool optional = !strcmp(why, "periodic") || !strcmp(why, "SIGUSR1") || !strcmp(why, "best");
  if (lp->diverged) {
    if (optional) {
      LogWarn("step %lld: not saved: the weights give a non-finite loss", (long long)step_);
      return Status::OK();
    }
    return Status::Invalid("step " + std::to_string(step_) +
                           ": the weights give a non-finite loss, so they are not saved (the last "
                           "good checkpoint: " +
                           LastGood() + "; try a lower --lr)");
  }
  std::string dir;
  Status s = Save(&dir);
  if (s.ok()) s = Sync(Status::OK());  // the clock, after the write
  lp->last_ckpt = lp->now();
  if (s.ok()) {
    LogInfo("step %lld: saved %s (%s)", (long long)step_, dir.c_str(), why);
    return Status::OK();
  }
  if (s.code() == Status::kInvalid && s.message().find("diverged") != std::string::npos)
    return Status::Invalid(s.message() + " (the last good checkpoint: " + LastGood() +
                           "; try a lower --lr)");
  if (optional && s.code() == Status::kIOError) {
    LogWarn(
        "step %lld: the %s checkpoint failed: %s; training goes on, the last checkpoint (%s) "
        "is intact, and the next interval tries again",
        (long long)step_, why, s.ToString().c_str(), LastGood().c_str());
    return Status::OK();
  }
  return s;
}

// After the loop: the checkpoint and the last word for a stop signal,
// --stop-at, or the end of the run (with its final validation and sample).
Status Trainer::End(const TrainOutcome& out, Loop* lp) {
  if (out.signal) {
    if (last_saved_ != step_) LM_RETURN_IF_ERROR(SaveFor(SignalName(out.signal), lp));
    LogInfo("stopped by %s at step %lld; saved %s; rerun the same command to continue",
            SignalName(out.signal), (long long)step_,
            JoinPath(opt_.out_dir, CheckpointDirName(step_)).c_str());
    return Status::OK();
  }
  if (!out.stop_reason.empty()) {
    if (last_saved_ != step_) LM_RETURN_IF_ERROR(SaveFor(out.stop_reason.c_str(), lp));
    LogInfo("stopped at step %lld (%s); rerun without it to continue", (long long)step_,
            out.stop_reason.c_str());
    return Status::OK();
  }
  LM_RETURN_IF_ERROR(RunValidation(lp));
  if (!opt_.cadence.sample.off()) RunSample();
  // A checkpoint of this step written before the deadline passed (a periodic
  // one at the last step) does not say the run ended: written again.
  if (last_saved_ != step_ || (opt_.budget_seconds > 0 && !last_saved_ended_))
    LM_RETURN_IF_ERROR(SaveFor("final", lp));
  LogInfo("done: %lld steps, %llu tokens in %s", (long long)step_, (unsigned long long)tokens_seen_,
          FormatDuration(elapsed()).c_str());
  return Status::OK();
}

}  // namespace lm
