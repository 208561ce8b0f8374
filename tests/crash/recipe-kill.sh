#!/usr/bin/env bash
# recipe-kill.sh: SIGKILL scripts/recipe-24h.sh at random moments, rerun it
# at once, until a run finishes; then the dataset must hold each input file
# exactly once: its label once in the manifest, and its text once in what
# `lm-pack cat | lm-tokenize decode` gives back. Some corpus files have a
# space, quotes, a backslash or a newline in their names.
#
#   tests/crash/recipe-kill.sh [--rounds N] [--kills K] [--files F] [--seed S]
#                              [--recipe PATH] [--plain-names] [--dir DIR]
#
# Each round makes a fresh corpus of F files and runs the recipe K times,
# killing each run after a random delay: the first within the time the
# stage 2 (tokenize and pack) of a whole run takes, where the double-pack
# window was, the others within the time a whole run takes (both measured
# first). A kill hits
# the recipe's process alone (its pipelines live on, as after `kill -9 PID`)
# or its whole process group (as a crash of the machine would, but for the
# files written), at random. Each run starts as soon as the one before was
# killed. Then, once every process of those runs has ended, one more run to
# the end, and the checks. One line per round, and a summary.
# --plain-names leaves the awkward names out (for a recipe that cannot take
# them, such as the one before the fix of the double-pack window).
# Exits 1 at the first failure, leaving its files in DIR (default: a
# temporary directory, removed on success). BIN (default bin/) holds the tools.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$here/../../bin}
export PATH="$(cd "$BIN" && pwd):$PATH"
rounds=5 kills=6 nfiles=40 seed=1 recipe=$here/../../scripts/recipe-24h.sh dir= plain=0
while [ $# -gt 0 ]; do
  case "$1" in
    --plain-names) plain=1; shift; continue ;;
    --rounds) rounds=$2 ;;
    --kills) kills=$2 ;;
    --files) nfiles=$2 ;;
    --seed) seed=$2 ;;
    --recipe) recipe=$2 ;;
    --dir) dir=$2 ;;
    *) echo "recipe-kill.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift 2
done
work=${dir:-$(mktemp -d "${TMPDIR:-/tmp}/recipe-kill.XXXXXX")}
mkdir -p "$work"
RANDOM=$seed
round=0
fail() {
  echo "recipe-kill.sh: round $round: $*; files in $work" >&2
  exit 1
}

# make_corpus DIR: nfiles files of paragraphs; paragraph 1 of file i is the
# marker "marker-i-file"; names 0..3 hold a space, quotes, a backslash, a newline.
make_corpus() {
  mkdir -p "$1"
  local names=("with space" "q'uo\"te" 'back\slash' $'new\nline') i name
  [ "$plain" = 0 ] || names=()
  for ((i = 0; i < nfiles; i++)); do
    name=${names[i]:-plain}-$i.txt
    awk -v i="$i" -v s="$((seed * 1000 + i))" 'BEGIN { srand(s); print "marker-" i "-file"; print "";
      for (p = 0; p < 60; p++) { n = 5 + int(rand() * 15); t = "";
        for (k = 0; k < n; k++) t = t sprintf("w%d ", int(rand() * 40)); print t "."; print "" } }' \
      >"$1/$name"
  done
}

# start_recipe OUT: the recipe at a tiny size on the CPU, in the background in
# a process group of its own (its pid is the group's id); $! is its pid.
start_recipe() {
  setsid "$recipe" --corpus "$work/corpus" --out "$1" --vocab-size 300 --doc-delim '\n\n' \
    --device cpu --context 32 --budget 2s --train-opt --micro-batch=4 \
    --train-opt --probe-seconds=0.3 --train-opt --val-tokens=512 --train-opt --threads=1 -j 2 \
    >>"$1.log" 2>&1 &
}

# wait_gone PGID: until no process of that group is left (orphans finish).
wait_gone() { while pgrep -g "$1" >/dev/null; do sleep 0.1; done; }

