#!/usr/bin/env bats
# lm-train data-parallel under mpirun (issue 17): 2 and 3 ranks train as one
# process does, a run resumes on another number of ranks, a stop signal to one
# rank or to all checkpoints once and ends every rank with that signal, and a
# rank that dies or hangs ends the others within --comm-timeout. Skipped
# without mpirun or an lm-train built with MPI.

bats_require_minimum_version 1.5.0
load train_helpers

setup_file() { train_setup_file; }

setup() {
  command -v mpirun >/dev/null || skip "mpirun not found (scripts/install-deps.sh installs Open MPI)"
  ldd "$LM_BIN/lm-train" | grep -q libmpi || skip "lm-train was built without MPI"
  MPIRUN=(mpirun --oversubscribe)
  [ "$(id -u)" -ne 0 ] || MPIRUN+=(--allow-run-as-root)
  # Suppression (ASan builds of .ci/run): Open MPI leaks its own allocations
  # at MPI_Finalize (libmpi, and MCA components it has unloaded by then, so
  # that no frame can name them), which LeakSanitizer reports at exit.
  [ -z "${LM_SANITIZER:-}" ] || export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
  # A tiny model: 12 sequences of 32 tokens a step, 6, 3 or 2 micro-steps of
  # 2 sequences on each of 1, 2 or 3 ranks.
  DIST=(--batch-tokens 384 --micro-batch 2)
}

# losses RUN: "step loss" and "step val_loss" lines of RUN/metrics.jsonl.
losses() {
  python3 -c '
import json, sys
for r in map(json.loads, open(sys.argv[1] + "/metrics.jsonl")):
    k = "loss" if "loss" in r else "val_loss"
    print(r["step"], k, repr(r[k]))' "$1"
}

# same_losses A B TOL: every loss of A and B within TOL (relative), same steps.
same_losses() {
  paste -d' ' <(losses "$1") <(losses "$2") | awk -v tol="$3" '
    $1 != $4 || $2 != $5 { print "step mismatch: " $0; bad = 1 }
    { d = $3 - $6; if (d < 0) d = -d; if (d > tol * ($3 < 0 ? -$3 : $3)) { print "differ: " $0; bad = 1 } }
    END { exit bad }'
}

# mpi_train N RUN ARGS...: lm-train on N ranks under mpirun.
mpi_train() {
  local n=$1
  shift
  train_args "$@"
  "${MPIRUN[@]}" -np "$n" lm-train "${ARGS[@]}"
}

# mpi_train_bg N DIR RUN ARGS...: the same in the background (MPI_PID), each
# rank through a wrapper that keeps its lm-train's pid in DIR/pid.R, its
# stderr in DIR/err.R and its exit status in DIR/status.R. The wrapper
# ignores SIGTERM (mpirun signals it when a rank dies), so that the status
# is always written; lm-train sets its own handlers.
mpi_train_bg() {
  local n=$1 dir=$2
  shift 2
  cat >"$dir/rank.sh" <<'SH'
#!/bin/bash
trap '' TERM INT HUP
dir=$1
shift
r=${OMPI_COMM_WORLD_RANK:-0}
lm-train "$@" 2>"$dir/err.$r" &
pid=$!
echo "$pid" >"$dir/pid.$r"
wait "$pid"
echo $? >"$dir/status.$r"
SH
  chmod +x "$dir/rank.sh"
  train_args "$@"
  "${MPIRUN[@]}" -np "$n" "$dir/rank.sh" "$dir" "${ARGS[@]}" >"$dir/mpirun.log" 2>&1 &
  MPI_PID=$!
}

# wait_pid PID SECONDS: until PID has exited (fails on timeout); $? of wait in WAIT_STATUS.
wait_pid() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    if ! kill -0 "$1" 2>/dev/null; then
      WAIT_STATUS=0
      wait "$1" || WAIT_STATUS=$?
      return 0
    fi
    sleep 0.1
  done
  echo "pid $1 still running after $2 s" >&2
  return 1
}

