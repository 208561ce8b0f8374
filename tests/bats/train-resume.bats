#!/usr/bin/env bats
# lm-train: resuming is bitwise identical on the CPU; signals checkpoint.

bats_require_minimum_version 1.5.0
load train_helpers
load state_helpers

setup_file() { train_setup_file; }

@test "resume: N steps straight == N/2, stop, rerun the same command (bitwise)" {
  a="$BATS_TEST_TMPDIR/a" b="$BATS_TEST_TMPDIR/b"
  train "$a" --steps 8 --val-every 3 --batch-tokens 256 2>/dev/null
  run --separate-stderr train "$b" --steps 8 --val-every 3 --batch-tokens 256 --stop-at 4
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"stopped at step 4"* ]]
  [ "$(readlink "$b/latest")" = step-0000004 ]
  run --separate-stderr train "$b" --steps 8 --val-every 3 --batch-tokens 256
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"resuming from $b/step-0000004"* ]]
  for f in model.safetensors optimizer/optimizer.safetensors; do
    [ "$(sha "$a/step-0000008/$f")" = "$(sha "$b/step-0000008/$f")" ]
  done
  # The loader cursor and step counters agree too, and metrics.jsonl holds each step once.
  python3 - "$a" "$b" <<'PY'
import json, sys
a, b = (json.load(open(d + "/step-0000008/trainer-state.json")) for d in sys.argv[1:])
for k in ("step", "tokens_seen", "loader", "rng", "adam_step"):
    assert a[k] == b[k], (k, a[k], b[k])
def losses(d):
    return [(r["step"], r["loss"]) for r in map(json.loads, open(d + "/metrics.jsonl")) if "loss" in r]
assert losses(sys.argv[1]) == losses(sys.argv[2])
PY
}

@test "resume: --resume without model options takes the run's model, length and vocabulary" {
  r="$BATS_TEST_TMPDIR/run"
  train "$r" --steps 5 --stop-at 2 2>/dev/null
  # The vocabulary then comes from step-0000002, which --keep 1 deletes on the way.
  run --separate-stderr lm-train --data "$D/shards" --out "$r" --resume --device cpu --threads 1 \
    --ckpt-every 1 --keep 1
  [ "$status" -eq 0 ]
  [ "$(readlink "$r/latest")" = step-0000005 ]
  [ "$(cd "$r" && echo step-*)" = step-0000005 ]
  cmp "$r/latest/tok.bpe" "$D/tok.bpe"
  # The run's micro-batch and learning rate were used: the same weights as straight through.
  train "$BATS_TEST_TMPDIR/straight" --steps 5 2>/dev/null
  [ "$(sha "$r/latest/model.safetensors")" = "$(sha "$BATS_TEST_TMPDIR/straight/latest/model.safetensors")" ]
}

@test "resume: --resume alone keeps the run's schedule, optimizer and seed (bitwise)" {
  a="$BATS_TEST_TMPDIR/a" b="$BATS_TEST_TMPDIR/b"
  opts=(--steps 8 --val-every 0 --schedule cosine --warmup 2 --beta2 0.99 --weight-decay 0.01
    --grad-clip 0.5 --seed 5)
  train "$a" "${opts[@]}" 2>/dev/null
  train "$b" "${opts[@]}" --stop-at 4 2>/dev/null
  run --separate-stderr lm-train --data "$D/shards" --out "$b" --resume --device cpu --threads 1 \
    --val-every 0
  [ "$status" -eq 0 ]
  [[ "$stderr" != *warning* ]]
  [ "$(sha "$a/step-0000008/model.safetensors")" = "$(sha "$b/step-0000008/model.safetensors")" ]
  grep -q '"seed": 5,' "$b/step-0000008/trainer-state.json"
}

