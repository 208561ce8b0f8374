#!/usr/bin/env bats
# lm-sample: determinism from the printed seed, greedy decoding with and
# without the KV cache (also across a window slide), stop strings, UTF-8
# streaming, JSON output, and each bad input.

bats_require_minimum_version 1.5.0
load evalsample_helpers

setup_file() { fixture_setup; }

S=(--device cpu -j 1)

@test "sample: --help is a manual with the window policy and exit codes" {
  run lm-sample --help
  [ "$status" -eq 0 ]
  [[ "$output" == *"Usage: lm-sample"* ]]
  [[ "$output" == *"context/2"* ]]
  [[ "$output" == *"EXIT STATUS"* ]]
}

@test "sample: the seed is printed on stderr and reproduces the output exactly" {
  run --separate-stderr lm-sample --ckpt "$FIX/run" --prompt "Story 3:" -n 40 "${S[@]}"
  [ "$status" -eq 0 ]
  first=$output
  [[ "$stderr" =~ seed\ ([0-9]+) ]]
  seed=${BASH_REMATCH[1]}
  [ -n "$first" ]
  run --separate-stderr lm-sample --ckpt "$FIX/run" --prompt "Story 3:" -n 40 --seed "$seed" "${S[@]}"
  [ "$output" = "$first" ]
  # Timing on stderr: load, prompt and generation speeds.
  [[ "$stderr" == *"loaded"* ]]
  [[ "$stderr" == *"prompt "*" tokens/s"*"generated "*" tokens/s"* ]]
}

@test "sample: same seed same text, other seeds other text" {
  a=$(lm-sample --ckpt "$FIX/run" --prompt "the" -n 60 --seed 11 -q "${S[@]}")
  b=$(lm-sample --ckpt "$FIX/run" --prompt "the" -n 60 --seed 11 -q "${S[@]}")
  c=$(lm-sample --ckpt "$FIX/run" --prompt "the" -n 60 --seed 12 -q "${S[@]}")
  [ "$a" = "$b" ]
  [ "$a" != "$c" ]
}

@test "sample: sample i of --num-samples is --seed S+i alone" {
  lm-sample --ckpt "$FIX/run" --prompt "the" -n 20 --seed 5 --num-samples 3 --json -q "${S[@]}" >"$BATS_TEST_TMPDIR/all.jsonl"
  [ "$(wc -l <"$BATS_TEST_TMPDIR/all.jsonl")" -eq 3 ]
  third=$(sed -n 3p "$BATS_TEST_TMPDIR/all.jsonl" | json_get text)
  alone=$(lm-sample --ckpt "$FIX/run" --prompt "the" -n 20 --seed 7 --json -q "${S[@]}" | json_get text)
  [ "$third" = "$alone" ]
  [ "$(sed -n 3p "$BATS_TEST_TMPDIR/all.jsonl" | json_get seed)" -eq 7 ]
}

@test "sample: greedy with the KV cache equals greedy without, across a window slide" {
  # 150 tokens > context 64: the window slides twice.
  a=$(lm-sample --ckpt "$FIX/run" --prompt "Story 1: the" -n 150 --temperature 0 -q "${S[@]}")
  b=$(lm-sample --ckpt "$FIX/run" --prompt "Story 1: the" -n 150 --temperature 0 --no-kv-cache -q "${S[@]}")
  [ -n "$a" ]
  [ "$a" = "$b" ]
}

@test "sample: streamed text equals the JSON text, and JSON has every field" {
  lm-sample --ckpt "$FIX/run" --prompt "café" -n 50 --seed 3 -q "${S[@]}" >"$BATS_TEST_TMPDIR/out.txt"
  run --separate-stderr lm-sample --ckpt "$FIX/run" --prompt "café" -n 50 --seed 3 --json -q "${S[@]}"
  [ "$status" -eq 0 ]
  python3 - "$output" "$BATS_TEST_TMPDIR/out.txt" <<'EOF'
import json, sys
j = json.loads(sys.argv[1])
assert list(j) == ["sample", "seed", "ckpt", "step", "prompt", "text", "prompt_tokens", "tokens",
                   "stop_reason", "prompt_tokens_per_second", "tokens_per_second"], list(j)
raw = open(sys.argv[2], "rb").read()
# The model may emit bytes that are not UTF-8 (JSON shows them as U+FFFD):
# compare what both say in ASCII.
ascii_stream = bytes(b for b in raw if b < 0x80).decode()
ascii_json = "".join(c for c in j["text"] if ord(c) < 0x80)
assert ascii_stream == ascii_json, (ascii_stream, ascii_json)
assert j["prompt"] == "café" and j["seed"] == 3 and j["step"] == 150
assert j["stop_reason"] in ("length", "eot") and 1 <= j["tokens"] <= 50
EOF
}

