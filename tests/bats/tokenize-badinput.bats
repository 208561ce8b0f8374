#!/usr/bin/env bats
# tokenize-badinput.bats: every kind of bad input gets one clear line naming
# the file, a non-zero exit, and leaves existing outputs alone.

load tokenize_helpers
bats_require_minimum_version 1.5.0

setup() { setup_vocab; }

# One line on stderr+stdout, starting with the tool's name.
one_error_line() {
  [ "${#lines[@]}" -eq 1 ] || [[ "${lines[1]}" == "Try "* ]]
  [[ "${lines[0]}" == "lm-tokenize: error: "* ]]
}

@test "missing vocabulary file" {
  run lm-tokenize --vocab "$T/nope.bpe" "$T/train.txt"
  [ "$status" -eq 1 ]
  one_error_line
  [[ "$output" == *"nope.bpe"*"not found"* ]]
}

@test "truncated vocabulary file" {
  head -c 1000 "$T/v.bpe" >"$T/t.bpe"
  run lm-tokenize --vocab "$T/t.bpe" --ids "$T/train.txt"
  [ "$status" -eq 1 ]
  one_error_line
  [[ "$output" == *"t.bpe"*"truncated"* ]]
}

@test "corrupt vocabulary file (one byte changed)" {
  cp "$T/v.bpe" "$T/c.bpe"
  printf '\x55' | dd of="$T/c.bpe" bs=1 seek=2000 conv=notrunc 2>/dev/null
  run lm-tokenize --vocab "$T/c.bpe" --ids "$T/train.txt"
  [ "$status" -eq 1 ]
  one_error_line
  [[ "$output" == *"c.bpe"*"checksum mismatch"* ]]
}

@test "wrong magic: not a vocabulary file" {
  run lm-tokenize --vocab "$T/train.txt" --ids "$T/train.txt"
  [ "$status" -eq 1 ]
  one_error_line
  [[ "$output" == *"train.txt"*"not a vocabulary file"* ]]
  : >"$T/empty.bpe"
  run lm-tokenize decode --vocab "$T/empty.bpe" "$T/train.txt"
  [ "$status" -eq 1 ]
  [[ "$output" == *"empty.bpe"*"empty"* ]]
}

@test "a token stream made with another vocabulary" {
  lm-tokenize train -q --vocab-size 500 -o "$T/other.bpe" "$T/train.txt"
  lm-tokenize --vocab "$T/other.bpe" "$T/train.txt" >"$T/o.tok"
  run lm-tokenize decode --vocab "$T/v.bpe" "$T/o.tok"
  [ "$status" -eq 1 ]
  one_error_line
  [[ "$output" == *"o.tok"*"another vocabulary"* ]]
}

@test "an id outside the vocabulary" {
  run lm-tokenize decode --vocab "$T/v.bpe" --ids <<<"1 2 600"
  [ "$status" -eq 1 ]
  one_error_line
  [[ "$output" == *"<stdin>"*"600 outside the vocabulary"* ]]
  run lm-tokenize decode --vocab "$T/v.bpe" --ids <<<"1 x 2"
  [ "$status" -eq 1 ]
  [[ "$output" == *"<stdin>:1"*"expected decimal token ids"* ]]
}

@test "a truncated or corrupt token stream" {
  lm-tokenize --vocab "$T/v.bpe" "$T/train.txt" >"$T/a.tok"
  head -c 500 "$T/a.tok" >"$T/cut.tok"
  run lm-tokenize decode --vocab "$T/v.bpe" "$T/cut.tok"
  [ "$status" -eq 1 ]
  [[ "${lines[-1]}" == "lm-tokenize: error: "*"cut.tok"* ]]
  run lm-tokenize decode --vocab "$T/v.bpe" "$T/train.txt"
  [ "$status" -eq 1 ]
  [[ "$output" == *"not a token stream"* ]]
}

@test "vocabulary size smaller than 256 bytes + specials" {
  printf 'old' >"$T/keep.bpe"
  run lm-tokenize train --vocab-size 257 --special '<|pad|>' -o "$T/keep.bpe" "$T/train.txt"
  [ "$status" -eq 2 ]
  [[ "${lines[0]}" == *"--vocab-size 257 is smaller than 256 bytes + 2 special"* ]]
  [ "$(cat "$T/keep.bpe")" = "old" ]
}