@test "resume: an optimizer or schedule option changed on resume is warned about" {
  r="$BATS_TEST_TMPDIR/run"
  train "$r" --steps 4 --val-every 0 --stop-at 2 2>/dev/null
  run --separate-stderr train "$r" --steps 4 --val-every 0 --lr 1e-3 --schedule cosine --seed 3
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"warning: resuming with --lr 0.001; the run used 0.0006"* ]]
  [[ "$stderr" == *"warning: resuming with --schedule cosine; the run used wsd"* ]]
  [[ "$stderr" == *"warning: --seed 3 is ignored when resuming: the run (seed 1) continues"* ]]
}

@test "resume: --tokens resumed with another --batch-tokens still ends at --tokens" {
  r="$BATS_TEST_TMPDIR/run"
  train "$r" --tokens 2048 --batch-tokens 128 --val-every 0 --stop-at 8 2>/dev/null
  run --separate-stderr train "$r" --tokens 2048 --batch-tokens 256 --val-every 0
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"length: 12 steps (2048 tokens)"* ]]
  [[ "$stderr" != *"different run length"* ]]
  [ "$(readlink "$r/latest")" = step-0000012 ]
  grep -q '"tokens_seen": 2048,' "$r/latest/trainer-state.json"
  # --resume alone keeps the run's --tokens, and a straight run is unchanged.
  train "$BATS_TEST_TMPDIR/a" --tokens 1024 --val-every 0 --stop-at 3 2>/dev/null
  lm-train --data "$D/shards" --out "$BATS_TEST_TMPDIR/a" --resume --device cpu --threads 1 \
    --val-every 0 2>/dev/null
  train "$BATS_TEST_TMPDIR/b" --tokens 1024 --val-every 0 2>/dev/null
  [ "$(sha "$BATS_TEST_TMPDIR/a/step-0000008/model.safetensors")" = \
    "$(sha "$BATS_TEST_TMPDIR/b/step-0000008/model.safetensors")" ]
}

@test "resume: a finished run is left alone" {
  r="$BATS_TEST_TMPDIR/run"
  train "$r" --steps 2 2>/dev/null
  before=$(sha "$r/latest/model.safetensors")
  run --separate-stderr train "$r" --steps 2
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"already complete at step 2"* ]]
  [ "$(sha "$r/latest/model.safetensors")" = "$before" ]
}

@test "resume: a --budget run that ended just short of its deadline is left alone" {
  # The loop does not begin a step that would end well past the deadline, so
  # the final checkpoint may hold less than the budget: here made so by hand.
  r="$BATS_TEST_TMPDIR/run"
  train "$r" --budget 2s --val-every 0 --log-every 100 2>/dev/null
  edit_state "$r/latest/trainer-state.json" 's/"elapsed_seconds": .*/"elapsed_seconds": 1.5,/'
  before=$(sha "$r/latest/model.safetensors")
  run --separate-stderr train "$r" --budget 2s --val-every 0
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"already complete"* ]]
  [ "$(sha "$r/latest/model.safetensors")" = "$before" ]
  # A longer budget goes on.
  run --separate-stderr train "$r" --budget 3s --val-every 0
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"done:"* ]]
}

@test "resume: a --budget run's last checkpoint says it ended, even when saved before the deadline" {
  # With a checkpoint every step, the deadline mostly passes while one is
  # written: that checkpoint, of the last step, said "ended": false until the
  # final save wrote it again. Scripts (the demo) read that flag.
  for i in 1 2 3; do
    r="$BATS_TEST_TMPDIR/run$i"
    train "$r" --budget 2s --ckpt-every 1 --keep 2 --val-every 0 2>/dev/null
    grep -q '"ended": *true' "$r/latest/trainer-state.json"
  done
}

@test "resume: --resume on an empty run directory is an error" {
  run --separate-stderr train "$BATS_TEST_TMPDIR/none" --steps 2 --resume
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"no checkpoint to resume from"* ]]
}

