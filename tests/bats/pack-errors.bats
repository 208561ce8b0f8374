#!/usr/bin/env bats
# lm-pack: every bad input of the issue gets a one-line error naming the file,
# exit 1, and leaves the dataset as it was.

load pack_helpers

setup_file() { pack_fixture; }
setup() {
  need_tokenize
  cd "$BATS_TEST_TMPDIR"
  lm-pack -o ds --shard-tokens 4000 --block-tokens 256 -q "$FIX/doc0.tok" "$FIX/doc1.tok"
  before=$(snapshot ds)
}

# The dataset is exactly as setup left it, and still verifies.
unchanged() {
  [ "$(snapshot ds)" = "$before" ]
  lm-pack verify ds >/dev/null
}

one_line_error() {
  [ "$status" -eq 1 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "${lines[0]}" == "lm-pack: error: "* ]]
}

@test "errors: text instead of a token stream (wrong magic)" {
  run lm-pack -o ds --append "$FIX/doc2.txt"
  one_line_error || { echo "status $status: $output"; false; }
  [[ "$output" == *"$FIX/doc2.txt"*"bad magic"* ]]
  unchanged
}

@test "errors: a token stream of an unknown version" {
  python3 - "$FIX/doc2.tok" v2.tok <<'EOF'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[4] = 2
open(sys.argv[2], "wb").write(b)
EOF
  run lm-pack -o ds --append v2.tok
  one_line_error || { echo "status $status: $output"; false; }
  [[ "$output" == *"v2.tok"*"version 2"* ]]
  unchanged
}

@test "errors: stdin closed is a read error, not an empty or a wrong input" {
  # Closed inside the child: bats's own pipe would otherwise take fd 0.
  run bash -c 'lm-pack -o ds --append <&-'
  one_line_error || { echo "status $status: $output"; false; }
  [[ "$output" == *"<stdin>: read failed"* ]]
  unchanged
}

@test "errors: empty input" {
  run lm-pack -o ds --append </dev/null
  one_line_error || { echo "status $status: $output"; false; }
  [[ "$output" == *"empty input"* ]]
  unchanged
  run lm-pack -o fresh </dev/null
  [ "$status" -eq 1 ]
  [ ! -e fresh ]
}

@test "errors: a truncated token stream adds nothing" {
  size=$(stat -c %s "$FIX/corpus.tok")
  head -c $((size - 30)) "$FIX/corpus.tok" >cut.tok
  run lm-pack -o ds --append --shard-tokens 1000 cut.tok
  one_line_error || { echo "status $status: $output"; false; }
  [[ "$output" == *"cut.tok"*"truncated"* ]]
  unchanged
  run lm-pack -o fresh --shard-tokens 1000 cut.tok
  [ "$status" -eq 1 ]
  [ ! -e fresh ]
}

@test "errors: a stream of another vocabulary is refused by --append" {
  lm-tokenize --vocab "$FIX/other.bpe" "$FIX/doc2.txt" >other.tok
  run lm-pack -o ds --append other.tok
  one_line_error || { echo "status $status: $output"; false; }
  [[ "$output" == *"ds/manifest.json"*"vocabulary"* ]]
  unchanged
  # Streams of two vocabularies in one run are refused too.
  run lm-pack -o mixed "$FIX/doc2.tok" other.tok
  one_line_error || { echo "status $status: $output"; false; }
  [[ "$output" == *"other.tok"*"vocabulary"* ]]
  [ ! -e mixed ]  # the directory it made is gone too
}

@test "errors: packing into an existing dataset needs --append" {
  run lm-pack -o ds "$FIX/doc2.tok"
  one_line_error || { echo "status $status: $output"; false; }
  [[ "$output" == *"already holds a dataset"* ]]
  unchanged
}

@test "errors: a shard with the wrong magic or version" {
  shard=$(first_shard ds)
  printf 'XXXX' | dd of="$shard" bs=1 seek=0 conv=notrunc 2>/dev/null
  run lm-pack verify ds
  one_line_error || { echo "status $status: $output"; false; }
  [[ "$output" == *"$shard"*"bad magic"* ]]
  printf 'LMSH\x07' | dd of="$shard" bs=1 seek=0 conv=notrunc 2>/dev/null
  run lm-pack verify ds
  one_line_error || { echo "status $status: $output"; false; }
  [[ "$output" == *"$shard"*"version 7"* ]]
  run lm-pack cat ds
  [ "$status" -eq 1 ]
}

