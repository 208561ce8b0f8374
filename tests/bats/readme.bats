#!/usr/bin/env bats
# readme.bats: every command in README.md runs as written (at small sizes), so
# that the README can never drift from the tools. The commands are read from
# README.md itself; only sizes are shrunk (vocabulary, budget, model, samples).

bats_require_minimum_version 1.5.0

REPO="$BATS_TEST_DIRNAME/../.."

# readme_block N: the command lines (no comments, no blanks) of the Nth ```sh block.
readme_block() {
  awk -v want="$1" '/^```sh$/ { n++; inblock = (n == want); next }
    /^```/ { inblock = 0; next }
    inblock && !/^[[:space:]]*#/ && NF { print }' "$REPO/README.md"
}

# shrink: the README's sizes made small enough for a test.
shrink() {
  sed -e 's/--vocab-size 32768/--vocab-size 400/' \
      -e 's/--budget 24h/--budget 6s --preset tiny --context 64 --micro-batch 4 --val-tokens 1k --device cpu/' \
      -e 's/--prompt "Once upon a time"/--prompt "Once upon a time" -n 12 --seed 3 --device cpu/' \
      -e 's/--json --new-only/--json --new-only --device cpu/'
}

# run_cmd CMD: runs one README command line, showing it; fails with its output.
run_cmd() {
  echo "# $1" >&3
  run bash -o pipefail -c "$1"
  if [ "$status" -ne 0 ]; then
    echo "failed ($status): $1" >&2
    echo "$output" >&2
    return 1
  fi
}

# A corpus of real English: the project's own documentation, as several files.
setup_file() {
  W="$BATS_FILE_TMPDIR/w"
  mkdir -p "$W/corpus" "$W/parts"
  i=0
  for f in "$REPO"/README.md "$REPO"/CONTRIBUTING.md "$REPO"/docs/*.md "$REPO"/docs/formats/*.md; do
    i=$((i + 1))
    cp "$f" "$W/corpus/doc$i.txt"
    cp "$f" "$W/parts/part$i.txt"
  done
  # Enough paragraphs that 1% of them is a real val split: the fortunes quotes
  # (a dependency of the demo), one paragraph each, or generated sentences.
  if [ -f /usr/share/games/fortunes/people ]; then
    sed 's/^%$//' /usr/share/games/fortunes/{fortunes,people,science} >"$W/corpus/quotes.txt"
  else
    awk 'BEGIN { srand(3); for (p = 0; p < 3000; p++) { n = 5 + int(rand() * 20); s = "";
      for (i = 0; i < n; i++) s = s sprintf("word%d ", int(rand() * 50)); print s "."; print "" } }' \
      >"$W/corpus/quotes.txt"
  fi
  export W
}

@test "readme: the two commands lead the README" {
  head -20 "$REPO/README.md" | grep -q '^make demo'
  head -20 "$REPO/README.md" | grep -q '^make test'
}

@test "readme: the pipeline tour runs as written" {
  cd "$W"
  [ "$(readme_block 1 | wc -l)" -eq 5 ]
  while IFS= read -r cmd; do
    run_cmd "$cmd"
  done < <(readme_block 1 | shrink)
  [ -s tok.bpe ]
  [ -s shards/manifest.json ]
  [ -e run/latest ]
  # One evaluation line a checkpoint (the final one, and RUN/best's when it
  # is another), with bits per byte; a second cron run adds nothing.
  n=$(ls -d run/step-* | wc -l)
  [ "$(wc -l <eval.jsonl)" -eq "$n" ]
  grep -q '"bpb"' eval.jsonl
  lm-eval --ckpt run/ --data shards/ --json --new-only --device cpu >>eval.jsonl
  [ "$(wc -l <eval.jsonl)" -eq "$n" ]
}

@test "readme: the 'More' commands run as written" {
  cd "$W"
  [ -e run/latest ] || skip "needs the tour's outputs (run the whole file)"
  if [ -f "$REPO/../shared/corpora/tokenizers/cl100k_base.tiktoken" ]; then
    ln -sf "$REPO/../shared/corpora/tokenizers/cl100k_base.tiktoken" .
  fi
  while IFS= read -r cmd; do
    if [[ "$cmd" == *cl100k_base.tiktoken* ]] && [ ! -e cl100k_base.tiktoken ]; then
      echo "# skipped (../shared/corpora absent): $cmd" >&3
      continue
    fi
    if [[ "$cmd" == scripts/plot-metrics* ]]; then
      cmd="$(printf '%q' "$REPO")/$cmd"  # a checkout path with a space or a quote
      command -v gnuplot >/dev/null || { echo "# skipped (no gnuplot): $cmd" >&3; continue; }
    fi
    run_cmd "$cmd"
  done < <(readme_block 2 | shrink)
  [ -s run/loss.png ] || ! command -v gnuplot >/dev/null
  lm-pack verify shards/
}

@test "readme: the lm-export commands run as written" {
  cd "$W"
  [ -e run/latest ] || skip "needs the tour's outputs (run the whole file)"
  [ "$(readme_block 3 | wc -l)" -eq 2 ]
  while IFS= read -r cmd; do
    run_cmd "$cmd"
  done < <(readme_block 3 | shrink)
  [ "$(head -c 4 model.gguf)" = GGUF ]
  [ -s model/model.safetensors ] && [ -s model/tokenizer.json ] && [ ! -e model/optimizer ]
}
