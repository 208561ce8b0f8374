#!/usr/bin/env bash
# train-kill.sh: kill -9 lm-train at random moments, rerun the same command,
# and check what docs/RELIABILITY.md promises:
#   - after every kill, RUN/latest is absent or names a complete checkpoint
#     (lm-sample loads it, every file's checksum verified);
#   - every rerun resumes from that newest complete checkpoint;
#   - the run, once it completes, is bitwise the run that was never
#     interrupted (model.safetensors and optimizer state, CPU backend).
# Checkpoints come every step, so that many kills land inside a checkpoint
# write (the moments are uniform over each attempt's lifetime).
#
#   tests/crash/train-kill.sh [-n KILLS] [-s SEED] [-w WORKDIR]
#
# Prints one line per kill and a summary; exits 1 when any check failed.
# Needs bin/lm-* (make) and lm-tokenize/lm-pack on the way to its data.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export PATH="$root/bin:$PATH"
kills=100 seed=1 work=
while getopts "n:s:w:" o; do
  case $o in
    n) kills=$OPTARG ;;
    s) seed=$OPTARG ;;
    w) work=$OPTARG ;;
    *) echo "usage: $0 [-n KILLS] [-s SEED] [-w WORKDIR]" >&2; exit 2 ;;
  esac
done
[ -n "$work" ] || { work=$(mktemp -d); trap 'rm -rf "$work"' EXIT; }
mkdir -p "$work"
RANDOM=$seed
source "$root/tests/bats/train_helpers.bash"
D="$work/data"
make_data "$D" || { echo "train-kill: cannot make the data" >&2; exit 1; }

STEPS=24
args() {  # args RUN: the one command every attempt reruns
  train_args "$1" --steps "$STEPS" --ckpt-every 1 --keep 2 --val-every 8
}
digest() {  # digest STEPDIR: the weights and the optimizer state
  cat "$1/model.safetensors" "$1"/optimizer*.safetensors "$1"/optimizer/*.safetensors 2>/dev/null |
    sha256sum | cut -d' ' -f1
}
args "$work/ref"
lm-train "${ARGS[@]}" 2>"$work/ref.log" || { echo "train-kill: the reference run failed" >&2; exit 1; }
want=$(digest "$work/ref/step-$(printf %07d $STEPS)")

n=0 runs=0 completed=0 bad=0
run="$work/run-0"
while [ $n -lt "$kills" ]; do
  before=$(readlink "$run/latest" 2>/dev/null || echo none)
  args "$run"
  lm-train "${ARGS[@]}" 2>"$work/attempt.log" &
  pid=$!
  # Uniform over about one attempt's lifetime (start-up, steps, saves).
  sleep "$(printf '0.%03d' $((RANDOM % 1000)))"
  if kill -9 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null
    n=$((n + 1))
    now=$(readlink "$run/latest" 2>/dev/null || echo none)
    ok=yes
    if [ "$now" != none ] && ! lm-sample --ckpt "$run" -n 0 -q --device cpu </dev/null >/dev/null 2>"$work/check.log"; then
      ok="no: latest ($now) does not load: $(cat "$work/check.log")"
    elif [ "$before" != none ] && ! grep -q "resuming from $run/$before " "$work/attempt.log" &&
      grep -q "resuming from" "$work/attempt.log"; then
      ok="no: resumed from $(grep -o 'resuming from [^ ]*' "$work/attempt.log"), not $before"
    fi
    [ "$ok" = yes ] || bad=$((bad + 1))
    echo "kill $n: latest $before -> $now: $ok"
    continue
  fi
  # The attempt finished before the kill: it must be the reference run.
  wait "$pid"
  rc=$?
  got=$(digest "$run/step-$(printf %07d $STEPS)" 2>/dev/null)
  runs=$((runs + 1))
  if [ $rc -eq 0 ] && [ "$got" = "$want" ]; then
    completed=$((completed + 1))
    echo "run $runs: complete and bitwise the uninterrupted run"
  else
    bad=$((bad + 1))
    echo "run $runs: exit $rc, digest ${got:-none} (want $want)"
    cat "$work/attempt.log"
  fi
  run="$work/run-$runs"
done
# The last run, finished without kills.
args "$run"
if lm-train "${ARGS[@]}" 2>"$work/attempt.log" &&
  [ "$(digest "$run/step-$(printf %07d $STEPS)")" = "$want" ]; then
  completed=$((completed + 1))
else
  bad=$((bad + 1))
  echo "last run: not bitwise the uninterrupted run"
fi
echo "train-kill: $n kills, $completed runs completed bitwise, $bad failed checks"
[ $bad -eq 0 ]
