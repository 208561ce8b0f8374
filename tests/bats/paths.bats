#!/usr/bin/env bats
# paths.bats: file and directory names with a space, both quotes, a backslash,
# a leading dash and a newline, through lm-tokenize, lm-pack and the scripts
# (issue 18). Every name is passed as one argument, never re-split or parsed.

bats_require_minimum_version 1.5.0

REPO="$BATS_TEST_DIRNAME/../.."

setup() {
  export PATH="$LM_BIN:$PATH"
  # One directory and one file name holding every awkward character.
  W="$BATS_TEST_TMPDIR/a dir 'q' \"dq\" back\\slash"$'\n'"nl"
  mkdir -p "$W"
  awk 'BEGIN { srand(5); for (p = 0; p < 300; p++) { n = 4 + int(rand() * 12); s = "";
    for (i = 0; i < n; i++) s = s sprintf("w%d ", int(rand() * 30)); print s "."; print "" } }' \
    >"$W/-text 'x' \"y\""$'\n'".txt"
  TXT="$W/-text 'x' \"y\""$'\n'".txt"
}

@test "paths: lm-tokenize trains, encodes and decodes with awkward names" {
  lm-tokenize train -q --vocab-size 300 --doc-delim '\n\n' -o "$W/v 'o'.bpe" -- "$TXT"
  lm-tokenize --vocab "$W/v 'o'.bpe" --doc-delim '\n\n' -o "$W/out \"t\".tok" -- "$TXT"
  lm-tokenize decode --vocab "$W/v 'o'.bpe" -o "$W/back"$'\n'".txt" "$W/out \"t\".tok"
  # Decoding gives the documents back, without the delimiters that cut them.
  [ "$(tr -d '\n' <"$W/back"$'\n'".txt")" = "$(tr -d '\n' <"$TXT")" ]
  run --separate-stderr lm-tokenize --vocab "$W/v 'o'.bpe" -- "$W/missing 'm'.txt"
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"missing 'm'.txt"* ]]
}

@test "paths: lm-pack writes, appends, verifies, cats and cleans an awkward directory" {
  lm-tokenize train -q --vocab-size 300 --doc-delim '\n\n' -o "$W/v.bpe" -- "$TXT"
  lm-tokenize --vocab "$W/v.bpe" --doc-delim '\n\n' -o "$W/in.tok" -- "$TXT"
  D="$W/ds \"x\""$'\n'"y"
  lm-pack -q -o "$D" --val-fraction 0.2 --label "first 'one' \"q\"" -- "$W/in.tok"
  lm-pack -q -o "$D" --append --label="-second" <"$W/in.tok"
  lm-pack verify "$D"
  [ "$(lm-pack inspect "$D" --labels)" = "first 'one' \"q\""$'\n'"-second" ]
  lm-pack cat "$D" -o "$W/cat 'c'.tok"
  lm-tokenize decode --vocab "$W/v.bpe" "$W/cat 'c'.tok" >"$W/cat.txt"
  once=$(tr -d '\n' <"$TXT")
  [ "$(tr -d '\n' <"$W/cat.txt")" = "$once$once" ]
  # A writer killed before its commit leaves files that clean removes.
  lm-pack -q -o "$D" --append --shard-tokens 500 --block-tokens 64 <"$W/in.tok" &
  sleep 0.05
  kill -9 $! 2>/dev/null || true
  wait || true
  lm-pack clean -q "$D" >/dev/null
  run --separate-stderr lm-pack verify "$D"
  [ "$status" -eq 0 ]
  [[ "$stderr" != *"not in the manifest"* ]]
}

@test "paths: the recipe packs files with awkward names into an awkward --out, each once" {
  C="$W/corpus"
  mkdir -p "$C"
  for n in "plain" "sp ace" "q'uo\"te" 'back\slash' $'new\nline' "-dash"; do
    { echo "marker of [$n]"; echo; cat "$TXT"; } >"$C/$n.txt"
  done
  O="$W/out 'o'"
  run --separate-stderr "$REPO/scripts/recipe-24h.sh" --corpus "$C" --out "$O" --vocab-size 300 \
    --doc-delim '\n\n' --device cpu --context 32 --budget 2s --train-opt --micro-batch=4 \
    --train-opt --probe-seconds=0.3 --train-opt --val-tokens=512 --train-opt --threads=1 -j 2
  [ "$status" -eq 0 ] || { echo "$stderr" | tail -20; false; }
  [ "$(wc -l <"$O/files.txt")" -eq 6 ]
  [ "$(lm-pack inspect "$O/shards" --labels | LC_ALL=C sort)" = "$(cat "$O/files.txt")" ]
  # Each line is one name, backslashes and newlines escaped: printf %b gives it back.
  while IFS= read -r l; do
    printf -v f '%b' "$l"
    [ -f "$f" ] || { echo "no such file: $l"; false; }
  done <"$O/files.txt"
  lm-pack cat "$O/shards" | lm-tokenize decode --vocab "$O/tok.bpe" >"$W/all.txt"
  for n in "plain" "sp ace" "q'uo\"te" 'back\slash' $'new\nline' "-dash"; do
    # (the newline name's marker is cut in two lines by its own newline)
    m="marker of [${n%%$'\n'*}"
    [ "$(grep -cF -- "$m" "$W/all.txt")" -eq 1 ] || { echo "$n: $(grep -cF -- "$m" "$W/all.txt")"; false; }
  done
  [ -s "$O/final-eval.json" ]
}

@test "paths: plot-metrics reads and writes under an awkward name" {
  command -v gnuplot >/dev/null || skip "gnuplot absent"
  R="$W/run"
  mkdir -p "$R"
  for s in 1 2 3; do
    echo "{\"step\":$s,\"tokens\":$((s * 100)),\"elapsed\":$s,\"loss\":5.$s,\"lr\":0.001}"
  done >"$R/metrics.jsonl"
  "$REPO/scripts/plot-metrics" "$R" -o "$W/plot 'p'.png"
  [ -s "$W/plot 'p'.png" ]
}