@test "errors: a truncated shard" {
  shard=$(first_shard ds)
  truncate -s -100 "$shard"
  run lm-pack verify ds
  one_line_error || { echo "status $status: $output"; false; }
  [[ "$output" == *"$shard"*"truncated"* ]]
  run lm-pack cat ds
  [ "$status" -eq 1 ]
  [[ "$output" == *"$shard"* ]]
}

@test "errors: a flipped bit in a block, the header, the index is named" {
  shard=$(first_shard ds)
  size=$(stat -c %s "$shard")
  cp "$shard" good.lms
  flip_bit "$shard" 70 2
  run lm-pack verify ds
  one_line_error || { echo "status $status: $output"; false; }
  [[ "$output" == *"$shard: block 0: checksum mismatch"* ]]
  run lm-pack cat ds
  [ "$status" -eq 1 ]
  [[ "$output" == *"$shard: block 0: checksum mismatch"* ]]
  for off in 17 $((size - 20)) $((size - 1)); do
    cp good.lms "$shard"
    flip_bit "$shard" "$off" 0
    run lm-pack verify ds
    one_line_error
    [[ "$output" == *"$shard"* ]]
  done
}

@test "errors: a manifest naming a missing file" {
  shard=$(first_shard ds)
  rm "$shard"
  run lm-pack verify ds
  one_line_error || { echo "status $status: $output"; false; }
  [[ "$output" == *"$shard"*"listed in ds/manifest.json"* ]]
  run lm-pack inspect ds
  [ "$status" -eq 0 ]
}

@test "errors: not a dataset directory" {
  mkdir empty
  run lm-pack verify empty
  one_line_error || { echo "status $status: $output"; false; }
  [[ "$output" == *"empty/manifest.json"* ]]
  run lm-pack inspect nowhere
  [ "$status" -eq 1 ]
}

@test "errors: disk full (file size limit) leaves the dataset as it was" {
  cat "$FIX"/doc?.tok "$FIX"/doc?.tok "$FIX"/doc?.tok >big.tok
  # bash's ulimit -f counts KiB and limits each file. A 40 KB shard does not fit:
  run bash -c 'ulimit -f 30; lm-pack -o ds --append --level 0 --shard-tokens 20000 big.tok'
  one_line_error || { echo "status $status: $output"; false; }
  [[ "$output" == *"ds/train-"*".lms: write failed: File too large"* ]]
  unchanged
  # Hundreds of small shards fit, then the manifest listing them does not:
  run bash -c 'ulimit -f 30; lm-pack -o ds --append --shard-tokens 300 big.tok'
  one_line_error || { echo "status $status: $output"; false; }
  [[ "$output" == *"ds/manifest.json: write failed: File too large"* ]]
  unchanged
  [ -z "$(find ds -name '.*tmp*')" ]
  run bash -c 'ulimit -f 30; lm-pack -o fresh --level 0 --shard-tokens 20000 big.tok'
  [ "$status" -eq 1 ]
  [ ! -e fresh ]
}

@test "errors: a write error on stdout is reported" {
  run lm-pack cat ds -o /dev/full/x
  [ "$status" -eq 1 ]
  run bash -c 'lm-pack cat ds >/dev/full'
  [ "$status" -eq 1 ]
  [[ "$output" == *"write failed"* ]]
}

@test "errors: cat -o naming the manifest or a shard of the dataset is refused" {
  shard=$(first_shard ds)
  ln -s ds/manifest.json link.json
  ln "$shard" hard.lms
  for o in ds/manifest.json "$shard" "ds/../$shard" link.json hard.lms; do
    run lm-pack cat ds -o "$o"
    one_line_error || { echo "-o $o: status $status: $output"; false; }
    [[ "$output" == *"$o: -o names a file of the dataset being read"* ]]
    unchanged
  done
  # --shard and --split read fewer files, but the dataset's files stay refused.
  run lm-pack cat ds --shard 0 -o ds/manifest.json
  one_line_error
  unchanged
  # A new file in the dataset directory is no input: allowed.
  lm-pack cat ds -o ds-copy.tok
  [ -s ds-copy.tok ]
  run lm-pack cat ds -o ds
  one_line_error || { echo "status $status: $output"; false; }
  [[ "$output" == *"ds: is a directory"* ]]
}

