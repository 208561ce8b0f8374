#!/usr/bin/env bash
# train-cpu.sh: lm-train on the CPU against the same model in PyTorch (the
# anchor, bench/torch_ref_model.py, on Debian's python3-torch), in one run:
#
#   1. speed: tokens/s of training steps (forward, backward, AdamW) of one
#      model and batch, lm-train --device cpu vs PyTorch; goal ratio >= 1.5
#   2. quality per time: train for QUALITY_SECONDS (default 300) on
#      ../shared/corpora/tinyshakespeare (last 10% held out) and measure the
#      validation bits per byte; goal <= 2.3 for lm-train; PyTorch gets the
#      same time, model, batch, learning rate and schedule
#   3. cross-check: the PyTorch model loads lm-train's final checkpoint and
#      must report the same validation loss as lm-train did
#
#   bench/train-cpu.sh            (after make; BIN=bin-x for another build)
#
# Environment: BIN (bin), THREADS (2), QUALITY_SECONDS (300; 0 skips parts 2-3), SPEED_STEPS (30),
# PYTHON (a python3 with torch; default: /usr/bin/python3, Debian's python3-torch
# as issue 4 names, else python3), KEEP=1 keeps the work directory.
set -euo pipefail
export LC_ALL=C  # decimal points in printf, awk and python3 -c figures, whatever the locale
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
THREADS=${THREADS:-2}
QUALITY_SECONDS=${QUALITY_SECONDS:-300}
SPEED_STEPS=${SPEED_STEPS:-30}
corpus=../shared/corpora/tinyshakespeare/input.txt
[ -s "$corpus" ] || { echo "train-cpu.sh: skipped: $corpus absent"; exit 0; }
for t in lm-tokenize lm-pack lm-train; do
  [ -x "$BIN/$t" ] || { echo "train-cpu.sh: $BIN/$t missing (run make)" >&2; exit 1; }
done
PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then  # the issue's anchor is Debian's python3-torch
  if /usr/bin/python3 -c 'import torch' 2>/dev/null; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi
"$PYTHON" -c 'import torch' 2>/dev/null ||
  { echo "train-cpu.sh: PyTorch not found (scripts/install-deps.sh --bench installs python3-torch)" >&2; exit 1; }
ref="$PYTHON bench/torch_ref_model.py"
echo "== anchor: PyTorch $("$PYTHON" -c 'import torch; print(torch.__version__)') ($PYTHON)"

work=$(mktemp -d /tmp/lm-bench-train.XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
export PATH="$(cd "$BIN" && pwd):$PATH"

# One model for everything: ~0.9M parameters, the size of nanoGPT's CPU
# example, with a 1024-token BPE vocabulary.
SHAPE=(--layers 4 --dim 128 --heads 4 --ffn-dim 344 --context 128)
MB=16
LR=2e-3

echo "== data: tinyshakespeare, last 10% held out, BPE vocabulary of 1024"
n=$(stat -c %s "$corpus")
cut=$((n * 9 / 10))
head -c "$cut" "$corpus" >"$work/train.txt"
tail -c +$((cut + 1)) "$corpus" >"$work/val.txt"
lm-tokenize train --vocab-size 1024 -o "$work/tok.bpe" "$work/train.txt" 2>/dev/null
lm-tokenize encode --vocab "$work/tok.bpe" "$work/train.txt" >"$work/train.tok"
lm-tokenize encode --vocab "$work/tok.bpe" "$work/val.txt" >"$work/val.tok"
# The val document first, held out by --val-docs 1.
cat "$work/val.tok" "$work/train.tok" | lm-pack -q -o "$work/shards" --val-docs 1

echo "== speed: ${SHAPE[*]}, micro-batch $MB, $THREADS threads, $SPEED_STEPS steps (the first excluded)"
lm-train --data "$work/shards" --vocab "$work/tok.bpe" --out "$work/speed" "${SHAPE[@]}" --micro-batch $MB \
  --steps $((SPEED_STEPS + 1)) --device cpu --threads "$THREADS" --val-tokens 0 --log-every 1000 2>/dev/null
lm_tps=$("$PYTHON" -c '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if "\"loss\"" in l][1:]
print(sum(x["tokens"] - p["tokens"] for p, x in zip(r, r[1:])) / sum(x["elapsed"] - p["elapsed"] for p, x in zip(r, r[1:])))
' "$work/speed/metrics.jsonl")
torch_tps=$($ref speed --vocab-size 1024 "${SHAPE[@]}" --micro-batch $MB --steps "$SPEED_STEPS" --threads "$THREADS" |
  "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["tokens_per_s"])')
printf 'lm-train  %10.0f tokens/s\npytorch   %10.0f tokens/s\nratio     %10.2fx (goal >= 1.5)\n' \
  "$lm_tps" "$torch_tps" "$(echo "$lm_tps $torch_tps" | awk '{print $1 / $2}')"

[ "$QUALITY_SECONDS" = 0 ] && exit 0

echo "== quality: ${QUALITY_SECONDS}s of training each, lr $LR, wsd schedule on the clock"
lm-train --data "$work/shards" --vocab "$work/tok.bpe" --out "$work/run" "${SHAPE[@]}" --micro-batch $MB \
  --lr $LR --budget "${QUALITY_SECONDS}s" --device cpu --threads "$THREADS" --val-every 0 --val-tokens 1G \
  --ckpt-every 0 --log-every 60 --seed 1
lm_bpb=$("$PYTHON" -c '
import json, sys
v = [json.loads(l) for l in open(sys.argv[1]) if "val_bpb" in l][-1]
t = [json.loads(l) for l in open(sys.argv[1]) if "\"loss\"" in l][-1]
print(v["val_bpb"], v["val_loss"], t["tokens"], t["step"])
' "$work/run/metrics.jsonl")
read -r lm_bpb lm_loss lm_tokens lm_steps <<<"$lm_bpb"
tq=$($ref quality --train "$work/train.tok" --val "$work/val.tok" --tok "$work/tok.bpe" --seconds "$QUALITY_SECONDS" \
  --vocab-size 1024 "${SHAPE[@]}" --micro-batch $MB --lr $LR --threads "$THREADS")
read -r t_bpb t_loss t_tokens t_steps <<<"$(echo "$tq" | "$PYTHON" -c '
import json, sys; j = json.load(sys.stdin); print(j["val_bpb"], j["val_loss"], j["tokens"], j["steps"])')"
printf 'lm-train  val %.4f bits/byte (loss %.4f nats/token) after %d steps, %d tokens (goal <= 2.3)\n' \
  "$lm_bpb" "$lm_loss" "$lm_steps" "$lm_tokens"
printf 'pytorch   val %.4f bits/byte (loss %.4f nats/token) after %d steps, %d tokens\n' \
  "$t_bpb" "$t_loss" "$t_steps" "$t_tokens"
printf 'tokens trained in the same time: %.2fx\n' "$(echo "$lm_tokens $t_tokens" | awk '{print $1 / $2}')"

echo "== cross-check: PyTorch evaluates lm-train's final checkpoint"
$ref eval --ckpt "$work/run/latest" --val "$work/val.tok" --tok "$work/tok.bpe" --threads "$THREADS" |
  "$PYTHON" -c '
import json, sys
j = json.load(sys.stdin); lm = float(sys.argv[1])
print("pytorch on lm-train weights: val %.6f nats/token, lm-train said %.6f (diff %.2e)" % (j["val_loss"], lm, abs(j["val_loss"] - lm)))
sys.exit(0 if abs(j["val_loss"] - lm) < 1e-3 else 1)
' "$lm_loss"
