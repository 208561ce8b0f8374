#!/usr/bin/env bats
# lm-eval: the numbers, the JSON line, the method's invariants (batch, stride,
# sources), and a clear error with exit 1 or 2 for each bad input.

bats_require_minimum_version 1.5.0
load evalsample_helpers

setup_file() { fixture_setup; }

@test "eval: --help is a manual with the method and exit codes" {
  run lm-eval --help
  [ "$status" -eq 0 ]
  [[ "$output" == *"Usage: lm-eval"* ]]
  [[ "$output" == *"METHOD"* ]]
  [[ "$output" == *"first token of the data"* ]]
  # as docs/eval.md says: window k >= 1 scores x[kS+T-S+1 .. kS+T], from kS on
  [[ "$output" == *"at least T - S + 1 tokens of context"* ]]
  [[ "$output" == *"EXIT STATUS"* ]]
}

@test "eval: one JSON line with every field" {
  run --separate-stderr lm-eval --ckpt "$FIX/run" --data "$FIX/shards" --json --device cpu -j 1
  [ "$status" -eq 0 ]
  [ "${#lines[@]}" -eq 1 ]
  python3 - "$output" "$FIX" <<'EOF'
import json, math, sys
j = json.loads(sys.argv[1])
want = ["ckpt", "step", "tokens_seen", "data", "split", "data_id", "context", "stride",
        "limit_tokens", "loss", "ppl", "bpb", "stderr", "targets", "text_targets", "bytes",
        "tokens_per_second", "seconds", "device", "date", "version"]
assert list(j) == want, list(j)
assert j["ckpt"].endswith("step-0000150"), j["ckpt"]
assert j["step"] == 150 and j["tokens_seen"] > 0
assert j["split"] == "val" and len(j["data_id"]) == 16
assert j["context"] == 64 and j["stride"] == 64 and j["limit_tokens"] is None
assert 0 < j["loss"] < 10 and abs(j["ppl"] - math.exp(j["loss"])) < 1e-6 * j["ppl"]
assert 0 < j["stderr"] < j["loss"]
assert 0 < j["text_targets"] < j["targets"] and j["bytes"] >= j["text_targets"]
assert 0 < j["bpb"] < 20
assert j["version"].startswith("lm-eval ") and j["date"].endswith("Z")
EOF
}

@test "eval: targets = tokens - 1, and --limit-tokens" {
  run lm-eval --ckpt "$FIX/run" --data "$FIX/shards" --json --device cpu -j 1 --limit-tokens 100 -q
  [ "$status" -eq 0 ]
  [ "$(echo "$output" | json_get targets)" -eq 99 ]
  [ "$(echo "$output" | json_get limit_tokens)" -eq 100 ]
}

@test "eval: results do not depend on --batch" {
  a=$(lm-eval --ckpt "$FIX/run" --data "$FIX/shards" --json -q --device cpu -j 1 --batch 1 --context 16)
  b=$(lm-eval --ckpt "$FIX/run" --data "$FIX/shards" --json -q --device cpu -j 1 --batch 7 --context 16)
  for f in targets text_targets bytes; do
    [ "$(echo "$a" | json_get $f)" = "$(echo "$b" | json_get $f)" ]
  done
  # The same losses summed in the same order; only the backend's rounding for
  # another matrix shape may differ.
  python3 - "$a" "$b" <<'EOF'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for f in ("loss", "bpb", "stderr"):
    assert abs(a[f] - b[f]) <= 1e-6 * abs(a[f]), (f, a[f], b[f])
EOF
}

@test "eval: stride scores every target once, with more context (lower loss)" {
  full=$(lm-eval --ckpt "$FIX/run" --data "$FIX/shards" --json -q --device cpu -j 1 --context 8)
  strided=$(lm-eval --ckpt "$FIX/run" --data "$FIX/shards" --json -q --device cpu -j 1 --context 8 --stride 2)
  [ "$(echo "$full" | json_get targets)" = "$(echo "$strided" | json_get targets)" ]
  [ "$(echo "$full" | json_get bytes)" = "$(echo "$strided" | json_get bytes)" ]
  [ "$(echo "$strided" | json_get stride)" -eq 2 ]
  python3 -c 'import sys; assert float(sys.argv[1]) < float(sys.argv[2])' \
    "$(echo "$strided" | json_get loss)" "$(echo "$full" | json_get loss)"
}

@test "eval: --tokens of the val stream equals --data val on the same tokens" {
  lm-pack cat "$FIX/shards" --split val -o "$BATS_TEST_TMPDIR/val.tok"
  a=$(lm-eval --ckpt "$FIX/run" --data "$FIX/shards" --json -q --device cpu -j 1)
  b=$(lm-eval --ckpt "$FIX/run" --tokens "$BATS_TEST_TMPDIR/val.tok" --json -q --device cpu -j 1)
  for f in loss bpb targets bytes; do
    [ "$(echo "$a" | json_get $f)" = "$(echo "$b" | json_get $f)" ]
  done
  [ "$(echo "$b" | json_get split)" = null ]
}