@test "sample: multi-byte text the model writes comes out whole" {
  # Greedy after a prompt the corpus continues with é, € and 日本: whatever
  # valid characters the model completes are printed whole.
  lm-sample --ckpt "$FIX/run" --prompt "Story 9: the quick café €5 日本" -n 120 --temperature 0 -q "${S[@]}" >"$BATS_TEST_TMPDIR/out.txt"
  python3 - "$BATS_TEST_TMPDIR/out.txt" <<'EOF'
import sys
raw = open(sys.argv[1], "rb").read()
text = raw.decode("utf-8", errors="replace")
assert "é" in text or "€" in text or "日" in text or "本" in text, text
EOF
}

@test "sample: a stop string ends the output and is not printed" {
  full=$(lm-sample --ckpt "$FIX/run" --prompt "Story 2:" -n 80 --temperature 0 -q "${S[@]}")
  # Stop at the second word the greedy text contains.
  word=$(echo "$full" | awk '{print $2}')
  [ -n "$word" ]
  run --separate-stderr lm-sample --ckpt "$FIX/run" --prompt "Story 2:" -n 80 --temperature 0 --stop "$word" --json "${S[@]}"
  [ "$status" -eq 0 ]
  text=$(echo "$output" | json_get text)
  [ "$(echo "$output" | json_get stop_reason)" = stop ]
  [[ "$text" != *"$word"* ]]
  # It is exactly what came before the stop string's first appearance.
  [ "$text" = "${full%%"$word"*}" ]
}

@test "sample: --stop understands escapes" {
  run lm-sample --ckpt "$FIX/run" --prompt "Story 2:" -n 80 --temperature 0 --stop ' ' -q "${S[@]}"
  [ "$status" -eq 0 ]
  [[ "$output" != *" "* ]]
  run lm-sample --ckpt "$FIX/run" --prompt "x" -n 5 --stop 'a\q' -q "${S[@]}"
  [ "$status" -eq 2 ]
}

@test "sample: prompt from stdin, and from a token stream of the same vocabulary" {
  a=$(lm-sample --ckpt "$FIX/run" --prompt "the lazy" -n 30 --temperature 0 -q "${S[@]}")
  b=$(printf 'the lazy' | lm-sample --ckpt "$FIX/run" -n 30 --temperature 0 -q "${S[@]}")
  [ "$a" = "$b" ]
  # A token stream prompt is taken as ids.
  printf 'the lazy' | lm-tokenize encode --vocab "$FIX/tok.bpe" >"$BATS_TEST_TMPDIR/p.tok"
  run --separate-stderr lm-sample --ckpt "$FIX/run" --prompt-file "$BATS_TEST_TMPDIR/p.tok" -n 30 --temperature 0 --json "${S[@]}"
  [ "$status" -eq 0 ]
  [[ "$(echo "$output" | json_get prompt)" == "the lazy"* ]]
}

@test "sample: <|endoftext|> ends a sample" {
  # Among 8 greedy and sampled runs of 300 tokens the tiny model ends some
  # documents; each such sample reports eot and prints no special token.
  lm-sample --ckpt "$FIX/run" --prompt "Story 4:" -n 300 --seed 2 --num-samples 6 --json -q "${S[@]}" >"$BATS_TEST_TMPDIR/s.jsonl"
  python3 - "$BATS_TEST_TMPDIR/s.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 6
for r in rows:
    assert "<|endoftext|>" not in r["text"]
    assert r["stop_reason"] in ("eot", "length")
    if r["stop_reason"] == "length":
        assert r["tokens"] == 300
EOF
}

# ---- bad input -------------------------------------------------------------

@test "sample: missing checkpoint: exit 1, one line" {
  run lm-sample --ckpt "$BATS_TEST_TMPDIR/nope" --prompt x
  [ "$status" -eq 1 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == "lm-sample: error: "*"nope"* ]]
}

