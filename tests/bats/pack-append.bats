#!/usr/bin/env bats
# lm-pack --append: parallel writers (xargs -P8) never lose a manifest entry;
# an interrupted writer leaves nothing behind.

load pack_helpers
bats_require_minimum_version 1.5.0

setup_file() { pack_fixture; }
setup() {
  need_tokenize
  cd "$BATS_TEST_TMPDIR"
}

@test "append: 8 parallel tokenize | pack --append writers, every entry kept" {
  ls "$FIX"/doc?.txt | xargs -P8 -I{} sh -c \
    'lm-tokenize --vocab "$1/tok.bpe" "$2" | lm-pack -o shards --append --shard-tokens 700 -j 1 -q' _ "$FIX" {}
  run lm-pack verify shards
  [ "$status" -eq 0 ]
  [[ "$output" == *" 8 documents,"* ]]
  # The same tokens as one sequential run, file by file in some order.
  lm-pack -o one -q "$FIX/corpus.tok"
  run lm-pack inspect one
  want=$(printf '%s\n' "$output" | awk '$1=="total:" {print $2}')
  run lm-pack inspect shards
  [ "$(printf '%s\n' "$output" | awk '$1=="total:" {print $2}')" = "$want" ]
  [[ "$output" == *"writers:      8"* ]]
  # Every shard file in the directory is in the manifest, and no temporary is left.
  listed=$(python3 -c 'import json; print(len(json.load(open("shards/manifest.json"))["shards"]))')
  [ "$(ls shards/*.lms | wc -l)" -eq "$listed" ]
  [ -z "$(find shards -name '.*tmp*')" ]
  # Each document decodes whole.
  lm-pack cat shards | lm-tokenize decode --vocab "$FIX/tok.bpe" | sort >all.txt
  sort "$FIX/corpus.txt" | cmp - all.txt
}

@test "append: a writer killed mid-input leaves the dataset as it was" {
  lm-pack -o ds -q "$FIX/doc0.tok"
  before=$(snapshot ds)
  # A stream that stalls after some shards were written (no end frame yet).
  # (fd 7: Bats owns fd 3.)
  mkfifo pipe
  lm-pack -o ds --append --shard-tokens 500 pipe 2>err.txt &
  pid=$!
  exec 7>pipe
  cat "$FIX"/doc[0-6].tok >&7
  head -c 100 "$FIX/doc7.tok" >&7
  for i in $(seq 50); do
    [ "$(ls ds | grep -c '^train-')" -ge 5 ] && break
    sleep 0.1
  done
  [ "$(ls ds | grep -c '^train-')" -ge 5 ] || { ls -a ds; cat err.txt; false; }  # shards were being written
  kill -TERM "$pid"
  exec 7>&-
  rc=0
  wait "$pid" || rc=$?
  [ "$rc" -eq 143 ]  # died of SIGTERM, after its cleanup
  [ "$(snapshot ds)" = "$before" ]
  [ -z "$(find ds -name '.*tmp*')" ]
  lm-pack verify ds
}

@test "append: a writer killed while packing into a new directory leaves nothing" {
  mkfifo pipe2
  lm-pack -o fresh --shard-tokens 500 pipe2 2>err.txt &
  pid=$!
  exec 7>pipe2
  cat "$FIX"/doc[0-6].tok >&7
  for i in $(seq 50); do
    [ "$(ls fresh 2>/dev/null | grep -c '^train-')" -ge 3 ] && break
    sleep 0.1
  done
  [ "$(ls fresh | grep -c '^train-')" -ge 3 ]
  kill -INT "$pid"
  exec 7>&-
  rc=0
  wait "$pid" || rc=$?
  [ "$rc" -eq 130 ]  # died of SIGINT, after its cleanup
  [ ! -e fresh ]
}

