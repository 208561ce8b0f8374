#!/usr/bin/env bats
# train-crash.bats: lm-train under kill -9, a full disk, read-only storage and
# a run directory inside its dataset. The full campaigns are
# tests/crash/train-kill.sh -n 100 and tests/crash/train-full-disk.sh
# (docs/RELIABILITY.md); these run small versions of them.

bats_require_minimum_version 1.5.0
load train_helpers

setup_file() { train_setup_file; }

@test "crash: kill -9 at random moments: each rerun resumes from the newest complete checkpoint and ends bitwise as an uninterrupted run" {
  run "$BATS_TEST_DIRNAME/../crash/train-kill.sh" -n 8 -s 3 -w "$BATS_TEST_TMPDIR/kill"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "$output" == *"train-kill: 8 kills, "*" 0 failed checks"* ]]
}

@test "crash: a full disk fails a checkpoint with a warning, keeps the last one, and exit 1 when the final one fails" {
  run "$BATS_TEST_DIRNAME/../crash/train-full-disk.sh" -w "$BATS_TEST_TMPDIR/disk"
  echo "$output"
  [ "$status" -eq 77 ] && skip "cannot mount a tmpfs here (needs root)"
  [ "$status" -eq 0 ]
}

# ro RUN / rw RUN: make RUN read-only storage (a read-only bind mount as
# root, whom modes do not stop; the modes otherwise), and back.
ro() {
  if [ "$(id -u)" -eq 0 ]; then
    mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1"
  else
    chmod -R a-w "$1"
  fi
}
rw() {
  if [ "$(id -u)" -eq 0 ]; then umount "$1"; else chmod -R u+w "$1"; fi
}

@test "crash: a complete run on read-only storage says it is complete (exit 0)" {
  r="$BATS_TEST_TMPDIR/run"
  train "$r" --steps 2 2>/dev/null
  ro "$r" || skip "cannot make a read-only directory here"
  run --separate-stderr train "$r" --steps 2
  local s1=$status e1=$stderr
  # Not complete: asked for more steps, it is an error, not a lock failure.
  run --separate-stderr train "$r" --steps 4
  rw "$r"
  [ "$s1" -eq 0 ]
  [[ "$e1" == *"is already complete at step 2 (read-only"* ]]
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"cannot write in the run directory (read-only), and the run is not complete"* ]]
}

@test "crash: a run directory inside the dataset is refused" {
  cp -r "$D/shards" "$BATS_TEST_TMPDIR/shards"
  run --separate-stderr train "$BATS_TEST_TMPDIR/shards/run" --data "$BATS_TEST_TMPDIR/shards" --steps 1
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"lies inside --data"* ]]
  [ ! -e "$BATS_TEST_TMPDIR/shards/run" ]
}
