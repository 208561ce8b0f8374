#!/usr/bin/env bash
# train-gpu-np1.sh: the data-parallel path on one GPU (issue 17): lm-train as
# a plain process against the same run under `mpirun -np 1`, which takes the
# collectives' path (MPI on the host, NCCL for the gradients and weights, the
# sharded optimizer over one shard, the overlapped reduction). Prints both
# runs' tokens/s and their ratio (goal >= 0.99), and the largest difference
# between their losses (with one rank NCCL's reduce and broadcast change no
# value: expected 0).
#
#   bench/train-gpu-np1.sh [BIN]      BIN holds lm-* built with CUDA, NCCL, MPI (default: bin)
#
# Environment: STEPS (30), SHAPE (preset, gpt2-124m), MB (micro-batch, 16),
# DEVICE (cuda; cpu checks the script where no GPU is, with SHAPE=tiny).
# The data are synthetic (the GPU machine has no corpora): speed depends on
# the shapes, not on the text.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
BIN=$(cd "${1:-bin}" && pwd)
STEPS=${STEPS:-30} SHAPE=${SHAPE:-gpt2-124m} MB=${MB:-16} DEVICE=${DEVICE:-cuda}
command -v mpirun >/dev/null || { echo "train-gpu-np1.sh: mpirun not found" >&2; exit 1; }
ldd "$BIN/lm-train" | grep -q libmpi || { echo "train-gpu-np1.sh: $BIN/lm-train has no MPI" >&2; exit 1; }
work=$(mktemp -d /tmp/lm-np1.XXXXXX)
trap 'rm -rf "$work"' EXIT
MPIRUN=(mpirun -np 1)
[ "$(id -u)" -ne 0 ] || MPIRUN+=(--allow-run-as-root)

awk 'BEGIN { srand(7); for (d = 0; d < 4000; d++) { n = 50 + int(rand() * 200); s = "";
  for (i = 0; i < n; i++) s = s sprintf("w%d ", int(rand() * rand() * 3000)); print s; print "" } }' \
  >"$work/corpus.txt"
"$BIN/lm-tokenize" train --vocab-size 4096 -o "$work/tok.bpe" "$work/corpus.txt" 2>/dev/null
"$BIN/lm-tokenize" encode --vocab "$work/tok.bpe" --doc-delim '\n\n' "$work/corpus.txt" |
  "$BIN/lm-pack" -q -o "$work/shards" --val-fraction 0.02
ctx=$([ "$SHAPE" = tiny ] && echo 64 || echo 1024)
ARGS=(--data "$work/shards" --vocab "$work/tok.bpe" --preset "$SHAPE" --context "$ctx"
  --micro-batch "$MB" --batch-tokens $((MB * ctx * 2)) --steps "$STEPS" --val-every 0
  --val-tokens 0 --device "$DEVICE" --log-every 0 --seed 1)
"$BIN/lm-train" "${ARGS[@]}" --out "$work/plain" 2>"$work/plain.log"
"${MPIRUN[@]}" "$BIN/lm-train" "${ARGS[@]}" --out "$work/np1" 2>"$work/np1.log"
grep -h "device:" "$work/plain.log" "$work/np1.log"
python3 - "$work/plain" "$work/np1" <<'PY'
import json, statistics, sys
def rows(d):
    return [j for j in map(json.loads, open(d + "/metrics.jsonl")) if "tokens_per_s" in j]
a, b = rows(sys.argv[1]), rows(sys.argv[2])
ra = statistics.median(j["tokens_per_s"] for j in a[3:])
rb = statistics.median(j["tokens_per_s"] for j in b[3:])
d = max(abs(x["loss"] - y["loss"]) for x, y in zip(a, b))
print(f"plain {ra:.0f} tok/s; mpirun -np 1 {rb:.0f} tok/s; ratio {rb / ra:.3f} (goal >= 0.99)")
print(f"largest loss difference over {len(a)} steps: {d:.3g}")
PY
