#!/usr/bin/env bats
# lm-train: what it refuses before any work, with one clear line and exit 1 or 2.

bats_require_minimum_version 1.5.0
load train_helpers
load state_helpers

setup_file() { train_setup_file; }

@test "refuse: data packed with another vocabulary" {
  lm-tokenize train --vocab-size 280 -o "$BATS_TEST_TMPDIR/other.bpe" "$D/corpus.txt" 2>/dev/null
  run --separate-stderr lm-train --data "$D/shards" --vocab "$BATS_TEST_TMPDIR/other.bpe" \
    --out "$BATS_TEST_TMPDIR/run" --preset tiny --steps 1 --device cpu
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"error: $D/shards: packed with a different vocabulary"* ]]
  [ "$(echo "$stderr" | wc -l)" -eq 1 ]
  # The run directory it made is gone again; one that existed stays.
  [ ! -e "$BATS_TEST_TMPDIR/run" ]
  mkdir "$BATS_TEST_TMPDIR/run"
  run --separate-stderr lm-train --data "$D/shards" --vocab "$BATS_TEST_TMPDIR/other.bpe" \
    --out "$BATS_TEST_TMPDIR/run" --preset tiny --steps 1 --device cpu
  [ "$status" -eq 1 ]
  [ -d "$BATS_TEST_TMPDIR/run" ]
  [ ! -e "$BATS_TEST_TMPDIR/run/latest" ]
}

@test "refuse: a context longer than the data supplies" {
  run --separate-stderr train "$BATS_TEST_TMPDIR/run" --steps 1 --context 100000
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"the train split holds"*"context 100000 needs at least 100001"* ]]
}

@test "refuse: heads that do not divide dim" {
  run --separate-stderr train "$BATS_TEST_TMPDIR/run" --steps 1 --dim 66 --heads 4
  [ "$status" -ne 0 ]
  [[ "$stderr" == *"error: model: 4 heads do not divide dim 66"* ]]
  [ ! -e "$BATS_TEST_TMPDIR/run/latest" ]
}

@test "refuse: a model too large for memory" {
  run --separate-stderr train "$BATS_TEST_TMPDIR/run" --steps 1 --dim 8192 --heads 64 --layers 400 --ffn-dim 22016
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"memory"* ]]
}

@test "refuse: no length, two lengths, unknown preset, bad durations: usage errors" {
  run train "$BATS_TEST_TMPDIR/run"
  [ "$status" -eq 2 ]
  [[ "$output" == *"--steps N, --tokens N or --budget DURATION"* ]]
  run train "$BATS_TEST_TMPDIR/run" --steps 1 --budget 1h
  [ "$status" -eq 2 ]
  run lm-train --data "$D/shards" --vocab "$D/tok.bpe" --out "$BATS_TEST_TMPDIR/run" --preset huge --steps 1
  [ "$status" -eq 2 ]
  run train "$BATS_TEST_TMPDIR/run" --budget soon
  [ "$status" -eq 2 ]
  run train "$BATS_TEST_TMPDIR/run" --steps 1 --schedule linear
  [ "$status" -eq 2 ]
  run train "$BATS_TEST_TMPDIR/run" --steps 1 --ckpt-every often
  [ "$status" -eq 2 ]
  run train "$BATS_TEST_TMPDIR/run" --steps 1 --seed -1
  [ "$status" -eq 2 ]
  [[ "$output" == *"'--seed'"*"non-negative"* ]]
  [ ! -e "$BATS_TEST_TMPDIR/run/latest" ]
}

@test "refuse: negative --threads; far beyond the cores is capped, not a crash" {
  run train "$BATS_TEST_TMPDIR/run" --steps 1 --threads -1
  [ "$status" -eq 2 ]
  [[ "$output" == *"--threads must be 0"* ]]
  run train "$BATS_TEST_TMPDIR/run" --steps 1 --threads 99999
  [ "$status" -eq 0 ]
  [ -e "$BATS_TEST_TMPDIR/run/latest" ]
}

