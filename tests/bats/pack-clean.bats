#!/usr/bin/env bats
# lm-pack clean: removes what writers killed with SIGKILL left, and nothing of
# the dataset, of running writers, or not named by lm-pack.

load pack_helpers
bats_require_minimum_version 1.5.0

setup_file() { pack_fixture; }
setup() {
  need_tokenize
  cd "$BATS_TEST_TMPDIR"
}

# start_writer DIR [OPTIONS...]: an lm-pack --append whose input stalls after
# several shards (fd 7 holds the input open; Bats owns fd 3). Sets pid.
start_writer() {
  local dir=$1
  shift
  rm -f pipe
  mkfifo pipe
  lm-pack -o "$dir" --append --shard-tokens 500 "$@" pipe 2>>err.txt &
  pid=$!
  exec 7>pipe
  cat "$FIX"/doc[0-6].tok >&7
  head -c 100 "$FIX/doc7.tok" >&7
  for i in $(seq 100); do
    [ "$(ls -a "$dir" 2>/dev/null | grep -c 'train-.*lms')" -ge 5 ] && return 0
    sleep 0.1
  done
  ls -a "$dir"
  cat err.txt
  false
}

kill_writer() {
  kill -KILL "$pid"
  exec 7>&-
  { wait "$pid"; } 2>/dev/null || true  # (bash's "Killed" report)
}

@test "clean: a whole dataset: nothing removed, nothing said on stdout" {
  lm-pack -o ds -q --shard-tokens 500 "$FIX/corpus.tok"
  before=$(snapshot ds)
  run --separate-stderr lm-pack clean ds
  [ "$status" -eq 0 ]
  [ -z "$output" ]
  [[ "$stderr" == "lm-pack: ds: removed 0 files (0 bytes) of 0 writers that are gone" ]]
  [ "$(snapshot ds)" = "$before" ]
  run --separate-stderr lm-pack clean -q ds
  [ "$status" -eq 0 ]
  [ -z "$stderr" ]
}

@test "clean: a writer killed with SIGKILL: verify warns, clean -n lists, clean removes exactly its files" {
  lm-pack -o ds -q "$FIX/doc0.tok"
  before=$(snapshot ds)
  base=$(ls -A ds | sort)
  start_writer ds
  kill_writer
  left=$(ls -A ds | sort | comm -13 <(echo "$base") -)
  [ "$(echo "$left" | wc -l)" -ge 6 ]
  echo "$left" | grep -q '^\.writer-[0-9a-f]\{16\}\.lock$'
  run --separate-stderr lm-pack verify ds
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"not in the manifest, left by killed lm-pack runs: lm-pack clean removes them"* ]]
  # A dry run names every file and removes none.
  run --separate-stderr lm-pack clean -n ds
  [ "$status" -eq 0 ]
  [ "$(printf '%s\n' "$output" | sed 's|^ds/||' | sort)" = "$left" ]
  [[ "$stderr" == *"would remove"*"of 1 writer that is gone (dry run)"* ]]
  [ "$(ls -A ds | sort | comm -13 <(echo "$base") -)" = "$left" ]
  # The clean removes the same files, and the dataset is as it was.
  run --separate-stderr lm-pack clean ds
  [ "$status" -eq 0 ]
  [ "$(printf '%s\n' "$output" | sed 's|^ds/||' | sort)" = "$left" ]
  [ "$(snapshot ds | grep -v ' ./.lock$')" = "$(echo "$before" | grep -v ' ./.lock$')" ]
  run --separate-stderr lm-pack verify ds
  [ "$status" -eq 0 ]
  [ -z "$stderr" ]
  run --separate-stderr lm-pack clean ds
  [ -z "$output" ]
}

