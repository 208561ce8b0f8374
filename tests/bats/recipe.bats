#!/usr/bin/env bats
# recipe.bats: scripts/recipe-24h.sh at a tiny size on the CPU: every stage,
# then a rerun that skips what is finished, recovery from a training run that
# was stopped midway, and from a crash in the middle of packing.

bats_require_minimum_version 1.5.0

REPO="$BATS_TEST_DIRNAME/../.."

setup_file() {
  C="$BATS_FILE_TMPDIR/corpus"
  mkdir -p "$C"
  i=0
  for f in "$REPO"/README.md "$REPO"/CONTRIBUTING.md "$REPO"/docs/*.md "$REPO"/docs/formats/*.md; do
    i=$((i + 1))
    cp "$f" "$C/doc$i.txt"
  done
  # Many paragraphs, and the docs' long ones: the 1% held out mixes whole
  # paragraphs and tails.
  if [ -f /usr/share/games/fortunes/people ]; then
    sed 's/^%$//' /usr/share/games/fortunes/people >"$C/quotes1.txt"
    sed 's/^%$//' /usr/share/games/fortunes/science >"$C/quotes2.txt"
  else
    awk 'BEGIN { srand(3); for (p = 0; p < 3000; p++) { n = 5 + int(rand() * 20); s = "";
      for (i = 0; i < n; i++) s = s sprintf("word%d ", int(rand() * 50)); print s "."; print "" } }' \
      >"$C/quotes1.txt"
  fi
  export C
  export PATH="$LM_BIN:$PATH"
}

recipe() {
  "$REPO/scripts/recipe-24h.sh" --corpus "$C" --vocab-size 300 --paragraphs --device cpu \
    --context 32 --train-opt --micro-batch=4 --train-opt --probe-seconds=0.3 \
    --train-opt --val-tokens=512 --train-opt --threads=1 -j 2 "$@"
}

@test "recipe: --help, and refuses a missing --out or corpus" {
  run "$REPO/scripts/recipe-24h.sh" --help
  [ "$status" -eq 0 ]
  [[ "$output" == *"--corpus"* ]]
  run "$REPO/scripts/recipe-24h.sh" --corpus "$C"
  [ "$status" -eq 2 ]
  run "$REPO/scripts/recipe-24h.sh" --corpus "$BATS_TEST_TMPDIR/none" --out "$BATS_TEST_TMPDIR/o"
  [ "$status" -eq 1 ]
  [[ "$output" == *"no such file"* ]]
}

@test "recipe: --corpus ends at the next option, short ones too; an option without its value is refused" {
  # -j right after the corpus was taken for a corpus file ("-j: no such file").
  run --separate-stderr "$REPO/scripts/recipe-24h.sh" --corpus "$BATS_TEST_TMPDIR/none" -j 2 --out "$BATS_TEST_TMPDIR/o"
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"$BATS_TEST_TMPDIR/none: no such file"* ]]
  [[ "$stderr" != *"-j: no such file"* ]]
  [ ! -e "$BATS_TEST_TMPDIR/o/files.txt.tmp" ]
  run --separate-stderr "$REPO/scripts/recipe-24h.sh" --corpus "$C" --out
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"--out needs a value"* ]]
}

@test "recipe: a file that fails to pack is named, the others are packed, exit 1" {
  O="$BATS_TEST_TMPDIR/o"
  mkdir -p "$O" "$BATS_TEST_TMPDIR/c"
  printf 'one\n\ntwo\n' >"$BATS_TEST_TMPDIR/c/a.txt"
  printf 'three\n\nfour\n' >"$BATS_TEST_TMPDIR/c/b.txt"
  # files.txt as stage 1 leaves it, naming a file that is not (yet) there.
  printf '%s\n' "$BATS_TEST_TMPDIR/c/a.txt" "$BATS_TEST_TMPDIR/c/b.txt" "$BATS_TEST_TMPDIR/c/c.txt" >"$O/files.txt"
  run --separate-stderr recipe --out "$O" --budget 1s
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"c.txt: cannot open"* ]]
  [[ "$stderr" == *"some files failed to pack (see above); rerun to retry them"* ]]
  [ "$(lm-pack inspect "$O/shards" --labels | wc -l)" -eq 2 ]
  [ ! -e "$O/.packed" ]
}

@test "recipe: every stage runs, then a rerun skips them" {
  O="$BATS_FILE_TMPDIR/out"
  run --separate-stderr recipe --out "$O" --budget 4s
  [ "$status" -eq 0 ] || { echo "$stderr" | tail -30; false; }
  [ -s "$O/tok.bpe" ]
  # Each file is in the dataset once, labelled with its name.
  [ "$(lm-pack inspect "$O/shards" --labels | sort -u | wc -l)" -eq "$(ls "$C" | wc -l)" ]
  [ "$(lm-pack inspect "$O/shards" --labels | wc -l)" -eq "$(ls "$C" | wc -l)" ]
  lm-pack verify "$O/shards"
  [ -s "$O/run/auto-size.json" ]
  [ -e "$O/run/latest" ]
  grep -q '"bpb"' "$O/final-eval.json"
  [ -s "$O/samples.txt" ]
  for s in "stage 1" "stage 2" "stage 3+4" "stage 5"; do grep -q "$s" "$O/recipe.log"; done
  # It says the share of the tokens it held out: 1%, give or take.
  grep -E "stage 2: held out [0-9]+ tokens for validation, (0\.[5-9][0-9]|1\.[0-4][0-9])% of the tokens" "$O/recipe.log"
  lines=$(wc -l <"$O/recipe.log")
  run --separate-stderr recipe --out "$O" --budget 4s
  [ "$status" -eq 0 ]
  # Only the final line is new: no stage ran again.
  [ "$(sed -n "$((lines + 1)),\$p" "$O/recipe.log" | grep -c stage)" -eq 0 ]
}

@test "recipe: an interrupted training resumes from its checkpoint on rerun" {
  O="$BATS_FILE_TMPDIR/out2"
  # Stages 1-2, and a training that stops (as after a crash) at step 3.
  # lm-train exits 0 there: the recipe must not call the training done (it
  # marked it so and evaluated the step-3 model).
  # (--ckpt-every given through --train-opt replaces the recipe's 30m.)
  run --separate-stderr recipe --out "$O" --budget 6s --train-opt --stop-at=3 --train-opt --ckpt-every=1
  [ "$status" -eq 1 ] || { echo "$stderr" | tail -30; false; }
  [ -d "$O/run/step-0000001" ] && [ -d "$O/run/step-0000002" ]
  [[ "$stderr" == *"lm-train stopped before the end of its budget; rerun the same command to resume"* ]]
  [ "$(readlink "$O/run/latest")" = step-0000003 ]
  [ ! -e "$O/.trained" ] && [ ! -e "$O/final-eval.json" ]
  run --separate-stderr recipe --out "$O" --budget 6s
  [ "$status" -eq 0 ] || { echo "$stderr" | tail -30; false; }
  [[ "$stderr" == *"resum"* ]]
  [[ "$stderr" != *"auto-size on"* ]]
  step=$(readlink "$O/run/latest")
  [ "${step#step-}" -gt 3 ]
}

@test "recipe: after a crash in the middle of packing, a rerun packs the missing files, none twice" {
  O="$BATS_FILE_TMPDIR/out3"
  mkdir -p "$O"
  # Stage 1 done, and one file's run committed to the manifest before the
  # crash, exactly as the recipe's pipeline commits it (label included).
  find "$C" -type f ! -name '.*' | LC_ALL=C sort >"$O/files.txt"
  lm-tokenize train --vocab-size 300 --paragraphs -o "$O/tok.bpe" "$C/doc1.txt"
  first=$(head -1 "$O/files.txt")
  lm-tokenize --vocab "$O/tok.bpe" --paragraphs -- "$first" |
    lm-pack -o "$O/shards" --append --val-fraction 0.01 --seed 1 -j 1 --label "$first" -q
  run --separate-stderr recipe --out "$O" --budget 2s
  [ "$status" -eq 0 ] || { echo "$stderr" | tail -30; false; }
  [[ "$stderr" == *"tokenize and pack $(($(wc -l <"$O/files.txt") - 1)) files"* ]]
  [ "$(lm-pack inspect "$O/shards" --labels | LC_ALL=C sort)" = "$(cat "$O/files.txt")" ]
  lm-pack verify "$O/shards"
}
