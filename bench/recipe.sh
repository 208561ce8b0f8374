#!/usr/bin/env bash
# recipe.sh: the best model per hour of training (issue 15). Equal wall-clock
# runs of one model shape, in two data regimes, three runs each:
#
#   regimes  gutenberg    plenty of data: ../shared/corpora/gutenberg/train
#                         (Hamlet held out as lm-train's validation split),
#                         measured on gutenberg/valid (5 other books)
#            shakespeare  little data: tinyshakespeare's first 85% (the next
#                         5% as lm-train's validation split), measured on its
#                         last 10%, as bench/train-cpu.sh holds it out
#   runs     torch        PyTorch with AdamW, bench/torch_ref_model.py (the anchor)
#            adamw        lm-train --optimizer adamw: today's recipe, its final weights
#            recipe       lm-train with RECIPE_OPTS (the candidate recipe), RUN/best
#
# One 4096-token vocabulary trained on gutenberg/train serves both regimes.
# The metric is bits per byte on the held-out text: lm-eval's on lm's
# checkpoints; the anchor computes it in lm-eval's windows itself (checked
# against lm-eval at the end). Curves: each lm run checkpoints every
# CURVE_SECONDS, and lm-eval scores each checkpoint on the first CURVE_TOKENS
# held-out tokens; the anchor evaluates the same tokens at the same cadence
# with its clock stopped. Every run is repeated REPEATS times (seed = repeat),
# the runs of a repeat one after the other; `uptime` is logged around each.
#
#   bench/recipe.sh               (after make; BIN=bin-x for another build)
#
#   SECONDS_PER_RUN=5 REPEATS=1 TEST_TOKENS=8192 CURVE_TOKENS=4096 OUT=/tmp/smoke \
#     bench/recipe.sh                                               (a smoke run)
#
# Environment: BIN (bin), OUT (bench-recipe; reused: finished runs are kept),
# SECONDS_PER_RUN (600), REPEATS (2), REGIMES (gutenberg shakespeare), RUNS
# (torch adamw recipe), THREADS (2), CURVE_SECONDS (SECONDS_PER_RUN / 12, at
# least 1), CURVE_TOKENS (65536), TEST_TOKENS (the final figures' tokens of the
# held-out text; 0, the default: all of it), LR (2e-3: the AdamW rate of all three runs;
# RECIPE_OPTS may give the recipe its own --lr), RECIPE_OPTS (lm-train options
# of the recipe run; default "--optimizer muon --zero-init"), SHAPE (lm-train's
# model options; default the shape below), MB (micro-batch, 16), DEVICE (cpu;
# cuda runs lm's runs there, the anchor stays on the CPU: use RUNS="adamw
# recipe" on a GPU), PYTHON (as in
# bench/train-cpu.sh: Debian's python3-torch, scripts/install-deps.sh --bench).
# Writes OUT/results.jsonl (a line a run), OUT/report.txt and OUT/bpb.png
# (bench/recipe_report.py).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
OUT=${OUT:-bench-recipe}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-600}
REPEATS=${REPEATS:-2}
REGIMES=${REGIMES:-gutenberg shakespeare}
RUNS=${RUNS:-torch adamw recipe}
THREADS=${THREADS:-2}
CURVE_SECONDS=${CURVE_SECONDS:-$((SECONDS_PER_RUN / 12 > 1 ? SECONDS_PER_RUN / 12 : 1))}
CURVE_TOKENS=${CURVE_TOKENS:-65536}
TEST_TOKENS=${TEST_TOKENS:-0}
TEST_LIMIT=()
[ "$TEST_TOKENS" -gt 0 ] && TEST_LIMIT=(--limit-tokens "$TEST_TOKENS")
LR=${LR:-2e-3}
RECIPE_OPTS=${RECIPE_OPTS---optimizer muon --zero-init}
G=../shared/corpora/gutenberg
S=../shared/corpora/tinyshakespeare/input.txt
if [ ! -d "$G/train" ] || [ ! -s "$S" ]; then echo "recipe.sh: skipped: ../shared/corpora absent"; exit 0; fi
for t in lm-tokenize lm-pack lm-train lm-eval; do
  [ -x "$BIN/$t" ] || { echo "recipe.sh: $BIN/$t missing (run make)" >&2; exit 1; }
