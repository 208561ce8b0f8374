#!/usr/bin/env bats
# demo.bats: scripts/demo.sh (what `make demo` runs) at a small size: every
# stage runs, the summary has every figure, and a rerun reuses finished stages.

bats_require_minimum_version 1.5.0

REPO="$BATS_TEST_DIRNAME/../.."

setup_file() {
  [ -d /usr/share/games/fortunes ] || return 0
  export DEMO_DIR="$BATS_FILE_TMPDIR/demo" DEMO_BUDGET=8s DEMO_PRESET=tiny DEMO_VOCAB=512 DEMO_DEVICE=cpu
  export BIN="$LM_BIN"
}

need_fortunes() {
  [ -d /usr/share/games/fortunes ] || skip "the fortunes package is not installed (scripts/install-deps.sh installs it)"
}

@test "demo: runs every stage and prints the summary" {
  need_fortunes
  run --separate-stderr "$REPO/scripts/demo.sh"
  [ "$status" -eq 0 ] || { echo "$stderr" | tail -20; false; }
  for s in "vocabulary:" "tokenize | pack" "train: preset tiny" "evaluate on the held-out" "sample"; do
    [[ "$stderr" == *"$s"* ]] || { echo "missing stage: $s"; false; }
  done
  for f in "data:" "vocabulary:" "model:" "trained:" "val loss:" "val bpb:" "eval speed:" "samples" "total time:"; do
    [[ "$output" == *"$f"* ]] || { echo "summary lacks $f"; false; }
  done
  # The figures are there, not only their labels.
  [[ "$output" =~ model:\ +[0-9]+\ layers,\ dim\ [0-9]+,\ [0-9]+\ heads,\ ffn\ [0-9]+,\ context\ [0-9]+ ]]
  [[ "$output" =~ trained:\ +[0-9]+\ steps,\ [0-9]+\ tokens\ in\ [0-9]+s ]]
  [[ "$output" =~ val\ bpb:\ +[0-9]+\.[0-9]{3}\ -\>\ [0-9]+\.[0-9]{3} ]]
  [[ "$output" =~ eval\ speed:\ +[0-9]+\ tokens/s ]]
  # The share of the tokens held out, near the 5% asked.
  [[ "$output" =~ val:\ +[0-9]+\ tokens,\ [0-9]+\ documents,\ [0-9]+\ shards,\ [45]\.[0-9]{2}%\ of\ the\ tokens ]]
  # Training lowered the validation loss.
  python3 - "$DEMO_DIR/eval.jsonl" <<'PY'
import json, sys
start, end = [json.loads(l) for l in open(sys.argv[1])]
assert start["step"] == 0 and end["step"] > 0, (start["step"], end["step"])
assert end["loss"] < start["loss"], (start["loss"], end["loss"])
PY
  [ "$(grep -c '^--- ' "$DEMO_DIR/samples.txt")" -eq 3 ]
}

@test "demo: a rerun reuses every finished stage" {
  need_fortunes
  [ -s "$DEMO_DIR/summary.txt" ] || skip "needs the first test's output"
  before=$(stat -c %Y "$DEMO_DIR/run/latest/model.safetensors")
  run --separate-stderr "$REPO/scripts/demo.sh"
  [ "$status" -eq 0 ]
  [[ "$stderr" != *"== train"* ]]
  [[ "$stderr" != *"== vocabulary"* ]]
  [[ "$output" == *"val bpb:"* ]]
  [ "$(stat -c %Y "$DEMO_DIR/run/latest/model.safetensors")" = "$before" ]
}

@test "demo: the summary's figures under a locale with a decimal comma" {
  need_fortunes
  [ -s "$DEMO_DIR/summary.txt" ] || skip "needs the first test's output"
  [ -d /usr/share/i18n/locales ] && command -v localedef >/dev/null || skip "no locale sources to build de_DE from"
  localedef -i de_DE -f UTF-8 "$BATS_TEST_TMPDIR/de_DE.UTF-8" 2>/dev/null || skip "localedef de_DE failed"
  # printf read "6.25" by the locale: "invalid number", figures of 6,000, exit 1.
  LOCPATH="$BATS_TEST_TMPDIR" LC_ALL=de_DE.UTF-8 run --separate-stderr "$REPO/scripts/demo.sh"
  [ "$status" -eq 0 ] || { echo "$stderr"; false; }
  [[ "$output" =~ val\ loss:\ +[0-9]+\.[0-9]{3}\ -\>\ [0-9]+\.[0-9]{3} ]]
  [[ "$output" == *"total time:"* ]]
}

@test "demo: a failing lm-sample is reported, not silent" {
  need_fortunes
  [ -s "$DEMO_DIR/summary.txt" ] || skip "needs the first test's output"
  D="$BATS_TEST_TMPDIR/demo"
  cp -a "$DEMO_DIR" "$D"
  rm "$D/samples.txt"
  mkdir "$BATS_TEST_TMPDIR/bin"
  for t in "$LM_BIN"/lm-*; do ln -s "$t" "$BATS_TEST_TMPDIR/bin/"; done
  rm "$BATS_TEST_TMPDIR/bin/lm-sample"
  printf '#!/bin/sh\necho "lm-sample: error: something broke" >&2\nexit 1\n' >"$BATS_TEST_TMPDIR/bin/lm-sample"
  chmod +x "$BATS_TEST_TMPDIR/bin/lm-sample"
  DEMO_DIR="$D" BIN="$BATS_TEST_TMPDIR/bin" run --separate-stderr "$REPO/scripts/demo.sh"
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"lm-sample: error: something broke"* ]]
  [[ "$stderr" == *"demo: lm-sample failed"* ]]
}

@test "demo: training stopped before its budget (as by Ctrl-C) is resumed on rerun, not marked done" {
  need_fortunes
  [ -s "$DEMO_DIR/summary.txt" ] || skip "needs the first test's output"
  D="$BATS_TEST_TMPDIR/demo"
  mkdir "$D"
  cp -a "$DEMO_DIR/corpus.txt" "$DEMO_DIR/tok.bpe" "$DEMO_DIR/shards" "$DEMO_DIR/init" "$D/"
  # lm-train stops at step 2 with exit 0 (--stop-at): a stop before the budget
  # that the demo must not take for the end of training.
  mkdir "$BATS_TEST_TMPDIR/bin"
  for t in "$LM_BIN"/lm-*; do ln -s "$t" "$BATS_TEST_TMPDIR/bin/"; done
  rm "$BATS_TEST_TMPDIR/bin/lm-train"
  printf '#!/bin/sh\nexec "%s/lm-train" "$@" --stop-at 2\n' "$LM_BIN" >"$BATS_TEST_TMPDIR/bin/lm-train"
  chmod +x "$BATS_TEST_TMPDIR/bin/lm-train"
  DEMO_DIR="$D" BIN="$BATS_TEST_TMPDIR/bin" run --separate-stderr "$REPO/scripts/demo.sh"
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"demo: lm-train stopped before the end of its budget"* ]]
  [ ! -e "$D/run/.done" ] && [ ! -e "$D/eval.jsonl" ]
  DEMO_DIR="$D" run --separate-stderr "$REPO/scripts/demo.sh"
  [ "$status" -eq 0 ] || { echo "$stderr" | tail; false; }
  [[ "$stderr" == *"resum"* ]]
  grep -q '"ended": true' "$D/run/latest/trainer-state.json"
}
