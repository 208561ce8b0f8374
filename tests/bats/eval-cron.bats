#!/usr/bin/env bats
# lm-eval --new-only: the cron workflow. Each checkpoint is evaluated once per
# (data, options); overlapping runs wait on the lock and never repeat or
# interleave lines; checkpoints that appear meanwhile are picked up; nothing new
# means no output and exit 0.

bats_require_minimum_version 1.5.0
load evalsample_helpers
load state_helpers

setup_file() { fixture_setup; }

# A private copy of the run holding only steps 50 and 100; step 150 waits aside
# (moved in later, as lm-train's rename would).
setup() {
  RUN="$BATS_TEST_TMPDIR/run"
  cp -r "$FIX/run" "$RUN"
  mv "$RUN/step-0000150" "$BATS_TEST_TMPDIR/pending-step-0000150"
  EVAL=(lm-eval --ckpt "$RUN" --data "$FIX/shards" --json --new-only --device cpu -j 1 -q)
}

# steps_in FILE: the step of each line, sorted, space-separated.
steps_in() {
  python3 -c '
import json, sys
print(" ".join(str(s) for s in sorted(json.loads(l)["step"] for l in open(sys.argv[1]) if l.strip())))' "$1"
}

@test "cron: first run evaluates every checkpoint, oldest first; the second prints nothing" {
  run "${EVAL[@]}"
  [ "$status" -eq 0 ]
  [ "${#lines[@]}" -eq 2 ]
  [[ "${lines[0]}" == *'"step":50,'* ]]
  [[ "${lines[1]}" == *'"step":100,'* ]]
  [ -s "$RUN/eval-record.jsonl" ]
  run "${EVAL[@]}"
  [ "$status" -eq 0 ]
  [ -z "$output" ]
}

@test "cron: a new checkpoint is evaluated by the next run, alone" {
  "${EVAL[@]}" >"$BATS_TEST_TMPDIR/log.jsonl"
  mv "$BATS_TEST_TMPDIR/pending-step-0000150" "$RUN/step-0000150"
  "${EVAL[@]}" >>"$BATS_TEST_TMPDIR/log.jsonl"
  [ "$(steps_in "$BATS_TEST_TMPDIR/log.jsonl")" = "50 100 150" ]
}

@test "cron: other data or options are evaluated separately" {
  "${EVAL[@]}" >/dev/null
  run "${EVAL[@]}" --context 16
  [ "$status" -eq 0 ]
  [ "${#lines[@]}" -eq 2 ]
  run "${EVAL[@]}" --batch 3
  [ "$status" -eq 0 ]
  [ -z "$output" ]  # --batch does not change the result, so it is not a new key
  run "${EVAL[@]}" --split train --limit-tokens 200
  [ "${#lines[@]}" -eq 2 ]
}

@test "cron: overlapping runs wait for the lock; a checkpoint appearing meanwhile is done once" {
  log="$BATS_TEST_TMPDIR/log.jsonl"
  : >"$log"
  # Hold the lock as a running lm-eval would, start two cron runs behind it,
  # and let step 150 appear (a rename, as lm-train does) while they wait.
  flock "$RUN/eval-record.lock" sleep 2 &
  holder=$!
  sleep 0.3
  "${EVAL[@]}" >>"$log" &
  a=$!
  "${EVAL[@]}" >>"$log" &
  b=$!
  sleep 0.5
  mv "$BATS_TEST_TMPDIR/pending-step-0000150" "$RUN/step-0000150"
  wait $holder
  wait $a
  wait $b
  # However the three were scheduled, a later run completes the set and
  # nothing is ever evaluated twice.
  "${EVAL[@]}" >>"$log"
  [ "$(steps_in "$log")" = "50 100 150" ]
  [ "$(wc -l <"$log")" -eq 3 ]
  # Every line is one whole JSON object.
  python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$log"
}

@test "cron: a checkpoint renamed into place during a long evaluation is picked up or left for next time" {
  log="$BATS_TEST_TMPDIR/log.jsonl"
  # A slower evaluation (short windows, one per pass) so that the rename
  # lands while it runs.
  "${EVAL[@]}" --split train --context 4 --batch 1 >"$log" &
  pid=$!
  sleep 0.3
  mv "$BATS_TEST_TMPDIR/pending-step-0000150" "$RUN/step-0000150"
  wait $pid
  "${EVAL[@]}" --split train --context 4 --batch 1 >>"$log"
  [ "$(steps_in "$log")" = "50 100 150" ]
}