@test "append: --label is committed with the run's shards; inspect --labels lists them" {
  lm-pack -o ds -q --label "$FIX/doc0.txt" "$FIX/doc0.tok"
  lm-pack -o ds -q --append "$FIX/doc1.tok"
  lm-pack -o ds -q --append --label 'part "2" é' "$FIX/doc2.tok"
  run --separate-stderr lm-pack inspect ds --labels
  [ "$status" -eq 0 ]
  [ "$output" = "$FIX/doc0.txt"$'\n''part "2" é' ]
  run lm-pack inspect ds
  [[ "$output" == *"writers:      3"* ]]
  # A failed run records nothing: its label is not in the manifest.
  head -c 100 "$FIX/doc3.tok" >cut.tok
  run lm-pack -o ds -q --append --label doc3 cut.tok
  [ "$status" -eq 1 ]
  [ "$(lm-pack inspect ds --labels | wc -l)" -eq 2 ]
}

@test "append: a label of more than one line, and --json with --labels, are usage errors" {
  run --separate-stderr lm-pack -o ds -q --label $'a\nb' "$FIX/doc0.tok"
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"--label must be one line"* ]]
  [ ! -e ds ]
  # Not UTF-8 (the manifest is JSON): refused before any work, nothing made.
  run --separate-stderr lm-pack -o ds -q --label "$(printf 'caf\xe9.txt')" "$FIX/doc0.tok"
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"--label must be UTF-8"* ]]
  [ ! -e ds ]
  # An empty label could not be listed by inspect --labels.
  run --separate-stderr lm-pack -o ds -q --label "" "$FIX/doc0.tok"
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"--label must not be empty"* ]]
  [ ! -e ds ]
  run --separate-stderr lm-pack -o ds -q -j -1 "$FIX/doc0.tok"
  [ "$status" -eq 2 ]
  [ ! -e ds ]
  lm-pack -o ds -q "$FIX/doc0.tok"
  run --separate-stderr lm-pack inspect ds --json --labels
  [ "$status" -eq 2 ]
  # A dataset without labels lists none.
  run --separate-stderr lm-pack inspect ds --labels
  [ "$status" -eq 0 ]
  [ -z "$output" ]
}

@test "append: a writer that made DIR and failed does not pull it from under another" {
  # A makes DIR, then fails on a truncated stream and removes DIR (still
  # empty); B, which found DIR there, makes its first shard after that.
  ( (head -c 32 "$FIX/doc0.tok"; sleep 1; head -c 300 "$FIX/doc0.tok" | tail -c +33) |
    lm-pack -q -o nd --append --label A ) 2>/dev/null &
  a=$!
  sleep 0.3
  run --separate-stderr bash -c '(head -c 32 "$1"; sleep 2; tail -c +33 "$1") |
    lm-pack -q -o nd --append --label B' _ "$FIX/doc0.tok"
  wait "$a" || true
  [ "$status" -eq 0 ] || { echo "$stderr"; false; }
  [ "$(lm-pack inspect nd --labels)" = B ]
  lm-pack verify nd
}

@test "append: a writer waiting for another's lock says so, once (not with -q)" {
  lm-pack -o ds -q "$FIX/doc0.tok"
  flock ds/.lock sleep 2 &
  holder=$!
  sleep 0.5
  run --separate-stderr lm-pack -o ds --append "$FIX/doc1.tok"
  [ "$status" -eq 0 ]
  [ "$(printf '%s\n' "$stderr" | grep -c '^lm-pack: waiting for ds/.lock (another lm-pack is writing)$')" -eq 1 ]
  wait "$holder"
  flock ds/.lock sleep 2 &
  holder=$!
  sleep 0.5
  run --separate-stderr lm-pack -o ds --append -q "$FIX/doc2.tok"
  [ "$status" -eq 0 ]
  [ -z "$stderr" ]
  wait "$holder"
  # Without contention, nothing is said.
  run --separate-stderr lm-pack -o ds --append "$FIX/doc3.tok"
  [[ "$stderr" != *"waiting"* ]]
  lm-pack verify ds >/dev/null
}