@test "dist: 2 and 3 ranks train the same steps as 1, losses within 1e-6 relative" {
  one="$BATS_TEST_TMPDIR/one"
  train "$one" --steps 4 "${DIST[@]}" --val-every 2 2>/dev/null
  for n in 2 3; do
    run --separate-stderr mpi_train "$n" "$BATS_TEST_TMPDIR/r$n" --steps 4 "${DIST[@]}" --val-every 2
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"2 x 32 tokens x $((6 / n)) micro-steps x $n ranks = 384 tokens per step"* ]]
    [[ "$stderr" == *"per rank"* ]]
    same_losses "$one" "$BATS_TEST_TMPDIR/r$n" 1e-6
    grep -q '"ranks": '"$n" "$BATS_TEST_TMPDIR/r$n/step-0000004/trainer-state.json"
    # Rank 0 alone logs: one plan line, one final line.
    [ "$(grep -c 'tokens per step' <<<"$stderr")" -eq 1 ]
    [ "$(grep -c '^lm-train: done' <<<"$stderr")" -eq 1 ]
  done
}

@test "dist: --optimizer muon on 2 ranks trains as 1 does; RUN/best; a batch warmup runs" {
  # Each rank orthogonalises the matrices of its own shard.
  opts=(--steps 4 "${DIST[@]}" --val-every 2 --optimizer muon --zero-init)
  one="$BATS_TEST_TMPDIR/one" two="$BATS_TEST_TMPDIR/two"
  train "$one" "${opts[@]}" 2>/dev/null
  run --separate-stderr mpi_train 2 "$two" "${opts[@]}"
  [ "$status" -eq 0 ]
  same_losses "$one" "$two" 1e-5
  [ "$(readlink "$two/best")" = "$(readlink "$one/best")" ]
  # A batch warmup rounds each rank's sequences (so not the one-rank steps):
  # its unequal micro-batches weigh their share of the step's targets.
  run --separate-stderr mpi_train 2 "$BATS_TEST_TMPDIR/warm" "${opts[@]}" --batch-warmup 0.5
  [ "$status" -eq 0 ]
  [ "$(losses "$BATS_TEST_TMPDIR/warm" | grep -c ' loss ')" -eq 4 ]
}

@test "dist: a run resumes on another number of ranks, on the same data order and schedule" {
  one="$BATS_TEST_TMPDIR/one" r="$BATS_TEST_TMPDIR/r"
  train "$one" --steps 6 "${DIST[@]}" --val-every 2 2>/dev/null
  mpi_train 2 "$r" --steps 6 "${DIST[@]}" --val-every 2 --stop-at 3 2>/dev/null
  [ "$(readlink "$r/latest")" = step-0000003 ]
  run --separate-stderr mpi_train 3 "$r" --steps 6 "${DIST[@]}" --val-every 2
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"resuming from $r/step-0000003"* ]]
  same_losses "$one" "$r" 1e-6
  python3 - "$one/step-0000006" "$r/step-0000006" <<'PY'
import json, sys
a, b = (json.load(open(d + "/trainer-state.json")) for d in sys.argv[1:])
for k in ("step", "tokens_seen", "loader", "adam_step"):
    assert a[k] == b[k], (k, a[k], b[k])
assert a["schedule"]["progress"] == b["schedule"]["progress"]
PY
  # And back to one process.
  run --separate-stderr train "$r" --steps 8 "${DIST[@]}"
  [ "$status" -eq 0 ]
  [ "$(readlink "$r/latest")" = step-0000008 ]
}

@test "dist: a --batch-tokens that does not split over the ranks is refused" {
  run --separate-stderr mpi_train 3 "$BATS_TEST_TMPDIR/r" --steps 2 --batch-tokens 256
  [ "$status" -ne 0 ]
  [[ "$stderr" == *"rank 0: error: --batch-tokens 256 does not split into whole sequences over the ranks: it must be a multiple of context 32 x 3 ranks = 96"* ]]
  [[ "$stderr" == *"rank 2: error:"* ]]
  [ ! -e "$BATS_TEST_TMPDIR/r" ]
}