@test "sample: truncated checkpoint: exit 1 naming the file" {
  cp -r "$FIX/run/step-0000150" "$BATS_TEST_TMPDIR/ck"
  f="$BATS_TEST_TMPDIR/ck/model.safetensors"
  truncate -s $(($(stat -c %s "$f") / 2)) "$f"
  run lm-sample --ckpt "$BATS_TEST_TMPDIR/ck" --prompt x
  [ "$status" -eq 1 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == *"model.safetensors"* ]]
}

@test "sample: a foreign checkpoint (config that does not match the tensors): exit 1" {
  cp -r "$FIX/run/step-0000150" "$BATS_TEST_TMPDIR/ck"
  sed -i 's/"num_hidden_layers": *2/"num_hidden_layers": 3/' "$BATS_TEST_TMPDIR/ck/config.json"
  run lm-sample --ckpt "$BATS_TEST_TMPDIR/ck" --prompt x
  [ "$status" -eq 1 ]
  [ "${#lines[@]}" -eq 1 ]
}

@test "sample: a prompt in another vocabulary's ids: exit 1" {
  d="$BATS_TEST_TMPDIR"
  printf 'zzz yyy xxx www\n' >"$d/other.txt"
  lm-tokenize train --vocab-size 270 -o "$d/other.bpe" "$d/other.txt" 2>/dev/null
  lm-tokenize encode --vocab "$d/other.bpe" "$d/other.txt" >"$d/other.tok"
  run lm-sample --ckpt "$FIX/run" --prompt-file "$d/other.tok"
  [ "$status" -eq 1 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == *"another vocabulary"* ]]
  run lm-sample --ckpt "$FIX/run" <"$d/other.tok"
  [ "$status" -eq 1 ]
}

@test "sample: a text prompt that starts with LMTS is text; a damaged token stream names its file once" {
  d="$BATS_TEST_TMPDIR"
  a=$(lm-sample --ckpt "$FIX/run" --prompt "LMTS, the lazy" -n 10 --temperature 0 -q "${S[@]}")
  printf 'LMTS, the lazy' >"$d/lmts.txt"
  b=$(lm-sample --ckpt "$FIX/run" --prompt-file "$d/lmts.txt" -n 10 --temperature 0 -q "${S[@]}")
  [ "$a" = "$b" ]
  run --separate-stderr lm-sample --ckpt "$FIX/run" --prompt "LMTS, the lazy" -n 3 --json -q "${S[@]}"
  [ "$status" -eq 0 ]
  [ "$(echo "$output" | json_get prompt)" = "LMTS, the lazy" ]
  printf 'the lazy' | lm-tokenize encode --vocab "$FIX/tok.bpe" | head -c 40 >"$d/cut.tok"
  run lm-sample --ckpt "$FIX/run" --prompt-file "$d/cut.tok" -n 3 "${S[@]}"
  [ "$status" -eq 1 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == "lm-sample: error: $d/cut.tok: truncated token stream"* ]]
}

@test "sample: missing prompt file: exit 1" {
  run lm-sample --ckpt "$FIX/run" --prompt-file "$BATS_TEST_TMPDIR/none.txt"
  [ "$status" -eq 1 ]
  [[ "$output" == *"none.txt"* ]]
}

@test "sample: usage errors exit 2" {
  for bad in "--temperature -1" "--top-p 0" "--top-p 1.5" "--min-p 2" "--top-k -1" \
             "--repeat-penalty 0" "--num-samples 0" "-n -1" "--seed x" "--device tpu" "--bogus"; do
    run lm-sample --ckpt "$FIX/run" --prompt x $bad
    [ "$status" -eq 2 ] || { echo "$bad: $status $output"; false; }
  done
  # strtoull would read " -5" as 2^64 - 5: a seed is digits only.
  for bad in " -5" "+5" " 5"; do
    run lm-sample --ckpt "$FIX/run" --prompt x -n 1 --seed "$bad"
    [ "$status" -eq 2 ] || { echo "--seed '$bad': $status $output"; false; }
  done
  run lm-sample --ckpt "$FIX/run" --prompt x --prompt-file y
  [ "$status" -eq 2 ]
  run lm-sample --prompt x
  [ "$status" -eq 2 ]
}