@test "empty input: encode, train, stats, decode" {
  : >"$T/empty.txt"
  run lm-tokenize --vocab "$T/v.bpe" "$T/empty.txt"
  [ "$status" -eq 1 ]
  one_error_line
  [[ "$output" == *"empty.txt: empty input"* ]]
  printf 'old' >"$T/keep.bpe"
  run lm-tokenize train -q --vocab-size 300 -o "$T/keep.bpe" "$T/empty.txt"
  [ "$status" -eq 1 ]
  [[ "$output" == *"empty.txt: empty input"* ]]
  [ "$(cat "$T/keep.bpe")" = "old" ]
  run lm-tokenize stats --vocab "$T/v.bpe" <"$T/empty.txt"
  [ "$status" -eq 1 ]
  [[ "$output" == *"<stdin>: empty input"* ]]
  run lm-tokenize decode --vocab "$T/v.bpe" <"$T/empty.txt"
  [ "$status" -eq 1 ]
  [[ "$output" == *"empty"* ]]
  printf '\n\n' >"$T/blank.txt"
  run lm-tokenize --vocab "$T/v.bpe" --lines "$T/blank.txt"
  [ "$status" -eq 1 ]
  [[ "$output" == *"blank.txt: no document"* ]]
}

@test "bad JSON lines name the file and line" {
  printf '{"text": "ok"}\n{"text": 5}\n' >"$T/b.jsonl"
  run lm-tokenize --vocab "$T/v.bpe" --ids --jsonl text "$T/b.jsonl"
  [ "$status" -eq 1 ]
  [[ "${lines[-1]}" == *"b.jsonl:2: field 'text' is not a string"* ]]
  printf 'not json\n' >"$T/c.jsonl"
  run lm-tokenize --vocab "$T/v.bpe" --ids --jsonl text "$T/c.jsonl"
  [ "$status" -eq 1 ]
  [[ "$output" == *"c.jsonl:1: not valid JSON (parse error at line 1, column 2"* ]]
  # A NUL byte would end the parse early: the rest of the line must not be ignored.
  printf '{"text": "ok"}\0{"text": "more"}\n' >"$T/n.jsonl"
  run lm-tokenize --vocab "$T/v.bpe" --ids --jsonl text "$T/n.jsonl"
  [ "$status" -eq 1 ]
  [[ "$output" == *"n.jsonl:1: not valid JSON (a NUL byte at offset 14)"* ]]
  printf '[1, 2]\n' >"$T/a.jsonl"
  run lm-tokenize --vocab "$T/v.bpe" --ids --jsonl text "$T/a.jsonl"
  [ "$status" -eq 1 ]
  [[ "$output" == *"a.jsonl:1: not a JSON object"* ]]
}

@test "a failed import or train overwrites nothing" {
  printf 'old' >"$T/keep.bpe"
  printf 'zz!! 3\n' >"$T/bad.tiktoken"
  run lm-tokenize import -q --tiktoken "$T/bad.tiktoken" --pattern gpt2 -o "$T/keep.bpe"
  [ "$status" -eq 1 ]
  [[ "$output" == *"bad.tiktoken:1"* ]]
  [ "$(cat "$T/keep.bpe")" = "old" ]
  run lm-tokenize train -q --vocab-size 300 -o "$T/keep.bpe" "$T/missing.txt"
  [ "$status" -eq 1 ]
  [[ "$output" == *"missing.txt"* ]]
  [ "$(cat "$T/keep.bpe")" = "old" ]
  [ -z "$(ls "$T" | grep -v -e '^keep.bpe$' -e '^v.bpe$' -e '^train.txt$' -e '^bad.tiktoken$')" ]
  # A rank file without byte 0: the error names the rank file, not "vocabulary".
  for b in $(seq 1 255); do
    printf "$(printf '\\%03o' "$b")" | base64 | tr -d '\n'
    echo " $((b - 1))"
  done >"$T/short.tiktoken"
  echo "AQI= 255" >>"$T/short.tiktoken"  # bytes 1 2: 257 ids with <|endoftext|>
  run lm-tokenize import -q --tiktoken "$T/short.tiktoken" --pattern gpt2 \
    --special "<|endoftext|>" -o "$T/keep.bpe"
  [ "$status" -eq 1 ]
  [[ "$output" == *"short.tiktoken: no token for byte 0"* ]]
}

