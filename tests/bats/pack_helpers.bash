# pack_helpers.bash: fixtures for the lm-pack Bats tests: a small corpus of
# several files, a 300-id vocabulary trained on it, and token streams.

# pack_fixture: sets FIX (shared by the tests of one file) holding
#   doc0.txt .. doc7.txt  eight files, each one document
#   corpus.txt            their concatenation
#   tok.bpe               a vocabulary trained on it (lm-tokenize train)
#   corpus.tok            all eight documents as one token stream
#   doc0.tok .. doc7.tok  one stream per file
#   other.bpe             a vocabulary of another size (for mismatches)
pack_fixture() {
  FIX=$BATS_FILE_TMPDIR/fix
  export FIX
  [ -e "$FIX/corpus.tok" ] && return 0
  command -v lm-tokenize >/dev/null || return 0
  mkdir -p "$FIX"
  for d in 0 1 2 3 4 5 6 7; do
    awk -v d="$d" 'BEGIN {
      split("the quick brown fox jumps over a lazy dog while cats sleep near warm stones and rivers", w, " ");
      n = length(w);
      for (l = 0; l < 40 + d * 10; l++) {
        printf "Line %d of part %d:", l, d;
        for (i = 0; i < 12; i++) printf " %s", w[(d * 5 + l * 3 + i * i) % n + 1];
        printf ".\n";
      }
    }' >"$FIX/doc$d.txt"
  done
  cat "$FIX"/doc?.txt >"$FIX/corpus.txt"
  lm-tokenize train --vocab-size 300 -o "$FIX/tok.bpe" "$FIX/corpus.txt" 2>/dev/null
  lm-tokenize train --vocab-size 280 -o "$FIX/other.bpe" "$FIX/corpus.txt" 2>/dev/null
  lm-tokenize --vocab "$FIX/tok.bpe" "$FIX"/doc?.txt >"$FIX/corpus.tok"
  for d in 0 1 2 3 4 5 6 7; do
    lm-tokenize --vocab "$FIX/tok.bpe" "$FIX/doc$d.txt" >"$FIX/doc$d.tok"
  done
}

need_tokenize() {
  command -v lm-tokenize >/dev/null || skip "lm-tokenize is not built yet (it makes the token streams)"
}

# snapshot DIR: the names, sizes and hashes of everything in DIR, to compare
# before and after a failing run.
snapshot() {
  (cd "$1" && find . -type f | sort | xargs -r sha256sum)
}

# field KEY: the value after "KEY:" in `lm-pack inspect` output ($output).
inspect_field() {
  printf '%s\n' "$output" | awk -v k="$1:" '$1 == k { print $2; exit }'
}

# first_shard DIR: the path of the first shard of DIR's manifest.
first_shard() {
  echo "$1/$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["shards"][0]["file"])' "$1/manifest.json")"
}

# flip_bit FILE OFFSET BIT: flips one bit in place.
flip_bit() {
  python3 - "$@" <<'EOF'
import sys
path, off, bit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "r+b") as f:
    f.seek(off)
    b = f.read(1)[0]
    f.seek(off)
    f.write(bytes([b ^ (1 << bit)]))
EOF
}