@test "resume: a run holding a different model is refused" {
  r="$BATS_TEST_TMPDIR/run"
  train "$r" --steps 1 2>/dev/null
  run --separate-stderr train "$r" --steps 2 --dim 128
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"holds a different model (dim 64 (run) vs 128 (asked))"* ]]
  [ "$(readlink "$r/latest")" = step-0000001 ]
}

@test "signals: SIGINT finishes the step, checkpoints and dies of the signal (130); the rerun completes" {
  r="$BATS_TEST_TMPDIR/run"
  train_bg "$BATS_TEST_TMPDIR/log" "$r" --steps 100000 --log-every 0 --val-every 0
  pid=$TRAIN_PID
  wait_for "$BATS_TEST_TMPDIR/log" "step 3/" 60
  kill -INT "$pid"
  rc=0
  wait "$pid" || rc=$?
  [ "$rc" -eq 130 ]  # so that `lm-train ... && lm-eval ...` stops there
  grep -q "stopped by SIGINT at step [0-9]*; saved $r/step-" "$BATS_TEST_TMPDIR/log"
  step=$(sed -n 's/.*stopped by SIGINT at step \([0-9]*\).*/\1/p' "$BATS_TEST_TMPDIR/log")
  [ "$step" -ge 3 ]
  [ "$(readlink "$r/latest")" = "$(printf 'step-%07d' "$step")" ]
  [ "$(grep -c '"loss"' "$r/metrics.jsonl")" -eq "$step" ]
  run --separate-stderr train "$r" --steps $((step + 2)) --val-every 0
  [ "$status" -eq 0 ]
  [ "$(readlink "$r/latest")" = "$(printf 'step-%07d' $((step + 2)))" ]
}

@test "signals: a stop between micro-steps drops the unfinished step; the resumed run is bitwise the same" {
  # 512 micro-steps a step (about a second even on an idle machine), so
  # that the signal sent just after step 1 lands inside step 2; with fewer,
  # step 3 could end before it, and the run with it.
  a="$BATS_TEST_TMPDIR/a" b="$BATS_TEST_TMPDIR/b"
  train "$a" --steps 3 --val-every 0 --batch-tokens 65536 2>/dev/null
  train_bg "$BATS_TEST_TMPDIR/log" "$b" --steps 3 --val-every 0 --batch-tokens 65536 --log-every 0
  pid=$TRAIN_PID
  wait_for "$BATS_TEST_TMPDIR/log" "step 1/" 120
  sleep 0.2
  kill -TERM "$pid"
  rc=0
  wait "$pid" || rc=$?
  [ "$rc" -eq 143 ]
  grep -q "stopped by SIGTERM" "$BATS_TEST_TMPDIR/log"
  run --separate-stderr train "$b" --steps 3 --val-every 0 --batch-tokens 65536
  [ "$status" -eq 0 ]
  for f in model.safetensors optimizer/optimizer.safetensors; do
    [ "$(sha "$a/step-0000003/$f")" = "$(sha "$b/step-0000003/$f")" ]
  done
}

# stop_with SIG CODE: a long run that gets SIG after its second step
# checkpoints, dies of SIG (status CODE) and leaves no temporary.
stop_with() {
  r="$BATS_TEST_TMPDIR/run"
  train_bg "$BATS_TEST_TMPDIR/log" "$r" --steps 100000 --log-every 0 --val-every 0
  pid=$TRAIN_PID
  wait_for "$BATS_TEST_TMPDIR/log" "step 2/" 60
  kill -"$1" "$pid"
  rc=0
  wait "$pid" || rc=$?
  [ "$rc" -eq "$2" ]
  grep -q "stopped by SIG$1" "$BATS_TEST_TMPDIR/log"
  # Said as soon as the signal came, with what a second one would do.
  grep -q "SIG$1: stopping after this micro-step and saving a checkpoint; send it again to stop at once without saving" "$BATS_TEST_TMPDIR/log"
  [ -L "$r/latest" ]
  [ -z "$(ls -A "$r" | grep tmp)" ]
}