@test "cron: a half-written step directory is invisible" {
  # What lm-train writes before its rename: no trainer-state.json yet.
  mkdir "$RUN/step-0000200"
  cp "$FIX/run/step-0000150/config.json" "$RUN/step-0000200/"
  head -c 1000 "$FIX/run/step-0000150/model.safetensors" >"$RUN/step-0000200/model.safetensors"
  run "${EVAL[@]}"
  [ "$status" -eq 0 ]
  [ "${#lines[@]}" -eq 2 ]
  [[ "$output" != *"step-0000200"* ]]
}

@test "cron: a corrupt checkpoint fails (exit 1), the others are done, and it is retried" {
  f="$RUN/step-0000050/model.safetensors"
  truncate -s $(($(stat -c %s "$f") - 64)) "$f"
  run --separate-stderr "${EVAL[@]}"
  [ "$status" -eq 1 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "${lines[0]}" == *'"step":100,'* ]]
  [[ "$stderr" == *"step-0000050"* ]]
  cp "$FIX/run/step-0000050/model.safetensors" "$f"
  run "${EVAL[@]}"
  [ "$status" -eq 0 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "${lines[0]}" == *'"step":50,'* ]]
}

@test "cron: a torn last record line is ignored" {
  "${EVAL[@]}" >/dev/null
  printf '{"ckpt":"step-0000100","id":"1234","key":"0000' >>"$RUN/eval-record.jsonl"
  run "${EVAL[@]}"
  [ "$status" -eq 0 ]
  [ -z "$output" ]
}

@test "cron: --new-only on a missing run is an error" {
  run lm-eval --ckpt "$BATS_TEST_TMPDIR/none" --data "$FIX/shards" --new-only
  [ "$status" -eq 1 ]
  [[ "$output" == *"none"* ]]
}

@test "cron: --new-only on a step directory is a usage error" {
  run lm-eval --ckpt "$RUN/step-0000050" --data "$FIX/shards" --new-only
  [ "$status" -eq 2 ]
  [[ "$output" == *"step directory"* ]]
}

@test "cron: a run restarted from scratch in the same directory is evaluated again" {
  "${EVAL[@]}" >/dev/null
  # Same step names, other contents: step 150's weights as the new run's step 100
  # (its trainer-state.json says step 100, as a restarted run's would).
  rm -rf "$RUN/step-0000100"
  mv "$BATS_TEST_TMPDIR/pending-step-0000150" "$RUN/step-0000100"
  edit_state "$RUN/step-0000100/trainer-state.json" 's/"step": *150,/"step": 100,/'
  grep -q '"step": *100,' "$RUN/step-0000100/trainer-state.json"
  run "${EVAL[@]}"
  [ "$status" -eq 0 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "${lines[0]}" == *'"ckpt":"'"$RUN"'/step-0000100"'* ]]
  [[ "${lines[0]}" == *'"step":100,'* ]]
}

@test "cron: stdout closed: exit 1, nothing recorded, nothing written into the run" {
  run bash -c '"$@" >&-' _ "${EVAL[@]}"
  [ "$status" -eq 1 ]
  [[ "$output" == *"error: <stdout>: write failed"* ]]
  [ ! -s "$RUN/eval-record.jsonl" ]
  [ ! -s "$RUN/eval-record.lock" ]
  run "${EVAL[@]}"
  [ "${#lines[@]}" -eq 2 ]
}

@test "cron: a write cut short (ulimit -f) leaves the log as it was, and is redone" {
  log="$BATS_TEST_TMPDIR/eval.jsonl"
  printf '{"pad":"%0990d"}\n' 0 >"$log"  # 1001 bytes: the next line crosses 1 KiB
  run bash -c 'log=$1; shift; ulimit -f 1; "$@" >>"$log"' _ "$log" "${EVAL[@]}"
  [ "$status" -eq 1 ]
  [[ "$output" == *"<stdout>: write failed"* ]]
  [ "$(wc -c <"$log")" -eq 1001 ]
  "${EVAL[@]}" >>"$log"
  [ "$(wc -l <"$log")" -eq 3 ]
  python3 -c 'import json, sys; [json.loads(l) for l in open(sys.argv[1])]' "$log"
}