@test "import: bad --special ids and repeated specials are usage errors" {
  printf 'YQ== 0\n' >"$T/r.tiktoken"
  for sp in '<|endoftext|>=4294967296' '=-1' '<|pad|>=12x' '<|endoftext|>= 257'; do
    run lm-tokenize import -q --tiktoken "$T/r.tiktoken" --pattern gpt2 --special "$sp" -o "$T/x.bpe"
    [ "$status" -eq 2 ]
    [[ "$output" == *"bad id"* ]]
  done
  run lm-tokenize import -q --tiktoken "$T/r.tiktoken" --pattern gpt2 \
    --special '<|endoftext|>=257' --special '<|endoftext|>=258' -o "$T/x.bpe"
  [ "$status" -eq 2 ]
  run lm-tokenize import -q --tiktoken "$T/r.tiktoken" --pattern '' -o "$T/x.bpe"
  [ "$status" -eq 2 ]
  run lm-tokenize train -q --vocab-size 300 --pattern '' -o "$T/x.bpe" "$T/train.txt"
  [ "$status" -eq 2 ]
  [ ! -e "$T/x.bpe" ]
}

@test "usage errors exit 2" {
  run lm-tokenize --vocab "$T/v.bpe" --bogus
  [ "$status" -eq 2 ]
  run lm-tokenize encode "$T/train.txt"
  [ "$status" -eq 2 ]
  [[ "$output" == *"--vocab is required"* ]]
  run lm-tokenize frobnicate
  [ "$status" -eq 2 ]
  run lm-tokenize train --vocab-size 300 --pattern '(unclosed' -o "$T/x.bpe" "$T/train.txt"
  [ "$status" -eq 2 ]
  [[ "$output" == *"bad pattern '(unclosed': missing closing parenthesis"* ]]
  # A long bad pattern is quoted in part: the error stays one short line.
  run --separate-stderr lm-tokenize train --vocab-size 300 --pattern "$(printf '(%.0s' $(seq 3000))" \
    -o "$T/x.bpe" "$T/train.txt"
  [ "$status" -eq 2 ]
  [[ "${stderr_lines[0]}" == *"... (3000 bytes)': "* ]]
  [ "${#stderr_lines[0]}" -lt 300 ]
  run lm-tokenize --vocab "$T/v.bpe" --lines --jsonl x "$T/train.txt"
  [ "$status" -eq 2 ]
  run lm-tokenize --vocab "$T/v.bpe" -j -1 "$T/train.txt"
  [ "$status" -eq 2 ]
  [[ "$output" == *"-j/--threads must be 0"* ]]
  run lm-tokenize --vocab "$T/v.bpe" -o '' "$T/train.txt"
  [ "$status" -eq 2 ]
  run lm-tokenize train -q --vocab-size 300 -o '' "$T/train.txt"
  [ "$status" -eq 2 ]
}

@test "decode --ids names a bad byte by its value instead of echoing it" {
  run bash -c "printf '12 \\001 5' | lm-tokenize decode --vocab '$T/v.bpe' --ids"
  [ "$status" -eq 1 ]
  [[ "$output" == *"<stdin>:1: expected decimal token ids, found byte 0x01"* ]]
}

@test "-j far beyond the cores is capped to them, not a crash" {
  lm-tokenize --vocab "$T/v.bpe" -j 1 "$T/train.txt" >"$T/j1.tok"
  lm-tokenize --vocab "$T/v.bpe" -j 99999 -o "$T/big.tok" "$T/train.txt"
  cmp "$T/j1.tok" "$T/big.tok"
  lm-tokenize train -q -j 99999 --vocab-size 300 -o "$T/big.bpe" "$T/train.txt"
  lm-tokenize stats -j 99999 --vocab "$T/v.bpe" "$T/train.txt" >/dev/null
}

