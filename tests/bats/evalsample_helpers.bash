# evalsample_helpers.bash: fixtures shared by the lm-eval and lm-sample Bats
# tests: a small corpus, its vocabulary, a packed dataset with a val split, and
# a tiny model trained for a few steps with a checkpoint every 50 steps.

# make_corpus FILE: 80 short documents separated by "\n%\n", with some
# multi-byte UTF-8 (é, €, 日本) so that byte counts differ from characters.
make_corpus() {
  awk 'BEGIN {
    split("the quick brown fox jumps over a lazy dog while cats sleep near warm stones", w, " ");
    n = length(w);
    for (d = 0; d < 80; d++) {
      if (d > 0) printf "\n%%\n";
      printf "Story %d: ", d;
      for (i = 0; i < 40; i++) {
        printf "%s ", w[(d * 7 + i * i + i * 3) % n + 1];
        if (i % 13 == 5) printf "café €%d ", i;
        if (i % 17 == 9) printf "日本 ";
      }
      printf "the end.";
    }
  }' >"$1"
}

# make_fixture DIR: DIR/corpus.txt, DIR/tok.bpe, DIR/shards (with val), DIR/val.tok
# (the val documents as a token stream), DIR/run (steps 50, 100, 150).
make_fixture() {
  local d=$1
  mkdir -p "$d"
  make_corpus "$d/corpus.txt"
  lm-tokenize train --vocab-size 320 -o "$d/tok.bpe" "$d/corpus.txt" 2>/dev/null
  lm-tokenize encode --vocab "$d/tok.bpe" --doc-delim '\n%\n' "$d/corpus.txt" >"$d/all.tok"
  lm-pack -q -o "$d/shards" --val-fraction 0.25 --seed 1 "$d/all.tok"
  lm-train --data "$d/shards" --vocab "$d/tok.bpe" --out "$d/run" --preset tiny --context 64 \
    --steps 150 --ckpt-every 50 --keep 0 --micro-batch 4 --val-tokens 0 --seed 1 --device cpu \
    --threads 1 --log-every 1000 >/dev/null 2>"$d/train.log"
}

# The fixture for this Bats file, built once in setup_file.
fixture_setup() {
  FIX="$BATS_FILE_TMPDIR/fix"
  export FIX
  make_fixture "$FIX" || {
    cat "$FIX/train.log" >&2
    return 1
  }
}

# json_get FIELD: the field of the one JSON object on stdin.
json_get() {
  python3 -c 'import json,sys; v=json.loads(sys.stdin.readline())[sys.argv[1]]; print("null" if v is None else v)' "$1"
}