@test "refuse: missing or corrupt data" {
  run --separate-stderr train "$BATS_TEST_TMPDIR/run" --steps 1 --data "$BATS_TEST_TMPDIR/nothing"
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"nothing"* ]]
}

@test "refuse: a second lm-train on the same run directory" {
  r="$BATS_TEST_TMPDIR/run"
  train_bg "$BATS_TEST_TMPDIR/log" "$r" --steps 100000 --log-every 0 --val-every 0
  pid=$TRAIN_PID
  wait_for "$BATS_TEST_TMPDIR/log" "step 1/" 60
  run --separate-stderr train "$r" --steps 100000
  kill -INT "$pid"
  rc=0
  wait "$pid" || rc=$?
  [ "$rc" -eq 130 ]  # the first run checkpointed, then died of its SIGINT
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"another lm-train is using this run directory"* ]]
}

@test "nan: non-finite steps are skipped, then the run stops leaving the last good checkpoint" {
  r="$BATS_TEST_TMPDIR/run"
  train "$r" --steps 1 2>/dev/null
  # A learning rate of 1e30 sends the weights to overflow after one update.
  run --separate-stderr train "$r" --steps 40 --lr 1e30 --warmup 0 --max-bad-steps 3 --val-every 0
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"is not finite; update skipped (1 in a row)"* ]]
  [[ "$stderr" == *"all had a non-finite loss or gradient; stopping (the last good checkpoint: $r/step-0000001"* ]]
  [ "$(readlink "$r/latest")" = step-0000001 ]
  grep -q '"skipped":true' "$r/metrics.jsonl"
}

@test "refuse: optimizer values that would make AdamW divide by zero or diverge" {
  for a in "--lr inf" "--beta1 1" "--beta1 nan" "--beta2 1" "--beta2 -1" "--weight-decay nan" \
    "--weight-decay -1" "--grad-clip nan" "--grad-clip -1"; do
    run train "$BATS_TEST_TMPDIR/run" --steps 1 $a
    [ "$status" -eq 2 ]
  done
  [ ! -e "$BATS_TEST_TMPDIR/run/latest" ]
}

@test "refuse: sizes and rates of 0 are usage errors, not the preset's value" {
  for a in "--context 0" "--layers 0" "--dim 0" "--heads 0" "--kv-heads 0" "--ffn-dim 0" \
    "--layers -2" "--batch-tokens 0" "--rope-theta 0" "--rope-theta nan" "--peak-flops 0" \
    "--probe-seconds 0" "--log-every -1"; do
    run --separate-stderr train "$BATS_TEST_TMPDIR/run" --steps 1 $a
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"error: ${a% *} must be"* ]]
  done
  [ ! -e "$BATS_TEST_TMPDIR/run/latest" ]
}

@test "diverged weights are never saved as a checkpoint" {
  # --lr 1e30: step 1's update breaks the weights; every later loss is not finite.
  run train "$BATS_TEST_TMPDIR/run" --steps 3 --lr 1e30
  [ "$status" -eq 1 ]
  [[ "$output" == *"non-finite loss, so they are not saved"*"last good checkpoint: none"* ]]
  [ -z "$(ls "$BATS_TEST_TMPDIR/run" | grep step-)" ]
  run train "$BATS_TEST_TMPDIR/run2" --steps 30 --lr 1e30 --ckpt-every 2 --max-bad-steps 5
  [ "$status" -eq 1 ]
  [ -z "$(ls "$BATS_TEST_TMPDIR/run2" | grep step-)" ]
}

