#!/usr/bin/env bats
# lm-pack: packing, the train/val split, verify, inspect, cat, as users run them.

load pack_helpers
bats_require_minimum_version 1.5.0

setup_file() { pack_fixture; }
setup() {
  need_tokenize
  cd "$BATS_TEST_TMPDIR"
}

@test "pack: --help is a manual with examples and exit status" {
  run lm-pack --help
  [ "$status" -eq 0 ]
  [[ "$output" == *"Usage: lm-pack -o DIR"* ]]
  [[ "$output" == *"--val-fraction"* ]]
  [[ "$output" == *"DESCRIPTION"* ]]
  [[ "$output" == *"EXAMPLES"* ]]
  [[ "$output" == *"EXIT STATUS"* ]]
  run lm-pack verify --help
  [ "$status" -eq 0 ]
  [[ "$output" == *"Usage: lm-pack verify DIR"* ]]
}

@test "pack: a usage error exits 2" {
  run lm-pack --no-such-option -o x "$FIX/corpus.tok"
  [ "$status" -eq 2 ]
  run lm-pack "$FIX/corpus.tok"
  [ "$status" -eq 2 ]
  [[ "$output" == *"-o DIR"* ]]
  run lm-pack -o x --level 99 "$FIX/corpus.tok"
  [ "$status" -eq 2 ]
  run lm-pack -o x --val-fraction 0.1 --val-docs 2 "$FIX/corpus.tok"
  [ "$status" -eq 2 ]
  # an unsigned option must not wrap -1 round to 2^64-1
  run lm-pack -o x --seed -1 "$FIX/corpus.tok"
  [ "$status" -eq 2 ]
  [[ "$output" == *"'--seed'"*"non-negative"* ]]
  run lm-pack -o x --seed=-1 "$FIX/corpus.tok"
  [ "$status" -eq 2 ]
  [ ! -e x ]
  # A bad count names its option.
  for opt in --block-tokens --shard-tokens --val-docs; do
    for v in -5 99999999999999999999 10x; do
      run --separate-stderr lm-pack -o x "$opt" "$v" "$FIX/corpus.tok"
      [ "$status" -eq 2 ]
      [[ "$stderr" == "lm-pack: error: $opt: bad number '$v'"* ]] || { echo "$stderr"; false; }
    done
  done
  [ ! -e x ]
}

@test "pack: --val-docs takes k, M, G like every count" {
  lm-pack -o a --val-docs 1k -q "$FIX/corpus.tok"
  lm-pack -o b --val-docs 1000 -q "$FIX/corpus.tok"
  [ "$(lm-pack inspect a | grep identity)" = "$(lm-pack inspect b | grep identity)" ]
}

@test "pack: --shard-tokens below --block-tokens warns once and still packs" {
  run --separate-stderr lm-pack -o x -q --shard-tokens 100 --block-tokens 1000 "$FIX/corpus.tok"
  [ "$status" -eq 0 ]
  [ "$(printf '%s\n' "$stderr" | grep -c 'warning: --shard-tokens 100 is less than --block-tokens 1000')" -eq 1 ]
  lm-pack verify x >/dev/null
  # A small --shard-tokens alone (the default block) is common: no warning.
  run --separate-stderr lm-pack -o y -q --shard-tokens 100 "$FIX/corpus.tok"
  [ "$status" -eq 0 ]
  [ -z "$stderr" ]
}

@test "pack: an input of streams without tokens is named" {
  python3 - "$FIX/doc0.tok" none.tok <<'EOF'
import ctypes, struct, sys
xx = ctypes.CDLL("libxxhash.so.0")
xx.XXH3_64bits.restype = ctypes.c_uint64
xx.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
end = struct.pack("<IQ", 0, 0)
end += struct.pack("<Q", xx.XXH3_64bits(end, len(end)))
open(sys.argv[2], "wb").write(open(sys.argv[1], "rb").read(32) + end)
EOF
  run lm-pack -o x <none.tok
  [ "$status" -eq 1 ]
  [ "$output" = "lm-pack: error: <stdin>: empty input: no tokens to pack" ]
  run lm-pack -o x none.tok none.tok
  [ "$status" -eq 1 ]
  [ "$output" = "lm-pack: error: none.tok and 1 more input: empty input: no tokens to pack" ]
  [ ! -e x ]
}