@test "errors: a shard or manifest that is not a regular file is named, never waited on" {
  shard=$(first_shard ds)
  mv "$shard" saved.lms
  for kind in fifo dir devzero; do
    case $kind in
      fifo) mkfifo "$shard" ;;
      dir) mkdir "$shard" ;;
      devzero) ln -s /dev/zero "$shard" ;;
    esac
    for cmd in verify "cat -o out.tok"; do
      run timeout 20 lm-pack $cmd ds
      one_line_error || { echo "$kind $cmd: status $status: $output"; false; }
      [[ "$output" == *"$shard: not a regular file"* ]]
    done
    rm -rf "$shard"
  done
  # A symbolic link to the shard itself is followed, as before.
  ln -s "$PWD/saved.lms" "$shard"
  lm-pack verify ds >/dev/null
  lm-pack cat ds >/dev/null
  rm "$shard"
  mv saved.lms "$shard"
  mv ds/manifest.json saved.json
  mkfifo ds/manifest.json
  for cmd in verify inspect "cat -o out.tok"; do
    run timeout 20 lm-pack $cmd ds
    one_line_error || { echo "$cmd: status $status: $output"; false; }
    [[ "$output" == *"ds/manifest.json: not a regular file"* ]]
  done
  rm ds/manifest.json
  mv saved.json ds/manifest.json
  unchanged
}

@test "errors: a shard whose end-of-text id differs from the manifest's says so" {
  python3 - ds/manifest.json <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["vocab"]["eot"] = 5
json.dump(m, open(sys.argv[1], "w"))
PY
  shard=$(first_shard ds)
  run lm-pack verify ds
  one_line_error || { echo "status $status: $output"; false; }
  [[ "$output" == *"$shard: shard's end-of-text id is "*" but the dataset's is 5" ]]
  run lm-pack cat ds -o out.tok
  one_line_error
  [[ "$output" == *"end-of-text id is "*" but the dataset's is 5" ]]
}

@test "errors: a document number at or past its writer's document count" {
  python3 - ds/manifest.json <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["writers"][0]["documents"] = 1
json.dump(m, open(sys.argv[1], "w"))
PY
  run lm-pack verify ds
  one_line_error || { echo "status $status: $output"; false; }
  [[ "$output" == *".lms: document number "*" is not below the 1 documents of its writer "* ]]
  run lm-pack cat ds -o out.tok
  one_line_error
  [[ "$output" == *"is not below the 1 documents"* ]]
}

@test "errors: a manifest with a NUL byte and more after its JSON is refused, not cut short" {
  # nlohmann's parser would stop at the NUL and read the manifest as whole.
  printf '\0{"more": 1}' >>ds/manifest.json
  for cmd in verify inspect cat; do
    run lm-pack $cmd ds
    one_line_error || { echo "$cmd: status $status: $output"; false; }
    [[ "$output" == *"ds/manifest.json: not valid JSON (a NUL byte at offset "* ]]
  done
}

@test "errors: inspect checks the manifest's counts, and its sums never wrap" {
  # inspect reads only the manifest, but counts no shard could hold are refused there too.
  python3 - ds/manifest.json 9223372036854775808 <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["shards"][0]["tokens"] = int(sys.argv[2])
json.dump(m, open(sys.argv[1], "w"))
PY
  run lm-pack inspect ds
  one_line_error || { echo "status $status: $output"; false; }
  [[ "$output" == *"ds/manifest.json: "*" 9223372036854775808 tokens, "*"cannot fit in its"* ]]
  # Counts that fit their sizes, whose raw size passes 2^64: printed exactly.
  python3 - ds/manifest.json <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
s = [m["shards"][0], dict(m["shards"][0], file="more.lms")]
s[1].pop("writer", None)
for e, split in zip(s, ["train", "val"]):
    e["split"], e["tokens"], e["documents"] = split, 6 * 10**18, 1
    e["blocks"] = -(-e["tokens"] // 4194304)
    e["bytes"] = 4 * 10**16
m["shards"] = s
json.dump(m, open(sys.argv[1], "w"))
PY
  run lm-pack inspect ds
  [ "$status" -eq 0 ]
  [[ "$output" == *"total:        12000000000000000000 tokens, 2 documents"* ]] || { echo "$output"; false; }
  [[ "$output" == *"80000000000000000 bytes on disk, 24000000000000000000 bytes as raw tokens: ratio 300.000"* ]]
  run lm-pack verify ds
  one_line_error || { echo "status $status: $output"; false; }
}