@test "a failed encode or decode -o leaves the old output and no temporary" {
  printf 'old' >"$T/keep.out"
  printf 'x\n{"a": 1}\n' >"$T/b.jsonl"
  run lm-tokenize --vocab "$T/v.bpe" --jsonl text -o "$T/keep.out" "$T/b.jsonl"
  [ "$status" -eq 1 ]
  run lm-tokenize decode --vocab "$T/v.bpe" -o "$T/keep.out" "$T/train.txt"
  [ "$status" -eq 1 ]
  [ "$(cat "$T/keep.out")" = "old" ]
  [ -z "$(ls -A "$T" | grep tmp)" ]
}

@test "a write past ulimit -f is an error that leaves the old output and no temporary" {
  for i in 1 2 3 4 5 6 7 8; do cat "$T/train.txt"; done >"$T/big.txt"
  printf 'old' >"$T/keep.tok"
  run bash -c "ulimit -f 4; lm-tokenize --vocab '$T/v.bpe' -o '$T/keep.tok' '$T/big.txt'"
  [ "$status" -eq 1 ]
  [[ "$output" == *"keep.tok"*"File too large"* ]]
  [ "$(cat "$T/keep.tok")" = "old" ]
  [ -z "$(ls -A "$T" | grep tmp)" ]
}

@test "a custom pattern that backtracks too much: an error naming the input" {
  printf 'ab ab c' >"$BATS_TEST_TMPDIR/small.txt"
  awk 'BEGIN { s = ""; for (i = 0; i < 5000; i++) s = s "a"; print s "c" }' >"$BATS_TEST_TMPDIR/aa.txt"
  run lm-tokenize train --vocab-size 258 --pattern '(?:a|a)+b|.' -o "$BATS_TEST_TMPDIR/bad.bpe" "$BATS_TEST_TMPDIR/aa.txt"
  [ "$status" -eq 1 ]
  one_error_line
  [[ "$output" == *"error: $BATS_TEST_TMPDIR/aa.txt: the split pattern failed on this text: match limit exceeded"* ]]
  [ ! -e "$BATS_TEST_TMPDIR/bad.bpe" ]
  lm-tokenize train --vocab-size 258 --pattern '(?:a|a)+b|.' -o "$BATS_TEST_TMPDIR/bad.bpe" "$BATS_TEST_TMPDIR/small.txt" 2>/dev/null
  run lm-tokenize encode --vocab "$BATS_TEST_TMPDIR/bad.bpe" "$BATS_TEST_TMPDIR/small.txt" "$BATS_TEST_TMPDIR/aa.txt"
  [ "$status" -eq 1 ]
  [[ "$output" == *"error: $BATS_TEST_TMPDIR/aa.txt: the split pattern failed"* ]]
}

@test "stdin or stdout closed: a read or write error, never another file in their place" {
  # The vocabulary must not be read as the text, nor tokens written into it.
  cp "$T/v.bpe" "$T/v.orig"
  # Closed inside the child: bats's own pipe would otherwise take fd 0.
  run bash -c "lm-tokenize encode --vocab '$BATS_TEST_TMPDIR/v.bpe' <&-"
  [ "$status" -eq 1 ]
  one_error_line
  [[ "$output" == *"error: <stdin>: read failed"* ]]
  run bash -c "echo hello | lm-tokenize encode --vocab '$BATS_TEST_TMPDIR/v.bpe' >&-"
  [ "$status" -eq 1 ]
  [[ "$output" == *"error: <stdout>: write failed"* ]]
  cmp "$T/v.orig" "$T/v.bpe"
}

@test "train: a missing input file or output directory is an error before any text is read" {
  # stdin never ends: the error must come before train reads it (it came
  # after counting and merging the whole corpus).
  run timeout 10 lm-tokenize train -n 300 -o "$T/nodir/v.bpe" - </dev/zero
  [ "$status" -eq 1 ]
  one_error_line
  [[ "$output" == *"nodir/v.bpe: cannot create: No such file or directory"* ]]
  run timeout 10 lm-tokenize train -n 300 -o "$T/v2.bpe" - "$T/nope.txt" </dev/zero
  [ "$status" -eq 1 ]
  one_error_line
  [[ "$output" == *"nope.txt: cannot open: No such file or directory"* ]]
  run timeout 10 lm-tokenize train -n 300 -o "$T" - </dev/zero
  [ "$status" -eq 1 ]
  one_error_line
  [[ "$output" == *"$T: is a directory"* ]]
  [ ! -e "$T/v2.bpe" ]
}
