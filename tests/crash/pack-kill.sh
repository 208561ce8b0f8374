#!/usr/bin/env bash
# pack-kill.sh: SIGKILL lm-pack --append writers at random moments while others
# append to the same dataset; then `lm-pack clean` and `lm-pack verify` pass,
# and the dataset holds every document of every writer that committed exactly
# once (in its input's order), and nothing of a writer that did not.
#
#   tests/crash/pack-kill.sh [--rounds N] [--writers W] [--kills K] [--docs D]
#                            [--seed S] [--dir DIR]
#
# Each round starts W writers at once (--append, --label wN, each reading its
# own input of D documents from tests/crash/crash_docs.py through a pipe, in
# 16 pieces 60 ms apart as a slow lm-tokenize would write them, into small
# shards so that each writes several) and SIGKILLs K of them, each after a
# random delay of 0 to 2.5 s (about a writer's life), into the same dataset,
# which grows over the rounds. A writer whose
# label is in the manifest committed (it may have been killed after its
# commit). After the round: lm-pack clean, lm-pack verify, and lm-pack cat
# checked against the inputs of the committed writers. One line per round;
# the last line counts the kills and what they hit. Exits 1 at the first
# failure, leaving the dataset in DIR (default: a temporary directory, removed
# on success). BIN (default bin/) holds the tools.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$here/../../bin}
export PATH="$(cd "$BIN" && pwd):$PATH"
rounds=20 writers=4 kills=3 docs=800 seed=1 dir=
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2 ;;
    --writers) writers=$2 ;;
    --kills) kills=$2 ;;
    --docs) docs=$2 ;;
    --seed) seed=$2 ;;
    --dir) dir=$2 ;;
    *) echo "pack-kill.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift 2
done
work=$(mktemp -d "${TMPDIR:-/tmp}/pack-kill.XXXXXX")
ds=${dir:-$work/ds}
export CRASH_SEED=$seed
RANDOM=$seed
fail() {
  echo "pack-kill.sh: round $round: $*; the dataset is in $ds" >&2
  exit 1
}

killed_before=0 killed_after=0 completed=0 removed=0 next=0
for ((round = 1; round <= rounds; round++)); do
  pids=() ids=()
  for ((i = 0; i < writers; i++)); do
    w=$next
    next=$((next + 1))
    ids+=("$w")
    python3 "$here/crash_docs.py" stream - "$w" "$docs" "$seed" --trickle 60 2>/dev/null |
      lm-pack -o "$ds" --append --label "w$w" --shard-tokens 20000 --block-tokens 4096 \
        --val-fraction 0.2 --seed 3 -q -j 1 &
    pids+=($!)  # lm-pack's
  done
  victims=()
  for ((k = 0; k < kills; k++)); do
    d=$((RANDOM % 2500))
    sleep "$((d / 1000)).$(printf '%03d' $((d % 1000)))"
    i=$((RANDOM % writers))
    kill -9 "${pids[i]}" 2>/dev/null && victims+=("$i") || true
  done
  for ((i = 0; i < writers; i++)); do
    rc=0
    wait "${pids[i]}" || rc=$?
    [ "$rc" -eq 0 ] || [ "$rc" -eq 137 ] || fail "writer w${ids[i]} exited $rc"
    echo "$rc" >"$work/w${ids[i]}.status"
  done
  labels=$(lm-pack inspect "$ds" --labels)
  for ((i = 0; i < writers; i++)); do
    w=${ids[i]}
    committed=0
    grep -qx "w$w" <<<"$labels" && committed=1
    if [ "$(cat "$work/w$w.status")" -eq 137 ]; then
      if [ $committed = 1 ]; then killed_after=$((killed_after + 1)); else killed_before=$((killed_before + 1)); fi
    else
      [ $committed = 1 ] || fail "writer w$w exited 0 but is not in the manifest"
      completed=$((completed + 1))
    fi
    rm -f "$work/w$w.status"
  done
  n=$(lm-pack clean "$ds" -q | wc -l)
  removed=$((removed + n))
  lm-pack verify "$ds" >"$work/verify.out" 2>&1 || fail "verify failed: $(tail -1 "$work/verify.out")"
  if grep -q "not in the manifest" "$work/verify.out"; then fail "verify still sees leftovers: $(cat "$work/verify.out")"; fi
  lm-pack cat "$ds" -o "$work/cat.tok"
  expect=()
  while IFS= read -r l; do expect+=("${l#w}:$docs"); done <<<"$labels"
  python3 "$here/crash_docs.py" check "$work/cat.tok" "${expect[@]}" >"$work/check.out" ||
    fail "$(cat "$work/check.out")"
  echo "round $round: ${#victims[@]} kills; $(wc -l <<<"$labels") writers in the dataset; clean removed $n files; $(cat "$work/check.out")"
done
echo "pack-kill.sh: $rounds rounds of $writers writers: $killed_before killed before their commit, $killed_after killed after it, $completed not killed; clean removed $removed files; every check passed"
[ -n "$dir" ] || rm -rf "$work"