check() {  # OUT: each corpus file once
  local out=$1 labels dup
  labels=$(lm-pack inspect "$out/shards" --labels | LC_ALL=C sort)
  dup=$(uniq -d <<<"$labels")
  [ -z "$dup" ] || fail "packed twice: $(head -3 <<<"$dup" | tr '\n' ' ')"
  [ "$labels" = "$(cat "$out/files.txt")" ] || fail "the manifest's labels are not the corpus files"
  lm-pack verify "$out/shards" >/dev/null 2>"$out.verify" || fail "verify: $(tail -1 "$out.verify")"
  ! grep -q "not in the manifest" "$out.verify" || fail "verify: $(cat "$out.verify")"
  lm-pack cat "$out/shards" | lm-tokenize decode --vocab "$out/tok.bpe" >"$out.text"
  for ((i = 0; i < nfiles; i++)); do
    # (decoding joins a file's documents with nothing between them)
    n=$(grep -oF "marker-$i-file" "$out.text" | wc -l)
    [ "$n" -eq 1 ] || fail "file $i's text is in the dataset $n times"
  done
}

ms() { echo $((($(date +%s%N) - t0) / 1000000)); }
# A whole run first: its time, and its stage 2's, bound the kill delays.
make_corpus "$work/corpus"
t0=$(date +%s%N)
start_recipe "$work/timing"
pid=$! s2_from= s2_to=
while kill -0 "$pid" 2>/dev/null; do
  [ -n "$s2_from" ] || ! grep -q "stage 2" "$work/timing/recipe.log" 2>/dev/null || s2_from=$(ms)
  [ -n "$s2_to" ] || [ ! -e "$work/timing/.packed" ] || s2_to=$(ms)
  sleep 0.05
done
wait "$pid" || fail "an uninterrupted run failed: $(tail -3 "$work/timing.log")"
full_ms=$(ms)
[ -n "$s2_from" ] && [ -n "$s2_to" ] || fail "stage 2 not seen in the uninterrupted run"
echo "an uninterrupted run takes $full_ms ms, its stage 2 [$s2_from, $s2_to) ms"
delay() {  # K: seconds to wait before kill K
  local r=$((RANDOM * 32768 + RANDOM))
  if (($1 == 0)); then r=$((s2_from + r % (s2_to - s2_from + 1))); else r=$((r % full_ms)); fi
  printf '%d.%03d' $((r / 1000)) $((r % 1000))
}
killed_alone=0 killed_group=0 finished_early=0 in_stage2=0
for ((round = 1; round <= rounds; round++)); do
  out=$work/out-$round
  groups=()
  for ((k = 0; k < kills; k++)); do
    start_recipe "$out"
    pid=$!
    sleep "$(delay "$k")"
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" || true
      finished_early=$((finished_early + 1))
      continue
    fi
    # In stage 2 (the window where a rerun could pack a file twice)?
    if grep -q "stage 2" "$out/recipe.log" 2>/dev/null && [ ! -e "$out/.packed" ]; then
      in_stage2=$((in_stage2 + 1))
    fi
    if ((RANDOM % 2)); then
      kill -9 "$pid"
      killed_alone=$((killed_alone + 1))
    else
      kill -9 -- "-$pid" 2>/dev/null || true
      killed_group=$((killed_group + 1))
    fi
    wait "$pid" 2>/dev/null || true
    groups+=("$pid")
    # The next run starts at once: the recipe's own lock makes it wait for
    # the pipelines that a kill of the recipe alone left running.
  done
  # An lm-train left running holds the run's lock: the last run waits for it.
  for g in "${groups[@]}"; do wait_gone "$g"; done
  start_recipe "$out"
  wait $! || fail "the last run failed: $(tail -3 "$out.log")"
  check "$out"
  echo "round $round: $kills runs killed or ended, then one to the end; $nfiles files, each once"
done
echo "recipe-kill.sh: $rounds rounds: $killed_alone kills of the recipe alone, $killed_group of its process group ($in_stage2 of them in stage 2), $finished_early runs that ended before their kill; every check passed"
[ -n "$dir" ] || rm -rf "$work"
