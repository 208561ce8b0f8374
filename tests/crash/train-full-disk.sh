#!/usr/bin/env bash
# train-full-disk.sh: lm-train on a small tmpfs that fills up, and the
# behaviour docs/RELIABILITY.md promises:
#   1. a checkpoint asked for while the disk is full (SIGUSR1 here; a periodic
#      one takes the same path) fails with a warning, training goes on, and
#      RUN/latest still names the previous, complete checkpoint;
#   2. once there is room again, the next checkpoint succeeds;
#   3. a checkpoint that must succeed (on SIGTERM, or the final one) on a full
#      disk ends the run with exit 1, the previous checkpoint intact, and no
#      step directory that looks whole but is not.
# Needs root (mount -t tmpfs); exits 77 (skipped) when it cannot mount.
#
#   tests/crash/train-full-disk.sh [-w WORKDIR]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export PATH="$root/bin:$PATH"
work=
while getopts "w:" o; do
  case $o in
    w) work=$OPTARG ;;
    *) echo "usage: $0 [-w WORKDIR]" >&2; exit 2 ;;
  esac
done
[ -n "$work" ] || work=$(mktemp -d)
disk="$work/disk"
mkdir -p "$disk"
if ! mount -t tmpfs -o size=4m tmpfs "$disk" 2>/dev/null; then
  echo "train-full-disk: cannot mount a tmpfs here (needs root): skipped"
  exit 77
fi
trap 'kill -9 $pid 2>/dev/null; umount "$disk" 2>/dev/null; rm -rf "$work"' EXIT
source "$root/tests/bats/train_helpers.bash"
D="$work/data"
make_data "$D" || { echo "train-full-disk: cannot make the data" >&2; exit 1; }

fail() { echo "train-full-disk: FAILED: $*"; cat "$work/log"; exit 1; }
steps() { grep -c '"loss"' "$disk/run/metrics.jsonl" 2>/dev/null || echo 0; }
fill() { dd if=/dev/zero of="$disk/ballast$1" bs=64k 2>/dev/null; }
loads() { lm-sample --ckpt "$disk/run" -n 0 -q --device cpu </dev/null >/dev/null 2>&1; }

train_args "$disk/run" --budget 10m --ckpt-every 0 --val-every 0 --keep 0 --log-every 0
lm-train "${ARGS[@]}" 2>"$work/log" &
pid=$!
wait_for "$work/log" "step 3" 30 || fail "no training"
kill -USR1 $pid
wait_for "$work/log" "(SIGUSR1)" 30 || fail "the first checkpoint"
first=$(readlink "$disk/run/latest")
echo "1. saved $first; filling the disk"

fill 1
kill -USR1 $pid
wait_for "$work/log" "checkpoint failed" 30 || fail "no warning for the checkpoint on a full disk"
at=$(steps)
sleep 1
kill -0 $pid 2>/dev/null || fail "training stopped"
[ "$(steps)" -ge "$at" ] || fail "no steps after the failed checkpoint"
[ "$(readlink "$disk/run/latest")" = "$first" ] || fail "latest moved"
loads || fail "latest does not load"
ls -a "$disk/run" | grep -q '^\.tmp-step' && fail "a temporary step directory was left"
echo "   the checkpoint failed with a warning; training went on; $first intact"

rm -f "$disk/ballast1"
kill -USR1 $pid
for i in $(seq 300); do [ "$(readlink "$disk/run/latest")" != "$first" ] && break; sleep 0.1; done
second=$(readlink "$disk/run/latest")
[ "$second" != "$first" ] || fail "no checkpoint once there was room"
loads || fail "the new checkpoint does not load"
echo "2. room again: saved $second"

fill 2
kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 1 ] || fail "SIGTERM on a full disk: exit $rc, want 1"
[ "$(readlink "$disk/run/latest")" = "$second" ] || fail "latest moved"
loads || fail "the previous checkpoint does not load"
for d in "$disk/run"/step-*; do
  lm-sample --ckpt "$d" -n 0 -q --device cpu </dev/null >/dev/null 2>&1 || fail "$d looks whole but does not load"
done
echo "3. SIGTERM on a full disk: exit 1, $second intact, no partial step directory"
grep -E "warning|held back" "$work/log" | sed "s/^/   log: /"
echo "train-full-disk: passed"