@test "refuse: trainer-state.json whose step is not its directory's" {
  train "$BATS_TEST_TMPDIR/run" --steps 2 --val-every 0
  edit_state "$BATS_TEST_TMPDIR/run/step-0000002/trainer-state.json" 's/"step": *2,/"step": 3,/'
  grep -q '"step": *3,' "$BATS_TEST_TMPDIR/run/step-0000002/trainer-state.json"
  run lm-eval --ckpt "$BATS_TEST_TMPDIR/run" --data "$D/shards"
  [ "$status" -eq 1 ]
  [[ "$output" == *"trainer-state.json: step 3 in a directory named step-0000002"* ]]
}

@test "refuse: trainer-state.json with a field of the wrong type names the file" {
  train "$BATS_TEST_TMPDIR/run" --steps 2 --val-every 0
  st="$BATS_TEST_TMPDIR/run/step-0000002/trainer-state.json"
  edit_state "$st" 's/"tokens_per_step": [0-9]*/"tokens_per_step": "x"/'
  run --separate-stderr train "$BATS_TEST_TMPDIR/run" --steps 4 --val-every 0
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"error: $st: unexpected content: "* ]]
  [ "$(echo "$stderr" | wc -l)" -eq 1 ]
}

@test "refuse: trainer-state.json changed without its checksum" {
  train "$BATS_TEST_TMPDIR/run" --steps 2 --val-every 0
  st="$BATS_TEST_TMPDIR/run/step-0000002/trainer-state.json"
  grep -q '"checksum": "[0-9a-f]\{16\}"$' "$st"
  sed -i 's/"epoch": \([0-9]*\)/"epoch": 7\1/' "$st"
  run --separate-stderr train "$BATS_TEST_TMPDIR/run" --steps 4 --val-every 0
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"error: $st: checksum mismatch"* ]]
  [ "$(echo "$stderr" | wc -l)" -eq 1 ]
  [ ! -e "$BATS_TEST_TMPDIR/run/step-0000004" ]
}

@test "refuse: an address-space limit (ulimit -v) too small for OpenBLAS is an error, not a hang" {
  # .ci/run's ASan build sets LM_SANITIZER: ASan maps terabytes of shadow
  # memory at start, which no ulimit -v below them allows.
  [ -z "${LM_SANITIZER:-}" ] || skip "under $LM_SANITIZER sanitizer: ulimit -v leaves no room for its shadow memory"
  # OpenBLAS retries a failed buffer allocation forever, and libgomp exits
  # when it cannot map a thread's stack; whatever the limit, lm-train must end
  # with its own error (the first limits fail even to load the libraries).
  # The steps are fine enough that some limit falls between each check and
  # the first parallel region, whatever the binary's size.
  for ((kib = 600000; kib <= 1600000; kib += 25000)); do
    rm -rf "$BATS_TEST_TMPDIR/run"
    # (127, a library that cannot be mapped, shows as 126: bats reads 127 as a typo)
    run bash -c 'ulimit -v "$1"; shift; timeout -s KILL 60 "$@"; r=$?; exit $((r == 127 ? 126 : r))' _ "$kib" \
      lm-train --data "$D/shards" --vocab "$D/tok.bpe" --out "$BATS_TEST_TMPDIR/run" \
      --preset tiny --steps 1 --val-every 0 --device cpu -j 2
    echo "ulimit -v $kib: status $status: ${lines[-1]}"
    [ "$status" -ne 137 ]
    [ "$status" -eq 0 ] || [[ "$output" == *rror* ]]
  done
}

@test "refuse: trainer-state.json with a NUL byte and more after its JSON" {
  # The checksum covers the bytes before its own value; what follows the
  # object must be only whitespace, and a NUL must not end the parse early.
  train "$BATS_TEST_TMPDIR/run" --steps 2 --val-every 0
  st="$BATS_TEST_TMPDIR/run/step-0000002/trainer-state.json"
  printf '\0garbage' >>"$st"
  run --separate-stderr lm-eval --ckpt "$BATS_TEST_TMPDIR/run" --data "$D/shards"
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"error: $st: not valid JSON (a NUL byte at offset "* ]]
  [ "$(echo "$stderr" | wc -l)" -eq 1 ]
}