@test "clean: a running writer's files are kept, and its run commits whole" {
  lm-pack -o ds -q "$FIX/doc0.tok"
  start_writer ds
  mine=$(cd ds && ls -A | grep -E '^(\.?train-|\.writer-)')
  run --separate-stderr lm-pack clean ds
  [ "$status" -eq 0 ]
  [ -z "$output" ]
  [[ "$stderr" == *"kept "*" files of 1 writer still running"* ]]
  # (it may have written more since: its input was still in the pipe)
  for f in $mine; do
    [ -e "ds/$f" ] || [[ "$f" == .*.tmp ]] || { echo "removed: $f"; false; }
  done
  # The writer finishes its input and commits every shard it had written.
  tail -c +101 "$FIX/doc7.tok" >&7
  exec 7>&-
  wait "$pid"
  lm-pack verify ds
  lm-pack cat ds | lm-tokenize decode --vocab "$FIX/tok.bpe" | sort >all.txt
  cat "$FIX"/doc0.txt "$FIX"/doc?.txt | sort | cmp - all.txt
  [ -z "$(find ds -name '.writer-*')" ]
}

@test "clean: concurrent with parallel writers, it never removes a shard they commit" {
  lm-pack -o ds -q "$FIX/doc0.tok"
  ( for i in $(seq 40); do lm-pack clean -q ds >/dev/null || exit 1; done ) &
  cleaner=$!
  ls "$FIX"/doc?.tok | xargs -P8 -I{} lm-pack -o ds --append --shard-tokens 200 -j 1 -q {}
  wait "$cleaner"
  lm-pack verify ds
  lm-pack cat ds | lm-tokenize decode --vocab "$FIX/tok.bpe" | sort >all.txt
  cat "$FIX"/doc0.txt "$FIX"/doc?.txt | sort | cmp - all.txt
}

@test "clean: a first writer killed before any manifest existed" {
  start_writer fresh
  kill_writer
  [ ! -e fresh/manifest.json ]
  run --separate-stderr lm-pack clean fresh
  [ "$status" -eq 0 ]
  [ -z "$(ls -A fresh | grep -v '^\.lock$')" ]
}

@test "clean: what lm-pack does not name, and what the manifest lists, stay" {
  lm-pack -o ds -q "$FIX/doc0.tok"
  start_writer ds
  kill_writer
  touch ds/notes.lms ds/train-xyz-000000.lms ds/.other.tmp ds/README
  touch ds/.writer-0123.lock ds/train-0123456789ABCDEF-000000.lms
  # A manifest temporary a commit killed with SIGKILL left.
  cp ds/manifest.json ds/.manifest.json.tmp.12345.abcdef
  run --separate-stderr lm-pack clean ds
  [ "$status" -eq 0 ]
  [[ "$output" == *"ds/.manifest.json.tmp.12345.abcdef"* ]]
  [[ "$stderr" == *"kept 3 .lms files not in the manifest and not named by lm-pack"* ]]
  for f in notes.lms train-xyz-000000.lms .other.tmp README .writer-0123.lock \
    train-0123456789ABCDEF-000000.lms manifest.json; do
    [ -e "ds/$f" ] || { echo "removed: $f"; false; }
  done
  [ -z "$(ls -A ds | grep -E '^\.?train-[0-9a-f]{16}-' | grep -v "$(python3 -c 'import json; print("\\|".join(s["file"] for s in json.load(open("ds/manifest.json"))["shards"]))')")" ]
  lm-pack verify ds >/dev/null
}

@test "clean: errors: no directory, not a directory, a manifest it cannot read" {
  run lm-pack clean missing
  [ "$status" -eq 1 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == "lm-pack: error: missing: no such directory" ]]
  touch file
  run lm-pack clean file
  [ "$status" -eq 1 ]
  [[ "$output" == "lm-pack: error: file: not a directory" ]]
  run lm-pack clean
  [ "$status" -eq 2 ]
  lm-pack -o ds -q "$FIX/doc0.tok"
  start_writer ds
  kill_writer
  before=$(snapshot ds)
  printf '{' >>ds/manifest.json
  before=$(snapshot ds)
  run lm-pack clean ds
  [ "$status" -eq 1 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == "lm-pack: error: ds/manifest.json: not valid JSON"* ]]
  [ "$(snapshot ds)" = "$before" ]
}

@test "clean: --help reads like a manual" {
  run lm-pack clean --help
  [ "$status" -eq 0 ]
  [[ "$output" == *"lm-pack clean DIR [-n] [-q]"* ]]
  [[ "$output" == *"EXIT STATUS"* ]]
  run lm-pack --help
  [[ "$output" == *"lm-pack clean DIR"* ]]
}