@test "pack: stray bytes after a stream are named with their offset" {
  size=$(stat -c %s "$FIX/doc0.tok")
  { cat "$FIX/doc0.tok"; printf 'abc'; } >stray.tok
  run lm-pack -o x stray.tok
  [ "$status" -eq 1 ]
  [ "$output" = "lm-pack: error: stray.tok: 3 trailing bytes after the end of the token stream at byte $size (too few for another stream's 32-byte header)" ]
  [ ! -e x ]
}

@test "pack: verify, inspect and cat of a file that is not a directory" {
  echo hi >afile
  for cmd in verify inspect cat; do
    run lm-pack $cmd afile
    [ "$status" -eq 1 ]
    [ "$output" = "lm-pack: error: afile: not a directory" ]
  done
}

@test "pack: stdin to shards, verify, and cat | decode gives back the text" {
  lm-tokenize --vocab "$FIX/tok.bpe" "$FIX"/doc?.txt | lm-pack -o shards/ --shard-tokens 2k --block-tokens 256 -q
  [ -f shards/manifest.json ]
  run lm-pack verify shards
  [ "$status" -eq 0 ]
  [[ "$output" == "shards: OK: "*" shards, "*" tokens, 8 documents, "* ]]
  lm-pack cat shards | lm-tokenize decode --vocab "$FIX/tok.bpe" >back.txt
  cmp back.txt "$FIX/corpus.txt"
}

@test "pack: inspect shows counts, shards and the compression ratio" {
  lm-pack -o shards --shard-tokens 1500 -q "$FIX/corpus.tok"
  run lm-pack inspect shards
  [ "$status" -eq 0 ]
  [[ "$output" == *"vocabulary:   300 ids"* ]]
  [[ "$output" == *"16-bit tokens"* ]]
  [[ "$output" == *"train: "*" 8 documents"* ]]
  [[ "$output" == *"ratio"* ]]
  [ "$(printf '%s\n' "$output" | grep -c ' train .*\.lms$')" -ge 2 ]
  run lm-pack inspect shards --json
  [ "$status" -eq 0 ]
  python3 -c 'import json,sys; m=json.loads(sys.argv[1]); assert m["format"]=="lm-dataset" and m["version"]==1' "$output"
}

@test "pack: short documents stay whole in one split, chosen by the seed" {
  # One document per line: 600 of about 40 tokens, all under 1024.
  lm-tokenize --vocab "$FIX/tok.bpe" --lines "$FIX/corpus.txt" >lines.tok
  for d in 0 1 2 3 4 5 6 7; do lm-tokenize --vocab "$FIX/tok.bpe" --lines "$FIX/doc$d.txt" >"l$d.tok"; done
  lm-pack -o a --val-fraction 0.4 --seed 3 -q lines.tok
  lm-pack -o b --val-fraction 0.4 --seed 3 -j 2 --block-tokens 100 -q l?.tok
  run lm-pack inspect a
  train_docs=$(printf '%s\n' "$output" | awk '$1=="train:" {print $4}')
  val_docs=$(printf '%s\n' "$output" | awk '$1=="val:" {print $4}')
  [ $((train_docs + val_docs)) -eq 600 ]
  [ "$val_docs" -ge 180 ] && [ "$val_docs" -le 300 ]
  # Each line decodes whole in one split.
  lm-pack cat a --split val | lm-tokenize decode --vocab "$FIX/tok.bpe" --lines >val.txt
  lm-pack cat a --split train | lm-tokenize decode --vocab "$FIX/tok.bpe" --lines >train.txt
  sort val.txt train.txt | cmp - <(sort "$FIX/corpus.txt")
  # Same seed, same input (as one stream or eight, another block size): same split.
  lm-pack cat b --split val | lm-tokenize decode --vocab "$FIX/tok.bpe" --lines | cmp - val.txt
  # Without --split, cat merges the splits back into the input's order.
  lm-pack cat a | lm-tokenize decode --vocab "$FIX/tok.bpe" --lines | cmp - "$FIX/corpus.txt"
  lm-pack -o c --val-fraction 0.4 --seed 4 -q lines.tok
  lm-pack cat c --split val | lm-tokenize decode --vocab "$FIX/tok.bpe" --lines >val4.txt
  run cmp -s val4.txt val.txt
  [ "$status" -ne 0 ]  # another seed, another split
}

