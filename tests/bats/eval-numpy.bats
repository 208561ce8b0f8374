#!/usr/bin/env bats
# lm-eval against an independent numpy transcription of the model and of
# Hugging Face's strided windows (evalsample_helpers.bash: np_eval_ref), in
# float64: the mean loss must agree to 1e-4 relative.

bats_require_minimum_version 1.5.0
load evalsample_helpers

setup_file() {
  PY=$(numpy_python)
  export PY
  [ -n "$PY" ] || return 0
  fixture_setup
  lm-pack cat "$FIX/shards" --split val -o "$FIX/val.tok"
}

setup() {
  [ -n "$PY" ] || skip "numpy absent (scripts/install-deps.sh installs python3-numpy)"
}

# check T S LIMIT
check() {
  ours=$(lm-eval --ckpt "$FIX/run" --tokens "$FIX/val.tok" --context "$1" --stride "$2" \
    --limit-tokens "$3" --batch 3 --json -q --device cpu -j 1)
  read -r ref_loss ref_targets < <(np_eval_ref "$PY" "$FIX/run/step-0000150" "$FIX/val.tok" "$1" "$2" "$3")
  [ "$(echo "$ours" | json_get targets)" -eq "$ref_targets" ]
  "$PY" -c 'import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); assert abs(a - b) <= 1e-4 * b, (a, b)' \
    "$(echo "$ours" | json_get loss)" "$ref_loss"
}

@test "eval-numpy: consecutive windows, a partial last one" {
  check 64 64 300
}

@test "eval-numpy: strided windows" {
  check 32 8 150
}

@test "eval-numpy: short windows, stride 1" {
  check 5 1 40
}