@test "signals: SIGTERM checkpoints too" {
  stop_with TERM 143
}

@test "signals: SIGHUP (a closed terminal or ssh session) checkpoints too" {
  stop_with HUP 129
}

@test "signals: stderr piped to a reader that has gone (tee killed) does not kill the run" {
  r="$BATS_TEST_TMPDIR/run" fifo="$BATS_TEST_TMPDIR/fifo"
  mkfifo "$fifo"
  head -c 1 "$fifo" >/dev/null &
  reader=$!
  train_args "$r" --steps 100000 --log-every 0 --val-every 0
  lm-train "${ARGS[@]}" 2>"$fifo" &
  pid=$!
  wait "$reader"
  # Every step logs a line, so lm-train has written into the broken pipe
  # once metrics.jsonl has grown by a few steps.
  for ((i = 0; i < 600; i++)); do
    [ "$(wc -l <"$r/metrics.jsonl" 2>/dev/null || echo 0)" -ge 5 ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -TERM "$pid" 2>/dev/null || true
  rc=0
  wait "$pid" || rc=$?
  [ "$rc" -eq 143 ]  # died of the SIGTERM, after its checkpoint: not of SIGPIPE (141)
  [ -L "$r/latest" ]
}

@test "signals: SIGUSR1 checkpoints and training goes on" {
  r="$BATS_TEST_TMPDIR/run"
  train_bg "$BATS_TEST_TMPDIR/log" "$r" --steps 100000 --log-every 0 --val-every 0
  pid=$TRAIN_PID
  wait_for "$BATS_TEST_TMPDIR/log" "step 2/" 60
  kill -USR1 "$pid"
  wait_for "$BATS_TEST_TMPDIR/log" "(SIGUSR1)" 60
  s1=$(sed -n 's/.*step \([0-9]*\): saved .*(SIGUSR1).*/\1/p' "$BATS_TEST_TMPDIR/log")
  wait_for "$BATS_TEST_TMPDIR/log" "step $((s1 + 2))/" 60
  kill -INT "$pid"
  rc=0
  wait "$pid" || rc=$?
  [ "$rc" -eq 130 ]
  [ -d "$r/$(printf 'step-%07d' "$s1")" ]
}

@test "resume: under --budget, time lost to a crash still counts" {
  r="$BATS_TEST_TMPDIR/run"
  train_bg "$BATS_TEST_TMPDIR/log" "$r" --budget 8s --ckpt-every 1 --log-every 0 --val-every 0
  pid=$TRAIN_PID
  wait_for "$BATS_TEST_TMPDIR/log" "step 4 " 60
  kill -KILL "$pid"
  wait "$pid" || true
  # The records after the last checkpoint are dropped and redone, but the
  # clock resumes from the last one recorded, not from the checkpoint's.
  lost=$(python3 -c '
import json, sys
print(max(json.loads(l)["elapsed"] for l in open(sys.argv[1])))' "$r/metrics.jsonl")
  saved=$(readlink "$r/latest")
  saved=$((10#${saved#step-}))
  run --separate-stderr train "$r" --budget 8s --ckpt-every 1 --val-every 0
  [ "$status" -eq 0 ]
  python3 - "$r" "$lost" "$saved" <<'PY'
import json, sys
run, lost, saved = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
recs = [json.loads(l) for l in open(run + "/metrics.jsonl") if '"loss"' in l]
steps = [r["step"] for r in recs]
assert steps == list(range(1, len(steps) + 1)), steps   # each step once
st = json.load(open(run + "/latest/trainer-state.json"))
assert st["elapsed_seconds"] >= 7.0, st["elapsed_seconds"]
first = [r for r in recs if r["step"] == saved + 1]
assert first and first[0]["elapsed"] >= lost, (saved, lost, recs)
PY
}