@test "eval: --text tokenizes each file as a document ending in <|endoftext|>" {
  printf 'the quick brown fox café' >"$BATS_TEST_TMPDIR/a.txt"
  printf 'a lazy dog 日本' >"$BATS_TEST_TMPDIR/b.txt"
  run lm-eval --ckpt "$FIX/run" --text "$BATS_TEST_TMPDIR/a.txt" "$BATS_TEST_TMPDIR/b.txt" --json -q --device cpu -j 1
  [ "$status" -eq 0 ]
  # A leading <|endoftext|> makes the first token a target: every byte counts.
  bytes=$(echo "$output" | json_get bytes)
  total=$(cat "$BATS_TEST_TMPDIR/a.txt" "$BATS_TEST_TMPDIR/b.txt" | wc -c)
  [ "$bytes" -eq "$total" ]
  # The two <|endoftext|> ending the files are targets but not text; the text
  # targets are the files' tokens, each file encoded on its own.
  t=$(echo "$output" | json_get targets)
  tt=$(echo "$output" | json_get text_targets)
  [ $((t - tt)) -eq 2 ]
  n=0
  for f in a b; do
    k=$(lm-tokenize encode --vocab "$FIX/run/step-0000050/tok.bpe" --ids --no-eot "$BATS_TEST_TMPDIR/$f.txt" | wc -w)
    n=$((n + k))
  done
  [ "$tt" -eq "$n" ]
}

@test "eval: --text scores a one-byte file; empty files are an error" {
  printf 'a' >"$BATS_TEST_TMPDIR/one.txt"
  run lm-eval --ckpt "$FIX/run" --text "$BATS_TEST_TMPDIR/one.txt" -q --device cpu -j 1
  [ "$status" -eq 0 ]
  [[ "$output" == *"bits/byte (2 targets, 1 bytes"* ]]
  [[ "$output" != *nan* ]]
  : >"$BATS_TEST_TMPDIR/empty.txt"
  run lm-eval --ckpt "$FIX/run" --text "$BATS_TEST_TMPDIR/empty.txt" "$BATS_TEST_TMPDIR/empty.txt" -q --device cpu -j 1
  [ "$status" -eq 1 ]
  [[ "$output" == *"empty.txt"*"no text to evaluate"* ]]
}

@test "eval: plain output says n/a where --json says null" {
  # Only special tokens: no bytes, so no bits per byte.
  printf '<|endoftext|><|endoftext|><|endoftext|>' |
    lm-tokenize encode --vocab "$FIX/run/step-0000050/tok.bpe" --allow-special --no-eot -o "$BATS_TEST_TMPDIR/eot.tok"
  run lm-eval --ckpt "$FIX/run" --tokens "$BATS_TEST_TMPDIR/eot.tok" -q --device cpu -j 1
  [ "$status" -eq 0 ]
  [[ "$output" == *", n/a bits/byte (2 targets, 0 bytes"* ]]
  run lm-eval --ckpt "$FIX/run" --tokens "$BATS_TEST_TMPDIR/eot.tok" -q --json --device cpu -j 1
  [ "$(echo "$output" | json_get bpb)" = null ]
}

@test "eval: plain output names the checkpoint and the numbers" {
  run --separate-stderr lm-eval --ckpt "$FIX/run/step-0000050" --data "$FIX/shards" --device cpu -j 1
  [ "$status" -eq 0 ]
  [[ "$output" == *"step-0000050: loss "*" nats/token, ppl "*" bits/byte"* ]]
  [[ "$stderr" == *"tokens/s"* ]]
}

@test "eval: trained checkpoints beat the first one" {
  a=$(lm-eval --ckpt "$FIX/run/step-0000050" --data "$FIX/shards" --json -q --device cpu -j 1 | json_get loss)
  b=$(lm-eval --ckpt "$FIX/run/step-0000150" --data "$FIX/shards" --json -q --device cpu -j 1 | json_get loss)
  python3 -c 'import sys; assert float(sys.argv[2]) < float(sys.argv[1])' "$a" "$b"
}

# ---- bad input -------------------------------------------------------------

@test "eval: missing checkpoint: exit 1, one line" {
  run lm-eval --ckpt "$BATS_TEST_TMPDIR/nope" --data "$FIX/shards"
  [ "$status" -eq 1 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == "lm-eval: error: "*"nope"* ]]
}