@test "pack: a document over 1024 tokens gives its last F of the tokens to val" {
  # The eight fixture documents have 1,600 to 4,500 tokens each.
  run --separate-stderr lm-pack -o a --val-fraction 0.4 --seed 3 "$FIX/corpus.tok"
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"val: "*" 8 documents (100.00%, 8 of them the tails of documents longer than 1024 tokens)"* ]]
  # The tail of each: round(0.4 n) of its n tokens (end-of-text included), whatever the seed.
  want=$(for d in 0 1 2 3 4 5 6 7; do lm-tokenize stats --vocab "$FIX/tok.bpe" "$FIX/doc$d.txt"; done |
    awk '$1 == "tokens" { n = $2 + 1; v += int(0.4 * n + 0.5) } END { print v }')
  run lm-pack inspect a
  [ "$(printf '%s\n' "$output" | awk '$1=="val:" {print $2}')" -eq "$want" ]
  lm-pack -o b --val-fraction 0.4 --seed 4 -q "$FIX/corpus.tok"
  lm-pack cat a --split val | cmp - <(lm-pack cat b --split val)
  # Heads in train, tails in val: each document's first line in train, its last in val
  # (a head ends mid-line, so the next head runs on: the lines are found as parts of lines).
  lm-pack cat a --split val | lm-tokenize decode --vocab "$FIX/tok.bpe" >val.txt
  lm-pack cat a --split train | lm-tokenize decode --vocab "$FIX/tok.bpe" >train.txt
  for d in 0 1 2 3 4 5 6 7; do
    grep -qF "$(head -n1 "$FIX/doc$d.txt")" train.txt
    grep -qF "$(tail -n1 "$FIX/doc$d.txt")" val.txt
  done
  lm-pack verify a >/dev/null
  lm-pack cat a | lm-tokenize decode --vocab "$FIX/tok.bpe" | cmp - "$FIX/corpus.txt"
}

@test "pack: cat gives back the input order across splits, shards and appends" {
  lm-tokenize --vocab "$FIX/tok.bpe" --lines "$FIX/corpus.txt" >lines.tok
  lm-pack -o ds --val-fraction 0.3 --seed 9 --shard-tokens 500 --block-tokens 64 -q lines.tok
  run lm-pack inspect ds
  [[ "$output" != *"val:          0 tokens"* ]]
  lm-pack cat ds --split train >train.tok
  lm-pack cat ds >all.tok
  run cmp -s train.tok all.tok
  [ "$status" -ne 0 ]
  lm-pack cat ds | lm-tokenize decode --vocab "$FIX/tok.bpe" >back.txt
  lm-tokenize decode --vocab "$FIX/tok.bpe" <lines.tok | cmp - back.txt
  # A second run appended: its documents follow the first run's.
  lm-pack -o ds --append --val-fraction 0.5 --seed 1 -q "$FIX/doc3.tok" "$FIX/doc5.tok"
  lm-pack cat ds | lm-tokenize decode --vocab "$FIX/tok.bpe" >back2.txt
  (cat back.txt "$FIX/doc3.txt" "$FIX/doc5.txt") | cmp - back2.txt
  # "writer" is optional in a shard entry: the file name carries it too.
  lm-pack cat ds >before.tok
  python3 - ds/manifest.json <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
for e in m["shards"]:
    del e["writer"]
json.dump(m, open(sys.argv[1], "w"))
EOF
  lm-pack verify ds >/dev/null
  lm-pack cat ds | cmp - before.tok
  # A "writer" that contradicts the file name is corruption.
  python3 - ds/manifest.json <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
m["shards"][0]["writer"] = "00000000000000aa"
json.dump(m, open(sys.argv[1], "w"))
EOF
  for cmd in verify inspect cat; do
    run lm-pack $cmd ds
    [ "$status" -eq 1 ]
    [[ "$output" == *"ds/manifest.json: shards[0]: \"writer\" is 00000000000000aa but the file name"* ]]
  done
}

