#!/usr/bin/env bats
# lm-train's recipe (issue 15): the Muon optimizer, per-group learning rates,
# zero-init, the batch warmup, epochs and --max-epochs, and RUN/best. Each
# option's checkpoint must still be the plain Llama that
# tests/python/check_forward.py (NumPy, float64) computes.

bats_require_minimum_version 1.5.0
# evalsample_helpers for numpy_python and json_get; train_helpers after it,
# whose make_corpus (paragraphs, so that the val split has documents) wins.
load evalsample_helpers
load train_helpers

setup_file() {
  train_setup_file
  # A small dataset (about 3k train tokens) for the tests that count epochs.
  head -c 9000 "$D/corpus.txt" >"$D/small.txt"
  lm-tokenize encode --vocab "$D/tok.bpe" --doc-delim '\n\n' "$D/small.txt" |
    lm-pack -q -o "$D/small" --val-fraction 0.1 --seed 1
}

# forward_ok STEP_DIR: lm-eval's loss on one window of the val tokens equals
# check_forward.py's NumPy forward pass on the same ids.
forward_ok() {
  local py
  py=$(numpy_python)
  [ -n "$py" ] || skip "numpy absent (scripts/install-deps.sh installs python3-numpy)"
  lm-pack cat "$D/shards" --split val -o "$BATS_TEST_TMPDIR/val.tok"
  "$py" tests/python/lmspec.py tokens-read "$BATS_TEST_TMPDIR/val.tok" | sed -n 2p |
    "$py" -c 'import sys, numpy as np; np.array(sys.stdin.read().split()[:32], dtype="<i4").tofile(sys.argv[1])' \
      "$BATS_TEST_TMPDIR/ids.i32"
  loss=$(lm-eval --ckpt "$1" --tokens "$BATS_TEST_TMPDIR/val.tok" --context 31 --limit-tokens 32 \
    --json -q --device cpu -j 1 | json_get loss)
  "$py" tests/python/check_forward.py "$1" --tokens "$BATS_TEST_TMPDIR/ids.i32" --batch 1 \
    --loss "$loss"
}

@test "recipe: --optimizer muon resumes bitwise (N straight == N/2, stop, rerun)" {
  a="$BATS_TEST_TMPDIR/a" b="$BATS_TEST_TMPDIR/b"
  opts=(--steps 8 --val-every 3 --batch-tokens 256 --optimizer muon)
  train "$a" "${opts[@]}" 2>/dev/null
  run --separate-stderr train "$b" "${opts[@]}" --stop-at 4
  [ "$status" -eq 0 ]
  run --separate-stderr train "$b" "${opts[@]}"
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"resuming from $b/step-0000004"* ]]
  for f in model.safetensors optimizer/optimizer.safetensors; do
    [ "$(sha "$a/step-0000008/$f")" = "$(sha "$b/step-0000008/$f")" ]
  done
  # Resumed with --resume alone, the run's optimizer is taken (no --optimizer given).
  c="$BATS_TEST_TMPDIR/c"
  train "$c" "${opts[@]}" --stop-at 4 2>/dev/null
  run --separate-stderr lm-train --data "$D/shards" --out "$c" --resume --device cpu --threads 1 \
    --val-every 3
  [ "$status" -eq 0 ]
  [ "$(sha "$a/step-0000008/model.safetensors")" = "$(sha "$c/step-0000008/model.safetensors")" ]
}

@test "recipe: a Muon run's optimizer.safetensors holds momentum buffers for the matrices" {
  train "$BATS_TEST_TMPDIR/run" --steps 2 --optimizer muon 2>/dev/null
  python3 - "$BATS_TEST_TMPDIR/run/latest" <<'PY'
import json, struct, sys
d = sys.argv[1]
raw = open(d + "/optimizer/optimizer.safetensors", "rb").read()
h = json.loads(raw[8:8 + struct.unpack_from("<Q", raw)[0]])
meta = h.pop("__metadata__")
assert meta == {"format": "lm-muon", "step": "2"}, meta
model = open(d + "/model.safetensors", "rb").read()
names = [k for k in json.loads(model[8:8 + struct.unpack_from("<Q", model)[0]]) if k != "__metadata__"]
matrix = lambda n: n.startswith("model.layers.") and n.endswith("proj.weight")
want = {("momentum_buffer." if matrix(n) else "exp_avg.") + n for n in names}
want |= {"exp_avg_sq." + n for n in names if not matrix(n)}
assert set(h) == want, set(h) ^ want
st = json.load(open(d + "/trainer-state.json"))
assert st["train"]["optimizer"] == "muon" and st["train"]["muon_lr"] > 0, st["train"]
PY
}