# stop_test KILLWHO: SIGTERM to rank 1, or to every rank; both must save one
# checkpoint and die of SIGTERM.
stop_test() {
  d="$BATS_TEST_TMPDIR" r="$BATS_TEST_TMPDIR/run"
  mpi_train_bg 2 "$d" "$r" --steps 1000000 "${DIST[@]}" --val-every 0 --comm-timeout 20s
  wait_for "$d/err.0" "step 1" 30
  if [ "$1" = one ]; then kill -TERM "$(cat "$d/pid.1")"; else kill -TERM "$(cat "$d/pid.0")" "$(cat "$d/pid.1")"; fi
  wait_pid "$MPI_PID" 60
  [ "$(cat "$d/status.0")" -eq 143 ]
  [ "$(cat "$d/status.1")" -eq 143 ]
  [ "$(grep -c 'saved .* (SIGTERM)' "$d/err.0")" -eq 1 ]
  grep -q "stopped by SIGTERM" "$d/err.0"
  [ "$(cd "$r" && ls -d step-* | wc -l)" -eq 1 ]
  step=$(readlink "$r/latest")
  # The checkpoint resumes (one process) from where the ranks stopped.
  run --separate-stderr train "$r" --steps "$((10#${step#step-} + 1))" "${DIST[@]}" --val-every 0
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"resuming from $r/$step"* ]]
}

@test "dist: SIGTERM to one rank: both checkpoint once and die of SIGTERM" {
  stop_test one
}

@test "dist: SIGTERM to every rank (as Slurm sends it): one checkpoint, both die of SIGTERM" {
  stop_test all
}

@test "dist: kill -9 of one rank: the others end within --comm-timeout, the last checkpoint intact" {
  d="$BATS_TEST_TMPDIR" r="$BATS_TEST_TMPDIR/run"
  mpi_train_bg 2 "$d" "$r" --steps 1000000 "${DIST[@]}" --val-every 0 --ckpt-every 20 --comm-timeout 20s
  wait_for "$d/err.0" "saved" 60
  start=$SECONDS
  kill -KILL "$(cat "$d/pid.1")"
  wait_pid "$MPI_PID" 30  # --comm-timeout 20s, and a margin
  [ "$WAIT_STATUS" -ne 0 ]
  [ "$((SECONDS - start))" -le 25 ]
  [ "$(cat "$d/status.0" 2>/dev/null || echo killed)" != 0 ]
  step=$(readlink "$r/latest")
  run --separate-stderr train "$r" --steps "$((10#${step#step-} + 1))" "${DIST[@]}" --val-every 0
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"resuming from $r/$step"* ]]
}

@test "dist: a rank that hangs (SIGSTOP) ends the others after --comm-timeout, exit 1" {
  d="$BATS_TEST_TMPDIR" r="$BATS_TEST_TMPDIR/run"
  mpi_train_bg 2 "$d" "$r" --steps 1000000 "${DIST[@]}" --val-every 0 --comm-timeout 3s
  wait_for "$d/err.0" "step 1" 30
  start=$SECONDS
  kill -STOP "$(cat "$d/pid.1")"
  wait_for "$d/err.0" "no answer from the other ranks" 15
  [ "$((SECONDS - start))" -le 6 ]
  grep -q "lm-train: rank 0: error: .*: no answer from the other ranks in 3s (--comm-timeout)" "$d/err.0"
  kill -CONT "$(cat "$d/pid.1")" 2>/dev/null || true
  wait_pid "$MPI_PID" 30
  [ "$WAIT_STATUS" -ne 0 ]
  [ "$(cat "$d/status.0")" -eq 1 ]
}
