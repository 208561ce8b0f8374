#!/usr/bin/env bash
# bench/eval-sample.sh: lm-eval and lm-sample on the CPU, each against its
# anchor measured in the same run.
#
#   1. evaluation: lm-eval --device cpu on the val split of a small trained
#      checkpoint, against bench/torch_eval_ref.py (the same model written in
#      PyTorch, CPU fp32, same threads, same windows and batch) reading the same
#      checkpoint and tokens. Goals: tokens/s ratio >= 1, loss equal to 1e-4
#      relative.
#   2. generation: lm-sample greedy from an empty prompt until the window
#      holds the model's context (256 tokens for the default preset), with the
#      KV cache against --no-kv-cache (the whole window recomputed per token).
#      Goal: ratio >= 5.
#
# Data: ../shared/corpora/tinyshakespeare when present, else the fortunes
# quotes (Debian's fortunes package). The model: --preset small (4 layers, dim
# 192, context 256), trained for BENCH_STEPS steps so that its loss is not that
# of random weights.
#
# Environment: BUILD, BIN (build, bin), NVCC (as for make), THREADS (2), BENCH_PRESET (small),
# BENCH_STEPS (30), EVAL_TOKENS (32768: val tokens evaluated), PYTHON (a
# python3 with torch; default /usr/bin/python3, which scripts/install-deps.sh
# --bench provides), KEEP=1 keeps the work directory.
set -euo pipefail
export LC_ALL=C  # decimal points in printf, awk and python3 -c figures, whatever the locale
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN=${BIN:-bin}
THREADS=${THREADS:-2}
PRESET=${BENCH_PRESET:-small}
STEPS=${BENCH_STEPS:-30}
EVAL_TOKENS=${EVAL_TOKENS:-32768}
PYTHON=${PYTHON:-/usr/bin/python3}
if ! "$PYTHON" -c 'import torch, numpy' 2>/dev/null; then
  echo "bench/eval-sample.sh: $PYTHON has no torch/numpy (scripts/install-deps.sh --bench installs them)" >&2
  exit 1
fi

# NVCC passes through when set (NVCC= builds without the CUDA backend, which
# this CPU benchmark does not need).
make --no-print-directory BUILD="$BUILD" BIN="$BIN" ${NVCC+"NVCC=$NVCC"} -j2 "$BIN/lm-eval" "$BIN/lm-sample" \
  "$BIN/lm-train" "$BIN/lm-pack" "$BIN/lm-tokenize" >/dev/null
PATH="$(cd "$BIN" && pwd):$PATH"
W=$(mktemp -d /tmp/lm-bench-eval.XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$W"' EXIT

corpus=../shared/corpora/tinyshakespeare/input.txt
delim='\n\n'
if [ ! -f "$corpus" ]; then
  find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' \
    ! -name 'ascii-art' ! -name 'art' | LC_ALL=C sort | xargs cat >"$W/corpus.txt"
  corpus=$W/corpus.txt
  delim='\n%\n'
fi
echo "== data: $corpus; preset $PRESET, $STEPS steps; $THREADS threads; $(nproc) cores"
lm-tokenize train --vocab-size 2048 -o "$W/tok.bpe" "$corpus" 2>/dev/null
lm-tokenize encode --vocab "$W/tok.bpe" --doc-delim "$delim" "$corpus" |
  lm-pack -q -o "$W/shards" --val-fraction 0.1 --seed 1
lm-pack cat "$W/shards" --split val -o "$W/val.tok"
lm-train --data "$W/shards" --vocab "$W/tok.bpe" --out "$W/run" --preset "$PRESET" \
  --steps "$STEPS" --micro-batch 4 --val-tokens 0 --seed 1 --device cpu --threads "$THREADS" \
  --log-every 1000 >/dev/null 2>"$W/train.log" || { cat "$W/train.log" >&2; exit 1; }
ck=$(ls -d "$W"/run/step-* | tail -1)
ctx=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["max_position_embeddings"])' "$ck/config.json")

echo "== 1. evaluation: $EVAL_TOKENS val tokens, context $ctx, batch 4"
ours=$(lm-eval --ckpt "$ck" --tokens "$W/val.tok" --limit-tokens "$EVAL_TOKENS" --batch 4 \
  --device cpu -j "$THREADS" --json -q)
ref=$("$PYTHON" bench/torch_eval_ref.py --ckpt "$ck" --tokens "$W/val.tok" \
  --limit-tokens "$EVAL_TOKENS" --batch 4 --threads "$THREADS")
"$PYTHON" - "$ours" "$ref" <<'EOF'
import json, sys
o, r = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert o["targets"] == r["targets"], (o["targets"], r["targets"])
rel = abs(o["loss"] - r["loss"]) / abs(r["loss"])
ratio = o["tokens_per_second"] / r["tokens_per_second"]
print(f"lm-eval (cpu):        loss {o['loss']:.6f}  {o['tokens_per_second']:9.0f} tokens/s  ({o['targets']} targets)")
print(f"torch {r['torch']} (cpu): loss {r['loss']:.6f}  {r['tokens_per_second']:9.0f} tokens/s  ({r['threads']} threads)")
print(f"loss relative difference {rel:.2e} (goal <= 1e-4: {'met' if rel <= 1e-4 else 'NOT met'})")
print(f"speed ratio {ratio:.2f}x (goal >= 1: {'met' if ratio >= 1 else 'NOT met'})")
EOF

n=$((ctx - 1))  # the <|endoftext|> start plus n tokens fill the window
echo "== 2. generation: greedy, $n tokens from an empty prompt (window grows to $ctx)"
with=$(lm-sample --ckpt "$ck" --prompt "" -n "$n" --temperature 0 --device cpu -j "$THREADS" --json -q)
without=$(lm-sample --ckpt "$ck" --prompt "" -n "$n" --temperature 0 --device cpu -j "$THREADS" --json -q --no-kv-cache)
"$PYTHON" - "$with" "$without" <<'EOF'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ratio = a["tokens_per_second"] / b["tokens_per_second"]
print(f"KV cache:    {a['tokens_per_second']:8.1f} tokens/s ({a['tokens']} tokens)")
print(f"no KV cache: {b['tokens_per_second']:8.1f} tokens/s ({b['tokens']} tokens)")
print(f"same text: {a['text'] == b['text']}")
print(f"speed ratio {ratio:.1f}x (goal >= 5: {'met' if ratio >= 5 else 'NOT met'})")
EOF
