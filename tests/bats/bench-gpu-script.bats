#!/usr/bin/env bats
# bench/train-gpu.sh and its PyTorch reference run on a lent GPU only, where a
# mistake in them would cost device time. Here they run end to end on the CPU
# (DEVICE=cpu, the tiny shape, no torch.compile), so that the data generation,
# the lm-train flags, the metrics parsing, the reference and the table are all
# exercised before a GPU is at hand.

bats_require_minimum_version 1.5.0

setup() {
  ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
  command -v python3 >/dev/null || skip "python3 not found (the bench script needs it)"
  for t in lm-tokenize lm-pack lm-train; do
    [ -x "$LM_BIN/$t" ] || skip "$t not built"
  done
}

@test "train-gpu.sh: runs end to end on the CPU and prints the table" {
  torch=1
  python3 -c 'import torch' 2>/dev/null || torch=0
  OUT="$BATS_TEST_TMPDIR/out" DEVICE=cpu SHAPES=tiny TORCH_COMPILE=0 PROFILE_SHAPES= STEPS=3 \
    TORCH=$torch run --separate-stderr "$ROOT/bench/train-gpu.sh" "$LM_BIN"
  echo "$stderr" | tail -5
  [ "$status" -eq 0 ]
  # lm's row holds a positive rate, and so does the reference's when torch is here.
  python3 - "$BATS_TEST_TMPDIR/out/results.jsonl" "$torch" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
lm = [r for r in rows if r["impl"] == "lm"]
assert len(lm) == 1 and lm[0]["shape"] == "tiny" and lm[0]["tokens_per_s"] > 0, rows
assert lm[0]["final_loss"] is not None and lm[0]["final_loss"] > 0, rows
if sys.argv[2] == "1":
    th = [r for r in rows if r["impl"] == "torch"]
    assert len(th) == 1 and th[0]["tokens_per_s"] > 0 and th[0]["loss_finite"], rows
EOF
  [[ "$output" == *"lm/torch"* ]]
  echo "$output" | grep -qE '^tiny +[0-9]+ '
}

@test "train-gpu.sh --table: lm against the reference, one row per shape" {
  f="$BATS_TEST_TMPDIR/results.jsonl"
  printf '%s\n' '{"impl": "lm", "shape": "124m", "tokens_per_s": 600000, "mfu": 0.55}' \
    '{"impl": "torch", "shape": "124m", "tokens_per_s": 300000, "mfu": 0.275}' \
    '{"impl": "lm", "shape": "350m", "tokens_per_s": 0, "mfu": 0, "failed": true}' >"$f"
  run "$ROOT/bench/train-gpu.sh" --table "$f"
  [ "$status" -eq 0 ]
  echo "$output" | grep -E '^124m +600000 +55\.0% +300000 +27\.5% +2\.00x$'
  echo "$output" | grep -E '^350m +0 .* -$'
}