@test "recipe: each option trains and writes a checkpoint check_forward.py accepts" {
  # (not $i: bats' `run` sets a variable of that name)
  local case_no=0
  for opts in "--optimizer muon" "--optimizer adamw" "--zero-init --optimizer muon" \
    "--embed-lr 0.002 --norm-lr 0.004" "--untied --head-lr 0.002 --optimizer muon" \
    "--batch-warmup 0.5 --micro-batch 8" "--muon-wd 0.1 --muon-momentum 0.9 --ns-steps 3 --optimizer muon"; do
    case_no=$((case_no + 1))
    r="$BATS_TEST_TMPDIR/run$case_no"
    # shellcheck disable=SC2086
    run --separate-stderr train "$r" --steps 4 --val-every 0 $opts
    [ "$status" -eq 0 ] || { echo "$opts: $stderr"; false; }
    run forward_ok "$r/latest"
    [ "$status" -eq 0 ] || { echo "$opts: $output"; false; }
  done
}

@test "recipe: --zero-init starts the output projections at zero" {
  train "$BATS_TEST_TMPDIR/run" --steps 0 --zero-init 2>/dev/null
  python3 - "$BATS_TEST_TMPDIR/run/latest/model.safetensors" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack_from("<Q", raw)[0]
for name, t in json.loads(raw[8:8 + n]).items():
    if name == "__metadata__":
        continue
    a, b = t["data_offsets"]
    zero = not any(raw[8 + n + a:8 + n + b])
    assert zero == name.endswith(("o_proj.weight", "down_proj.weight")), name
PY
}

# refused WANT ARGS...: lm-train ARGS exits 2 with one error line holding WANT
# (and the usual pointer to --help), and makes no run directory.
refused() {
  local want=$1
  shift
  rm -rf "$BATS_TEST_TMPDIR/refused"
  run --separate-stderr train "$BATS_TEST_TMPDIR/refused" "$@"
  [ "$status" -eq 2 ] || { echo "$*: exit $status: $stderr"; return 1; }
  [ "$(grep -c . <<<"$stderr")" -eq 2 ] || { echo "$*: $stderr"; return 1; }
  [ "$(grep -c '^lm-train: error: ' <<<"$stderr")" -eq 1 ] || { echo "$*: $stderr"; return 1; }
  [[ "$stderr" == *"$want"* ]] || { echo "$*: $stderr"; return 1; }
  [ ! -e "$BATS_TEST_TMPDIR/refused" ]
}

@test "recipe: bad combinations are refused with one clear line" {
  refused "--optimizer must be muon or adamw (got 'sgd')" --steps 2 --optimizer sgd
  refused "--muon-lr applies to --optimizer muon, not adamw" --steps 2 --optimizer adamw \
    --muon-lr 0.01
  refused "--ns-steps applies to --optimizer muon, not adamw" --steps 2 --ns-steps 3
  refused "--head-lr needs an untied head (--untied)" --steps 2 --head-lr 0.01
  refused "--batch-warmup changes the tokens per step" --tokens 4096 --batch-warmup 0.2
  refused "--ns-steps must be in [1, 20] (got 0)" --steps 2 --ns-steps 0 --optimizer muon
  refused "--muon-momentum must be in [0, 1) (got 1)" --steps 2 --muon-momentum 1 --optimizer muon
  refused "--muon-lr must be a positive number (got 0)" --steps 2 --muon-lr 0 --optimizer muon
  # The optimizer of a run cannot change: its state would be misread.
  r="$BATS_TEST_TMPDIR/run"
  train "$r" --steps 4 --optimizer muon --stop-at 2 2>/dev/null
  run --separate-stderr train "$r" --steps 4 --optimizer adamw
  [ "$status" -eq 2 ]
  [ "$(grep -c '^lm-train: error: ' <<<"$stderr")" -eq 1 ]
  [[ "$stderr" == *"the run was trained with --optimizer muon"* ]]
}

