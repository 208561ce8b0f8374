#!/usr/bin/env bash
# train-gpu.sh: training throughput of `lm-train --device cuda` for the GPT-2
# 124M and 350M shapes (presets gpt2-124m, gpt2-350m) at context 1024, against
# the PyTorch reference of the same architecture (bench/torch_gpu_ref.py: bf16
# autocast, torch.compile, scaled_dot_product_attention, fused AdamW) on the
# same GPU in the same run. Prints a table: tokens/s, MFU, and lm's ratio to
# the reference. Goals (issue 6): >= 55% MFU at 124M, >= 1.2x the reference.
#
#   bench/train-gpu.sh [BIN]          BIN holds lm-* (default: bin)
#   bench/train-gpu.sh --table FILE   the table again, from a run's results.jsonl
#
# Environment: STEPS (timed steps per run, default 20), SHAPES (default
# "124m 350m"), MB_124M / MB_350M (micro-batch, default 16 / 8), TORCH=0 skips
# the reference, PROFILE_SHAPES (shapes that also get a 3-step LM_CUDA_PROFILE
# run; default "124m", empty for none), OUT (a directory for logs and
# results.jsonl; default a temporary one), LM_PEAK_FLOPS (the peak for MFU, default 989e12), LM_LD_PATH
# (library path for lm's programs only; scripts/gpu-check.sh sets it).
# Checking the script where no GPU is: DEVICE=cpu (both sides on the CPU),
# SHAPES=tiny (2 layers, dim 64; not a benchmark), TORCH_COMPILE=0 (the
# reference without torch.compile), e.g.
#   DEVICE=cpu SHAPES=tiny TORCH_COMPILE=0 PROFILE_SHAPES= STEPS=3 bench/train-gpu.sh
# (tests/bats/bench-gpu-script.bats does that).
#
# The data are synthetic: a GPT-2-sized vocabulary (50257 tokens, padded to
# 50304) made up for the run and random text encoded with it. Throughput
# depends on the shapes, not on the text, and the GPU machine has no corpora.
set -euo pipefail
export LC_ALL=C  # decimal points in printf, awk and python3 -c figures, whatever the locale
cd "$(dirname "$0")/.."
# table RESULTS.JSONL: lm against the reference, one row per shape.
table() {
  python3 - "$1" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["shape"], {})[r["impl"]] = r
print(f"{'shape':6} {'lm tok/s':>10} {'lm MFU':>7} {'torch tok/s':>12} {'torch MFU':>9} {'lm/torch':>8}")
for shape, d in by.items():
    lm, th = d.get("lm", {}), d.get("torch", {})
    lt, tt = lm.get("tokens_per_s", 0), th.get("tokens_per_s", 0)
    ratio = f"{lt / tt:.2f}x" if lt and tt else "-"
    print(f"{shape:6} {lt:10.0f} {100 * lm.get('mfu', 0):6.1f}% {tt:12.0f} "
          f"{100 * th.get('mfu', 0):8.1f}% {ratio:>8}")
EOF
}
if [ "${1:-}" = --table ]; then
  table "$2"
  exit 0
fi

BIN=${1:-bin}
STEPS=${STEPS:-20}
SHAPES=${SHAPES:-"124m 350m"}
DEVICE=${DEVICE:-cuda}
PEAK=${LM_PEAK_FLOPS:-989e12}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
OUT=${OUT:-$work}
mkdir -p "$OUT"
res="$OUT/results.jsonl"
: >"$res"
failed=0

lm() {  # runs $BIN/lm-NAME with LM_LD_PATH in front of the library path
  local p=$1
  shift
  LD_LIBRARY_PATH="${LM_LD_PATH:-}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$BIN/$p" "$@"
}
for t in lm-tokenize lm-pack lm-train; do
  [ -x "$BIN/$t" ] || { echo "train-gpu.sh: $BIN/$t not built" >&2; exit 1; }
done

echo "== data: synthetic 50257-token vocabulary and random text" >&2
python3 - "$work" <<'EOF'
import base64, random, sys
work = sys.argv[1]
r = random.Random(1)
toks = [bytes([b]) for b in range(256)]
seen = set(toks)
letters = [bytes([c]) for c in range(ord("a"), ord("z") + 1)] + [b" "]
pool = list(letters)
# 50000 merges, each the concatenation of two earlier tokens (so that every
# token splits into two lower ranks, as BPE requires).
while len(toks) < 256 + 50000:
    t = r.choice(pool) + r.choice(pool)
    if t in seen or len(t) > 16:
        continue
    seen.add(t)
    toks.append(t)
    pool.append(t)
with open(f"{work}/synth.tiktoken", "w") as f:
    for i, t in enumerate(toks):
        f.write(f"{base64.b64encode(t).decode()} {i}\n")
words = [bytes(r.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(2, 9))).decode()
         for _ in range(20000)]
with open(f"{work}/corpus.txt", "w") as f:
    for doc in range(2000):
        f.write(" ".join(r.choice(words) for _ in range(1200)) + "\n\n")
EOF
lm lm-tokenize import --tiktoken "$work/synth.tiktoken" --pattern gpt2 -o "$work/tok.bpe" -q
lm lm-tokenize encode --vocab "$work/tok.bpe" "$work/corpus.txt" | lm lm-pack -o "$work/shards" >/dev/null 2>&1