done
PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  if /usr/bin/python3 -c 'import torch' 2>/dev/null; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi
HAVE_TORCH=1
"$PYTHON" -c 'import torch' 2>/dev/null || HAVE_TORCH=
if [ -z "$HAVE_TORCH" ] && [[ " $RUNS " == *" torch "* ]]; then
  echo "recipe.sh: PyTorch not found (scripts/install-deps.sh --bench installs python3-torch)" >&2
  exit 1
fi
BIN_ABS=$(cd "$BIN" && pwd)
export PATH="$BIN_ABS:$PATH"
mkdir -p "$OUT"
D=$OUT/data

# The model: the shape of bench/train-cpu.sh (4 layers, dim 128) with the
# 4096-token vocabulary; 16 x 128 tokens a step.
read -ra SHAPE <<<"${SHAPE:---layers 4 --dim 128 --heads 4 --ffn-dim 344 --context 128}"
MB=${MB:-16}
DEVICE=${DEVICE:-cpu}

prepare() {
  [ -e "$D/.done" ] && return 0
  rm -rf "$D" && mkdir -p "$D"
  lm-tokenize train --vocab-size 4096 -o "$D/tok.bpe" "$G"/train/*.txt 2>/dev/null
  local enc=(lm-tokenize encode --vocab "$D/tok.bpe")
  # gutenberg: Hamlet first, held out by --val-docs 1 (one document a book).
  "${enc[@]}" "$G/train/hobil-hamlet.txt" >"$D/g-sel.tok"
  local books=() f
  for f in "$G"/train/*.txt; do [[ $f == *hamlet* ]] || books+=("$f"); done
  "${enc[@]}" "${books[@]}" >"$D/g-train.tok"
  "${enc[@]}" "$G"/valid/*.txt >"$D/g-test.tok"
  cat "$D/g-sel.tok" "$D/g-train.tok" | lm-pack -q -o "$D/g-pack" --val-docs 1
  # shakespeare: bytes [0, 85%) train, [85%, 90%) validation, [90%, 100%) test.
  local n a b
  n=$(stat -c %s "$S")
  a=$((n * 85 / 100)) b=$((n * 90 / 100))
  head -c "$a" "$S" | "${enc[@]}" >"$D/s-train.tok"
  head -c "$b" "$S" | tail -c +$((a + 1)) | "${enc[@]}" >"$D/s-sel.tok"
  tail -c +$((b + 1)) "$S" | "${enc[@]}" >"$D/s-test.tok"
  cat "$D/s-sel.tok" "$D/s-train.tok" | lm-pack -q -o "$D/s-pack" --val-docs 1
  touch "$D/.done"
}

# json FIELD < one JSON object: the field.
json() { "$PYTHON" -c 'import json,sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1"; }

# lm_curve RUN TEST: "elapsed bpb" of every checkpoint of RUN on CURVE_TOKENS of TEST.
lm_curve() {
  local ck
  for ck in "$1"/step-*; do
    printf '%s %s\n' \
      "$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["elapsed_seconds"])' "$ck/trainer-state.json")" \
      "$(lm-eval --ckpt "$ck" --tokens "$2" --limit-tokens "$CURVE_TOKENS" --json -q --device "$DEVICE" -j "$THREADS" | json bpb)"
  done | sort -g
}

# run_lm KIND REGIME REPEAT DIR: lm-train, then the curve and the final figures.
run_lm() {
  local kind=$1 reg=$2 rep=$3 dir=$4 p=${2:0:1} opts=()
  if [ "$kind" = adamw ]; then
    opts=(--optimizer adamw --lr "$LR" --no-best)
  else
    read -ra opts <<<"$RECIPE_OPTS"
    [[ " $RECIPE_OPTS " == *" --lr "* ]] || opts+=(--lr "$LR")
  fi
  lm-train --data "$D/$p-pack" --vocab "$D/tok.bpe" --out "$dir/run" "${SHAPE[@]}" --micro-batch "$MB" \
    --budget "${SECONDS_PER_RUN}s" --device "$DEVICE" --threads "$THREADS" --seed "$rep" --keep 0 \
    --ckpt-every "${CURVE_SECONDS}s" --val-every "${CURVE_SECONDS}s" --val-tokens 16k --log-every 60 \
    ${opts[@]+"${opts[@]}"} 2>"$dir/train.log"
  lm_curve "$dir/run" "$D/$p-test.tok" >"$dir/curve.txt"
  local final=latest
  [ "$kind" = recipe ] && [ -e "$dir/run/best" ] && final=best
  lm-eval --ckpt "$dir/run/$final" --tokens "$D/$p-test.tok" ${TEST_LIMIT[@]+"${TEST_LIMIT[@]}"} --json -q \
    --device "$DEVICE" -j "$THREADS" >"$dir/final.json"
}

# run_torch REGIME REPEAT DIR: the anchor, its curve and final figure in one JSON line.
run_torch() {
  local p=${1:0:1}
  "$PYTHON" bench/torch_ref_model.py quality --train "$D/$p-train.tok" --val "$D/$p-sel.tok" \
    --tok "$D/tok.bpe" --test "$D/$p-test.tok" --seconds "$SECONDS_PER_RUN" --vocab-size 4096 \
    "${SHAPE[@]}" --micro-batch "$MB" --lr "$LR" --threads "$THREADS" --seed "$2" --val-tokens 16384 \
    --curve-every "$CURVE_SECONDS" --curve-tokens "$CURVE_TOKENS" --test-tokens "$TEST_TOKENS" >"$3/torch.json"
}

prepare
echo "== recipe.sh: ${SECONDS_PER_RUN}s a run, $REPEATS repeats, regimes: $REGIMES; runs: $RUNS; $THREADS threads"
for rep in $(seq 1 "$REPEATS"); do
  for reg in $REGIMES; do
    for kind in $RUNS; do
      dir=$OUT/$reg-$kind-$rep
      [ -e "$dir/.done" ] && continue
      rm -rf "$dir" && mkdir -p "$dir"
      load0=$(cut -d' ' -f1-3 /proc/loadavg)
      t0=$(date +%s)
      if [ "$kind" = torch ]; then run_torch "$reg" "$rep" "$dir"; else run_lm "$kind" "$reg" "$rep" "$dir"; fi
      load1=$(cut -d' ' -f1-3 /proc/loadavg)
      echo "{\"regime\": \"$reg\", \"run\": \"$kind\", \"repeat\": $rep, \"seconds\": $SECONDS_PER_RUN," \
        "\"load_before\": \"$load0\", \"load_after\": \"$load1\", \"wall\": $(($(date +%s) - t0))," \
        "\"date\": \"$(date -u +%FT%TZ)\"}" >"$dir/meta.json"
      touch "$dir/.done"
      echo "$reg $kind repeat $rep done (load $load0 -> $load1)"
    done
  done
done

# The anchor's evaluation against lm-eval's, on one lm checkpoint.
ck=
for c in "$OUT"/*-recipe-1/run/latest; do [ -e "$c" ] && { ck=$c; break; }; done
if [ -n "$ck" ] && [ -n "$HAVE_TORCH" ]; then
  p=$(basename "$(dirname "$(dirname "$ck")")" | cut -c1)
  a=$(lm-eval --ckpt "$ck" --tokens "$D/$p-test.tok" ${TEST_LIMIT[@]+"${TEST_LIMIT[@]}"} --json -q \
    --device cpu -j "$THREADS" | json bpb)
  b=$("$PYTHON" bench/torch_ref_model.py eval --ckpt "$ck" --val "$D/$p-sel.tok" --tok "$D/tok.bpe" \
    --test "$D/$p-test.tok" --test-tokens "$TEST_TOKENS" --val-tokens 4096 --threads "$THREADS" | json test_bpb)
  echo "cross-check on $ck: lm-eval $a bits/byte, the anchor's evaluation $b" | tee "$OUT/crosscheck.txt"
fi
"$PYTHON" bench/recipe_report.py "$OUT" | tee "$OUT/report.txt"