@test "recipe: epochs in the progress line and metrics.jsonl; a warning past 4" {
  run --separate-stderr train "$BATS_TEST_TMPDIR/run" --data "$D/small" --steps 40 --micro-batch 16 \
    --val-every 0 --log-every 0
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"step 1/40 | epoch 0.1"* ]]
  [ "$(grep -c "warning: step .*: the run has passed 4 epochs" <<<"$stderr")" -eq 1 ]
  python3 - "$BATS_TEST_TMPDIR/run" "$(lm-pack inspect "$D/small" --json)" <<'PY'
import json, sys
train = json.loads(sys.argv[2])["totals"]["train"]["tokens"]
recs = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl") if '"loss"' in l]
for r in recs:
    assert abs(r["epochs"] - r["tokens"] / train) < 1e-9, (r, train)
assert recs[-1]["epochs"] > 4 > recs[0]["epochs"]
PY
}

@test "recipe: --max-epochs ends the run with the learning rate at zero" {
  r="$BATS_TEST_TMPDIR/run"
  run --separate-stderr train "$r" --data "$D/small" --steps 1000 --micro-batch 16 --max-epochs 2 \
    --val-every 0 --decay 0.5
  [ "$status" -eq 0 ]
  python3 - "$r" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl") if '"loss"' in l]
assert 1.99 < recs[-1]["epochs"] < 2.2 and len(recs) < 100, (len(recs), recs[-1])
assert recs[-1]["lr"] < 0.2 * max(r["lr"] for r in recs), recs[-1]
PY
}

@test "recipe: --batch-warmup grows the tokens per step to the full batch" {
  train "$BATS_TEST_TMPDIR/run" --steps 10 --micro-batch 8 --batch-warmup 0.5 --val-every 0 2>/dev/null
  python3 - "$BATS_TEST_TMPDIR/run" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl") if '"loss"' in l]
per = [b["tokens"] - a["tokens"] for a, b in zip([{"tokens": 0}] + recs, recs)]
assert per[0] == 2 * 32 and per[-1] == 8 * 32 and per == sorted(per), per
PY
}

@test "recipe: RUN/best names the lowest validation loss, survives --keep, and lm-eval/lm-sample take it" {
  r="$BATS_TEST_TMPDIR/run"
  # Half the run, then the rest with a learning rate far too high: the val
  # loss rises, so the best is not the latest, and the resumed run keeps the
  # best it had.
  train "$r" --steps 12 --val-every 3 --keep 1 --stop-at 6 2>/dev/null
  run --separate-stderr train "$r" --steps 12 --val-every 3 --keep 1 --lr 1
  [ "$status" -eq 0 ]
  best=$(readlink "$r/best")
  python3 - "$r" "$best" <<'PY'
import json, sys
run, best = sys.argv[1], sys.argv[2]
vals = [json.loads(l) for l in open(run + "/metrics.jsonl") if "val_loss" in l]
low = min(vals, key=lambda v: v["val_loss"])
assert best == "step-%07d" % low["step"], (best, low)
st = json.load(open(run + "/latest/trainer-state.json"))
assert st["best"]["step"] == low["step"] and abs(st["best"]["val_loss"] - low["val_loss"]) < 1e-12
assert low["step"] != st["step"], "the test needs a run whose best is not its last step"
PY
  # --keep 1 keeps the newest, and the best besides.
  [ "$(cd "$r" && echo step-*)" = "$best step-0000012" ]
  [ "$best" != step-0000012 ]
  run --separate-stderr lm-eval --ckpt "$r/best" --data "$D/shards" --json -q --device cpu -j 1
  [ "$status" -eq 0 ]
  [ "$(echo "$output" | json_get step)" -eq "${best#step-}" ]
  run --separate-stderr lm-sample --ckpt "$r/best" --prompt "the" -n 5 --device cpu -j 1
  [ "$status" -eq 0 ]
  # --no-best keeps none.
  train "$BATS_TEST_TMPDIR/nobest" --steps 4 --val-every 2 --no-best 2>/dev/null
  [ ! -e "$BATS_TEST_TMPDIR/nobest/best" ]
}