# flops per token (issue 6): 6 * params + 12 * layers * dim * context, params
# counted with the real vocabulary.
flops_per_token() {  # layers dim ffn
  python3 -c "L,d,f=$1,$2,$3; V=50257; p=V*d+L*(2*d+4*d*d+3*d*f)+d; print(6*p+12*L*d*1024)"
}

shape_of() {  # sets dims, mb, model for a shape name
  case $1 in
    124m) dims="12 768 2048"; mb=${MB_124M:-16}; model=(--preset gpt2-124m) ;;
    350m) dims="24 1024 2816"; mb=${MB_350M:-8}; model=(--preset gpt2-350m) ;;
    tiny) dims="2 64 128"; mb=${MB_TINY:-2}; model=(--layers 2 --dim 64 --heads 4 --ffn-dim 128) ;;
    *) echo "train-gpu.sh: unknown shape $1" >&2; exit 2 ;;
  esac
}

lm_run() {  # lm-train's throughput for one shape, into $res
  local shape=$1 fpt run steps
  shape_of "$shape"
  fpt=$(flops_per_token $dims)
  echo "== lm-train --device $DEVICE, $shape, micro-batch $mb x 1024" >&2
  run="$work/run-$shape"
  steps=$((STEPS + 3))
  if lm lm-train --data "$work/shards" --vocab "$work/tok.bpe" --out "$run" --seed 1 \
      "${model[@]}" --context 1024 --micro-batch "$mb" --steps "$steps" \
      --device "$DEVICE" --val-tokens 0 --val-every 0 --ckpt-every 0 --keep 1 --log-every 10 \
      >"$OUT/lm-$shape.log" 2>&1; then
    # Median over the steps after the first three (allocation, cuBLASLt tuning, cuDNN graphs).
    python3 - "$run/metrics.jsonl" "$shape" "$mb" "$fpt" "$PEAK" >>"$res" <<'PY'
import json, sys
path, shape, mb, fpt, peak = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
rows = [json.loads(l) for l in open(path) if '"tokens_per_s"' in l]
tps = sorted(r["tokens_per_s"] for r in rows[3:] if r.get("tokens_per_s")) or [0.0]
med = tps[len(tps) // 2]
print(json.dumps({"impl": "lm", "shape": shape, "batch": mb, "context": 1024, "tokens_per_s": med,
                  "mfu": med * fpt / peak, "final_loss": rows[-1]["loss"] if rows else None}))
PY
    grep -m1 -o 'attention: [^)]*' "$OUT/lm-$shape.log" >&2 || true
  else
    echo "train-gpu.sh: lm-train failed for $shape (log: $OUT/lm-$shape.log):" >&2
    tail -5 "$OUT/lm-$shape.log" >&2
    echo "{\"impl\": \"lm\", \"shape\": \"$shape\", \"tokens_per_s\": 0, \"mfu\": 0, \"failed\": true}" >>"$res"
    failed=1
  fi
  rm -rf "$run"
}

profile_run() {  # where the GPU's time goes (docs/cuda.md, LM_CUDA_PROFILE), 3 steps
  local shape=$1
  shape_of "$shape"
  echo "== LM_CUDA_PROFILE=1 lm-train, gpt2-$shape, 3 steps" >&2
  if LM_CUDA_PROFILE=1 lm lm-train --data "$work/shards" --vocab "$work/tok.bpe" --seed 1 \
      --out "$work/profile-$shape" "${model[@]}" --context 1024 --micro-batch "$mb" --steps 3 \
      --device "$DEVICE" --val-tokens 0 --val-every 0 --ckpt-every 0 --keep 1 \
      >"$OUT/lm-$shape-profile.log" 2>&1; then
    sed -n '/^lm cuda profile/,$p' "$OUT/lm-$shape-profile.log" | head -14 >&2
  else
    echo "train-gpu.sh: the profile run failed for $shape (log: $OUT/lm-$shape-profile.log)" >&2
  fi
  rm -rf "$work/profile-$shape"
}

torch_run() {  # the PyTorch reference for one shape, into $res
  local shape=$1 compile=()
  shape_of "$shape"
  echo "== PyTorch reference, $shape, batch $mb x 1024" >&2
  [ "${TORCH_COMPILE:-1}" = 0 ] && compile=(--no-compile)
  if ! python3 bench/torch_gpu_ref.py --shape "$shape" --batch "$mb" --steps "$STEPS" \
      --device "$DEVICE" "${compile[@]}" \
      --peak "$PEAK" >>"$res" 2>"$OUT/torch-$shape.log"; then
    echo "train-gpu.sh: the PyTorch reference failed for $shape:" >&2
    tail -5 "$OUT/torch-$shape.log" >&2
    failed=1
  fi
}

# lm first for every shape, then the reference (its compilation is the slow
# part), then the profiles: a run cut short by a timeout keeps what matters.
for shape in $SHAPES; do lm_run "$shape"; done
if [ "${TORCH:-1}" != 0 ]; then
  for shape in $SHAPES; do torch_run "$shape"; done
fi
for shape in $SHAPES; do
  [[ " ${PROFILE_SHAPES-124m} " == *" $shape "* ]] && profile_run "$shape"
done

table "$res"
exit $failed
