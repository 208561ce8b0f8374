#!/usr/bin/env bats
# lm-train --auto-size (and a new --budget run with no model named): probes
# shapes, prints the choice and why, saves it in the run, resumes without probing.

bats_require_minimum_version 1.5.0
load train_helpers

setup_file() { train_setup_file; }

AS=(--context 32 --micro-batch 4 --device cpu --threads 1 --val-tokens 512 --probe-seconds 0.3)

@test "auto-size: --budget without a model probes, prints and saves the choice" {
  r="$BATS_TEST_TMPDIR/run"
  run --separate-stderr lm-train --data "$D/shards" --vocab "$D/tok.bpe" --out "$r" --budget 4s "${AS[@]}"
  [ "$status" -eq 0 ] || { echo "$stderr"; false; }
  [[ "$stderr" == *"auto-size on cpu"* ]]
  [[ "$stderr" == *"tok/s"* ]]
  [[ "$stderr" == *"chose d"*": "*"per parameter"* ]]
  [ -s "$r/auto-size.json" ]
  # The saved choice is the model that was trained.
  python3 - "$r" <<'PY'
import json, os, sys
run = sys.argv[1]
a = json.load(open(os.path.join(run, "auto-size.json")))
chosen = [c for c in a["candidates"] if c["name"] == a["chosen"]][0]
cfg = json.load(open(os.path.join(run, "latest", "config.json")))
assert cfg["hidden_size"] == chosen["dim"] and cfg["num_hidden_layers"] == chosen["layers"], (cfg, chosen)
assert cfg["max_position_embeddings"] == 32
assert chosen["tokens_per_second"] > 0 and a["reason"]
PY
}

@test "auto-size: rerunning the same command resumes the chosen model without probing" {
  r="$BATS_TEST_TMPDIR/run"
  lm-train --data "$D/shards" --vocab "$D/tok.bpe" --out "$r" --budget 3s --auto-size "${AS[@]}" --stop-at 2 2>/dev/null
  before=$(cat "$r/auto-size.json")
  run --separate-stderr lm-train --data "$D/shards" --vocab "$D/tok.bpe" --out "$r" --budget 3s --auto-size "${AS[@]}"
  [ "$status" -eq 0 ] || { echo "$stderr"; false; }
  [[ "$stderr" != *"auto-size on"* ]]
  [ "$(cat "$r/auto-size.json")" = "$before" ]
}

@test "auto-size: needs --budget and refuses --preset" {
  run lm-train --data "$D/shards" --vocab "$D/tok.bpe" --out "$BATS_TEST_TMPDIR/r" --auto-size --steps 3
  [ "$status" -eq 2 ]
  [[ "$output" == *"--auto-size needs --budget"* ]]
  run lm-train --data "$D/shards" --vocab "$D/tok.bpe" --out "$BATS_TEST_TMPDIR/r" --auto-size --preset tiny --budget 3s
  [ "$status" -eq 2 ]
  [[ "$output" == *"drop --preset"* ]]
}

@test "train: --peak-flops gives an MFU figure; a bad value is a usage error" {
  run --separate-stderr train "$BATS_TEST_TMPDIR/p" --steps 2 --peak-flops 1e12 --log-every 0
  [ "$status" -eq 0 ] || { echo "$stderr"; false; }
  [[ "$stderr" == *"MFU "*"%"* ]]
  run train "$BATS_TEST_TMPDIR/q" --steps 2 --peak-flops lots
  [ "$status" -eq 2 ]
}