@test "pack: --val-docs holds out the first documents" {
  lm-pack -o shards --val-docs 2 -q "$FIX/corpus.tok"
  run lm-pack inspect shards
  [[ "$output" == *"val: "*" 2 documents, 1 shards"* ]]
  lm-pack cat shards --split val | lm-tokenize decode --vocab "$FIX/tok.bpe" >val.txt
  cat "$FIX/doc0.txt" "$FIX/doc1.txt" | cmp - val.txt
}

@test "pack: --level 0 stores raw tokens that verify and cat read" {
  lm-pack -o raw --level 0 --block-tokens 1024 -q "$FIX/corpus.tok"
  lm-pack verify raw
  run lm-pack inspect raw
  [[ "$output" =~ ratio\ 0\.9[0-9] ]]  # raw tokens plus header and index
  lm-pack cat raw | lm-tokenize decode --vocab "$FIX/tok.bpe" | cmp - "$FIX/corpus.txt"
}

@test "pack: concatenated streams and several files are one input" {
  cat "$FIX/doc0.tok" "$FIX/doc1.tok" | lm-pack -o a -q
  lm-pack -o b -q "$FIX/doc0.tok" - <"$FIX/doc1.tok"
  cat "$FIX/doc0.txt" "$FIX/doc1.txt" >want.txt
  lm-pack cat a | lm-tokenize decode --vocab "$FIX/tok.bpe" | cmp - want.txt
  lm-pack cat b | lm-tokenize decode --vocab "$FIX/tok.bpe" | cmp - want.txt
}

@test "pack: output does not depend on -j" {
  lm-pack -o a -j 1 --block-tokens 128 -q "$FIX/corpus.tok"
  lm-pack -o b -j 2 --block-tokens 128 -q "$FIX/corpus.tok"
  run lm-pack inspect a
  ida=$(inspect_field identity)
  run lm-pack inspect b
  [ "$(inspect_field identity)" = "$ida" ]
}

@test "pack: cat --shard N and -o FILE" {
  lm-pack -o shards --shard-tokens 1000 -q "$FIX/corpus.tok"
  lm-pack cat shards --shard 0 -o s0.tok
  lm-pack cat shards --shard 1 -o s1.tok
  cat s0.tok s1.tok | lm-pack -o two -q
  run lm-pack inspect two
  [[ "$output" == *"total:        2000 tokens"* ]]
  run lm-pack cat shards --shard 999
  [ "$status" -eq 2 ]
}

@test "pack: verify warns about files a killed writer left" {
  lm-pack -o ds -q "$FIX/doc0.tok"
  run --separate-stderr lm-pack verify ds
  [ "$status" -eq 0 ]
  [ -z "$stderr" ]
  touch ds/.train-0123456789abcdef-000000.lms.tmp
  run --separate-stderr lm-pack verify ds
  [ "$status" -eq 0 ]
  [[ "$output" == "ds: OK: 1 shards, "* ]]
  [[ "$stderr" == *"1 file (0 bytes) not in the manifest, left by killed lm-pack runs: lm-pack clean removes them"* ]]
}

@test "pack: temporaries are named as docs/cli.md and shard.md say" {
  # A complete stream, then a pause before the input ends: the shard is being
  # written, under .NAME.tmp.
  { cat "$FIX/doc0.tok"; sleep 2; } | lm-pack -o ds -q &
  pid=$!
  sleep 1
  ls -a ds >during.txt
  wait "$pid"
  grep -Eq '^\.train-[0-9a-f]{16}-000000\.lms\.tmp$' during.txt || { cat during.txt; false; }
  # A file output (here lm-tokenize -o) is .NAME.tmp.PID.RANDOM beside it.
  { cat "$FIX/doc0.txt"; sleep 2; } | lm-tokenize encode --vocab "$FIX/tok.bpe" -o out.tok &
  pid=$!
  sleep 1
  ls -a >during.txt
  wait "$pid"
  grep -Eq "^\.out\.tok\.tmp\.$pid\.[0-9a-f]{8}\$" during.txt || { cat during.txt; false; }
  [ -s out.tok ]
}