@test "eval: truncated model.safetensors: exit 1 naming the file" {
  cp -r "$FIX/run/step-0000100" "$BATS_TEST_TMPDIR/ck"
  f="$BATS_TEST_TMPDIR/ck/model.safetensors"
  truncate -s $(($(stat -c %s "$f") - 100)) "$f"
  run lm-eval --ckpt "$BATS_TEST_TMPDIR/ck" --data "$FIX/shards"
  [ "$status" -eq 1 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == *"model.safetensors"* ]]
}

@test "eval: a flipped byte in the weights is caught by the hash" {
  cp -r "$FIX/run/step-0000100" "$BATS_TEST_TMPDIR/ck"
  f="$BATS_TEST_TMPDIR/ck/model.safetensors"
  size=$(stat -c %s "$f")
  printf '\x55' | dd of="$f" bs=1 seek=$((size - 10)) conv=notrunc 2>/dev/null
  run lm-eval --ckpt "$BATS_TEST_TMPDIR/ck" --data "$FIX/shards"
  [ "$status" -eq 1 ]
  [[ "$output" == *"model.safetensors"* ]]
}

@test "eval: a directory that is not a checkpoint: exit 1" {
  run lm-eval --ckpt "$FIX/shards" --data "$FIX/shards"
  [ "$status" -eq 1 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == "lm-eval: error: "* ]]
}

@test "eval: data of another vocabulary: exit 1" {
  d="$BATS_TEST_TMPDIR"
  printf 'zzz yyy xxx www\n%%\nvvv uuu\n' >"$d/other.txt"
  lm-tokenize train --vocab-size 270 -o "$d/other.bpe" "$d/other.txt" 2>/dev/null
  lm-tokenize encode --vocab "$d/other.bpe" "$d/other.txt" >"$d/other.tok"
  run lm-eval --ckpt "$FIX/run" --tokens "$d/other.tok"
  [ "$status" -eq 1 ]
  [[ "$output" == *"another vocabulary"* ]]
  lm-pack -q -o "$d/other-shards" "$d/other.tok"
  run lm-eval --ckpt "$FIX/run" --data "$d/other-shards" --split train
  [ "$status" -eq 1 ]
  [[ "$output" == *"another vocabulary"* ]]
}

@test "eval: manifest token counts are checked before they size the work" {
  d="$BATS_TEST_TMPDIR"
  for lie in 9223372036854775808 4611686018427387904 "tokens + 1"; do
    rm -rf "$d/lied"
    cp -r "$FIX/shards" "$d/lied"
    python3 - "$d/lied/manifest.json" "$lie" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
e = [s for s in m["shards"] if s["split"] == "val"][0]
e["tokens"] = e["tokens"] + 1 if sys.argv[2] == "tokens + 1" else int(sys.argv[2])
json.dump(m, open(sys.argv[1], "w"))
EOF
    run lm-eval --ckpt "$FIX/run" --data "$d/lied" --device cpu
    [ "$status" -eq 1 ]
    [ "${#lines[@]}" -eq 1 ]
    if [ "$lie" = "tokens + 1" ]; then
      [[ "$output" == "lm-eval: error: $d/lied/val-"*".lms: shard does not match its manifest entry"* ]]
    else
      [[ "$output" == "lm-eval: error: $d/lied/manifest.json: val-"*" $lie tokens, "*"cannot fit"* ]]
    fi
  done
}

@test "eval: an empty val split: exit 1" {
  lm-pack -q -o "$BATS_TEST_TMPDIR/noval" "$FIX/all.tok"
  run lm-eval --ckpt "$FIX/run" --data "$BATS_TEST_TMPDIR/noval"
  [ "$status" -eq 1 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == *"val split is empty"* ]]
}

@test "eval: usage errors exit 2" {
  run lm-eval --data "$FIX/shards"
  [ "$status" -eq 2 ]
  run lm-eval --ckpt "$FIX/run"
  [ "$status" -eq 2 ]
  run lm-eval --ckpt "$FIX/run" --data "$FIX/shards" --text x.txt
  [ "$status" -eq 2 ]
  run lm-eval --ckpt "$FIX/run" --data "$FIX/shards" --stride 9 --context 8
  [ "$status" -eq 2 ]
  run lm-eval --ckpt "$FIX/run" --data "$FIX/shards" --context 65
  [ "$status" -eq 2 ]
  [[ "$output" == *"context is 64"* ]]
  run lm-eval --ckpt "$FIX/run" --data "$FIX/shards" --split test
  [ "$status" -eq 2 ]
  run lm-eval --ckpt "$FIX/run" --data "$FIX/shards" --device tpu
  [ "$status" -eq 2 ]
  run lm-eval --ckpt "$FIX/run" --data "$FIX/shards" --bogus
  [ "$status" -eq 2 ]
}
