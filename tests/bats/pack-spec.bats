#!/usr/bin/env bats
# lm-pack's output read by an independent reader written from
# docs/formats/shard.md and manifest.md alone (tests/python/lmspec.py, with
# the reference XXH3 and zstd libraries through ctypes), and the split rule
# recomputed.

load pack_helpers
load spec_helpers

setup_file() { pack_fixture; }
setup() {
  need_tokenize
  spec_setup
  python3 -c 'import ctypes; ctypes.CDLL("libzstd.so.1")' 2>/dev/null ||
    skip "libzstd.so.1 not loadable from Python"
}

@test "spec: an independent reader reads zstd shards and finds the input" {
  lm-pack -o ds --shard-tokens 3000 --block-tokens 500 -q "$FIX/corpus.tok"
  run python3 "$SPEC" dataset-read ds "$FIX/corpus.tok"
  [ "$status" -eq 0 ]
  train=$(lm-pack inspect ds | awk '$1=="train:" {print $2}')
  [ "${lines[0]}" = "train $train 8" ]
  [ "${lines[2]}" = "matches" ]
}

@test "spec: an independent reader reads --level 0 shards in place" {
  lm-pack -o raw --level 0 --shard-tokens 5000 --block-tokens 100 -q "$FIX/corpus.tok"
  run python3 "$SPEC" dataset-read raw "$FIX/corpus.tok"
  [ "$status" -eq 0 ]
  [ "${lines[2]}" = "matches" ]
}

@test "spec: the train/val split follows manifest.md's rule" {
  # Short documents (lines, whole by hash) and long ones (over 1024 tokens:
  # their tail to val), in one input of two concatenated streams.
  lm-tokenize --vocab "$FIX/tok.bpe" --lines "$FIX/doc1.txt" "$FIX/doc2.txt" >lines.tok
  cat lines.tok "$FIX/corpus.tok" >mixed.tok
  for seed in 11 12 13; do
    rm -rf ds
    lm-pack -o ds --val-fraction 0.3 --seed "$seed" --shard-tokens 5000 --block-tokens 512 -q mixed.tok
    run python3 "$SPEC" dataset-read ds mixed.tok --split-rule 0.3 "$seed"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "${lines[2]}" = "matches" ]
    [[ "${lines[1]}" != "val 0 0" ]]
  done
  # The manifest records the length past which documents were cut.
  grep -q '"val_cut": 1024' ds/manifest.json
}

@test "spec: 32-bit tokens of a large vocabulary (cl100k)" {
  tk="$BATS_TEST_DIRNAME/../../../shared/corpora/tokenizers/cl100k_base.tiktoken"
  [ -f "$tk" ] || skip "../shared/corpora absent"
  lm-tokenize import --tiktoken "$tk" --pattern cl100k -o cl.bpe -q
  lm-tokenize --vocab cl.bpe "$FIX"/doc?.txt >cl.tok
  lm-pack -o ds --block-tokens 300 -q cl.tok
  run lm-pack inspect ds
  [[ "$output" == *"32-bit tokens"* ]]
  run python3 "$SPEC" dataset-read ds cl.tok
  [ "$status" -eq 0 ]
  [ "${lines[2]}" = "matches" ]
  lm-pack cat ds | lm-tokenize decode --vocab cl.bpe | cmp - "$FIX/corpus.txt"
}
