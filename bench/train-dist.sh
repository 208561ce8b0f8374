#!/usr/bin/env bash
# train-dist.sh: what data parallelism costs lm-train on the CPU (issue 17):
#
#   1. the collective layer at one process: this build's lm-train against a
#      build without it (BASE_BIN, e.g. main before the comm layer), same
#      model and batch; goal: no slower than 1%; and under mpirun -np 1 (the
#      MPI collectives run, over one rank)
#   2. 2 ranks x 1 thread (mpirun) against 1 rank x 2 threads, the same
#      global batch of 1024 and of 8192 tokens: the step-time overhead of
#      splitting the work across processes (gradient reduction, weight
#      broadcast, agreement: a fixed cost a step)
#
#   BASE_BIN=/tmp/lm-base/bin bench/train-dist.sh    (after make)
#
# Each figure is the median tokens/s of ROUNDS (5) alternating runs of STEPS
# (20) steps, the first two steps of each run left out. The load average is
# printed: on a shared machine it moves every figure. Environment: BIN
# (bin), BASE_BIN (part 1 is skipped without it), ROUNDS, STEPS, KEEP=1.
set -euo pipefail
export LC_ALL=C OMP_WAIT_POLICY=passive
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
ROUNDS=${ROUNDS:-5}
STEPS=${STEPS:-20}
corpus=../shared/corpora/tinyshakespeare/input.txt
[ -s "$corpus" ] || { echo "train-dist.sh: skipped: $corpus absent"; exit 0; }
command -v mpirun >/dev/null || { echo "train-dist.sh: mpirun not found" >&2; exit 1; }
work=$(mktemp -d /tmp/lm-bench-dist.XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
bin=$(cd "$BIN" && pwd)
MPIRUN=(mpirun --oversubscribe)
[ "$(id -u)" -ne 0 ] || MPIRUN+=(--allow-run-as-root)

"$bin/lm-tokenize" train --vocab-size 1024 -o "$work/tok.bpe" "$corpus" 2>/dev/null
"$bin/lm-tokenize" encode --vocab "$work/tok.bpe" --doc-delim '\n\n' "$corpus" |
  "$bin/lm-pack" -q -o "$work/shards" --val-fraction 0.05
# bench/train-cpu.sh's model (~0.9M parameters), 8 sequences of 128 a step.
ARGS=(--data "$work/shards" --vocab "$work/tok.bpe" --layers 4 --dim 128 --heads 4 --ffn-dim 344
  --context 128 --micro-batch 4 --steps "$STEPS" --val-every 0 --val-tokens 0 --device cpu
  --log-every 0)

# rate RUN: median tokens/s of RUN's steps after the second.
rate() {
  python3 -c '
import json, statistics, sys
r = [j["tokens_per_s"] for j in map(json.loads, open(sys.argv[1] + "/metrics.jsonl"))
     if "tokens_per_s" in j and j["step"] > 2]
print(statistics.median(r))' "$1"
}

# bench NAME COMMAND...: one run, its rate appended to $work/NAME.
bench() {
  local name=$1 run="$work/run-$1"
  shift
  rm -rf "$run"
  "$@" --out "$run" 2>/dev/null
  rate "$run" >>"$work/$name"
}
median() { sort -g "$work/$1" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { print a / b }'; }
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((i = 0; i < ROUNDS; i++)); do
  [ -z "${BASE_BIN:-}" ] || bench base "$BASE_BIN/lm-train" "${ARGS[@]}" --batch-tokens 1024 -j 2
  bench one "$bin/lm-train" "${ARGS[@]}" --batch-tokens 1024 -j 2
  bench np1 "${MPIRUN[@]}" -np 1 "$bin/lm-train" "${ARGS[@]}" --batch-tokens 1024 -j 2
  bench two "${MPIRUN[@]}" -np 2 "$bin/lm-train" "${ARGS[@]}" --batch-tokens 1024 -j 1
  bench one8k "$bin/lm-train" "${ARGS[@]}" --batch-tokens 8192 -j 2
  bench two8k "${MPIRUN[@]}" -np 2 "$bin/lm-train" "${ARGS[@]}" --batch-tokens 8192 -j 1
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
one=$(median one) np1=$(median np1)
echo "== 1. the collective layer at one process (2 threads, 1024 tokens a step; median of $ROUNDS runs of $STEPS steps)"
if [ -n "${BASE_BIN:-}" ]; then
  base=$(median base)
  printf 'without it (%s): %.0f tok/s; with it: %.0f tok/s; ratio %.3f (goal >= 0.99)\n' \
    "$BASE_BIN" "$base" "$one" "$(ratio "$one" "$base")"
else
  echo "skipped: give BASE_BIN, a build without the comm layer"
fi
printf 'mpirun -np 1 (MPI collectives over one rank): %.0f tok/s; ratio to the plain process %.3f\n' \
  "$np1" "$(ratio "$np1" "$one")"
echo "== 2. 2 ranks x 1 thread vs 1 rank x 2 threads, the same global batch"
for b in "" 8k; do
  o=$(median "one$b") t=$(median "two$b")
  printf '%s tokens a step: 1 rank x 2 threads %.0f tok/s; 2 ranks x 1 thread %.0f tok/s; step time %+.1f%%\n' \
    "${b:-1024}" "$o" "$t" "$(awk -v a="$o" -v b="$t" 'BEGIN { print (a / b - 1) * 100 }')"
done
