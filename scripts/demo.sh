#!/usr/bin/env bash
# demo.sh: the whole lm pipeline on a small embedded corpus (what `make demo` runs).
#
# Corpus: the quotes of Debian's `fortunes` package (/usr/share/games/fortunes,
# BSD licensed, about 2.4 MB of English), one document per %-separated quote;
# lm-pack holds out 5% of the tokens for validation (whole quotes, by hash:
# none is over 1024 tokens) and says the share it held out.
#
# Stages: train a vocabulary -> tokenize -> pack with a validation split ->
# train a small model for a fixed budget (CPU, or the GPU when there is one) ->
# evaluate -> sample. Everything is written under $DEMO_DIR (default demo/);
# rerunning reuses every finished stage (remove the directory to start over).
#
# Environment: DEMO_DIR (demo), DEMO_BUDGET (3m: training time), DEMO_VOCAB
# (2048), DEMO_PRESET (small), DEMO_DEVICE (auto), DEMO_CORPUS (a file to use
# instead of the fortunes), BIN (bin).
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${DEMO_DIR:-demo}
BUDGET=${DEMO_BUDGET:-3m}
VOCAB=${DEMO_VOCAB:-2048}
PRESET=${DEMO_PRESET:-small}
DEVICE=${DEMO_DEVICE:-auto}
BIN=${BIN:-bin}
PATH="$(cd "$BIN" && pwd):$PATH"
PROMPTS=("Q: What" "The only" "A man")
mkdir -p "$DEMO"
t0=$(date +%s)

say() { printf '\n== %s\n' "$*" >&2; }
# Ctrl-C (or SIGTERM/SIGHUP): lm-train checkpoints, then dies of the signal;
# stop here with a word on how to go on, never on to the next stage (a rerun
# resumes, and training counts as done only when trainer-state.json says so).
trap 'echo "demo: interrupted; rerun to resume (finished stages are kept in $DEMO/)" >&2; exit 130' INT TERM HUP
# A budget run that reached its deadline (not one stopped by a signal).
ended() { grep -q '"ended": *true' "$1/latest/trainer-state.json" 2>/dev/null; }
human() { numfmt --to=si --suffix=B "$1" 2>/dev/null || echo "$1 B"; }

# 1. corpus ------------------------------------------------------------------
corpus=$DEMO/corpus.txt
if [ -n "${DEMO_CORPUS:-}" ]; then
  corpus=$DEMO_CORPUS
elif [ ! -s "$corpus" ]; then
  say "corpus: fortunes quotes -> $corpus"
  src=/usr/share/games/fortunes
  if [ ! -d "$src" ]; then
    echo "demo: $src not found: install the 'fortunes' package (scripts/install-deps.sh does)" >&2
    exit 1
  fi
  # Every quote file (not the .dat indexes, .u8 links, or the ASCII-art file),
  # in a fixed order; each ends with a "%" line, so the quotes stay separated.
  find "$src" -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' ! -name 'ascii-art' ! -name 'art' \
    | LC_ALL=C sort | xargs cat >"$corpus.tmp"
  mv "$corpus.tmp" "$corpus"
fi
corpus_bytes=$(stat -c %s "$corpus")

# 2. vocabulary --------------------------------------------------------------
if [ ! -s "$DEMO/tok.bpe" ]; then
  say "vocabulary: lm-tokenize train --vocab-size $VOCAB"
  lm-tokenize train --vocab-size "$VOCAB" -o "$DEMO/tok.bpe" "$corpus"
fi

# 3. tokenize and pack ---------------------------------------------------------
if [ ! -s "$DEMO/shards/manifest.json" ]; then
  say "tokenize | pack (5% of the tokens held out)"
  rm -rf "$DEMO/shards"
  lm-tokenize encode --vocab "$DEMO/tok.bpe" --doc-delim '\n%\n' "$corpus" \
    | lm-pack -o "$DEMO/shards" --val-fraction 0.05 --seed 1
fi

# 4. train -------------------------------------------------------------------
# The initial weights (step 0) are saved too, so that the summary can show the
# validation loss before and after training.
if [ ! -e "$DEMO/init/latest" ]; then
  lm-train --data "$DEMO/shards" --vocab "$DEMO/tok.bpe" --out "$DEMO/init" --preset "$PRESET" \
    --steps 0 --seed 1 --device "$DEVICE" >"$DEMO/init.log" 2>&1 ||
    { tail -5 "$DEMO/init.log" >&2; echo "demo: lm-train --steps 0 failed (log: $DEMO/init.log)" >&2; exit 1; }
fi
if [ ! -e "$DEMO/run/.done" ]; then
  say "train: preset $PRESET for $BUDGET on device $DEVICE"
  lm-train --data "$DEMO/shards" --vocab "$DEMO/tok.bpe" --out "$DEMO/run" --preset "$PRESET" \
    --budget "$BUDGET" --seed 1 --device "$DEVICE" --ckpt-every 1m --keep 2 --val-every 100
  ended "$DEMO/run" ||
    { echo "demo: lm-train stopped before the end of its budget (signalled?); rerun to resume it" >&2; exit 1; }
  touch "$DEMO/run/.done"
fi

# 5. evaluate ----------------------------------------------------------------
if [ ! -s "$DEMO/eval.jsonl" ]; then
  say "evaluate on the held-out quotes"
  lm-eval --ckpt "$DEMO/init" --data "$DEMO/shards" --split val --json --device "$DEVICE" >"$DEMO/eval.tmp"
  lm-eval --ckpt "$DEMO/run" --data "$DEMO/shards" --split val --json --device "$DEVICE" >>"$DEMO/eval.tmp"
  mv "$DEMO/eval.tmp" "$DEMO/eval.jsonl"
fi

# 6. sample ------------------------------------------------------------------
if [ ! -s "$DEMO/samples.txt" ]; then
  say "sample"
  : >"$DEMO/samples.tmp"
  for p in "${PROMPTS[@]}"; do
    printf -- '--- %s' "$p" >>"$DEMO/samples.tmp"
    # Its progress lines are not wanted here; its errors are.
    lm-sample --ckpt "$DEMO/run" --prompt "$p" -n 80 --temperature 0.8 --top-k 40 --seed 7 \
      --device "$DEVICE" >>"$DEMO/samples.tmp" 2>"$DEMO/sample.log" ||
      { cat "$DEMO/sample.log" >&2; echo "demo: lm-sample failed (log: $DEMO/sample.log)" >&2; exit 1; }
    printf '\n' >>"$DEMO/samples.tmp"
  done
  mv "$DEMO/samples.tmp" "$DEMO/samples.txt"
fi

# 7. summary -----------------------------------------------------------------
# A number from JSON on stdin by key (the keys read here are unique in their
# files); no Python or jq needed.
# Numbers in JSON have a decimal point, which printf reads by the locale: a
# decimal-comma one (de_DE) made "printf: 6.25: invalid number".
# shellcheck disable=SC2059
num() { LC_ALL=C printf "$@"; }
json_field() { grep -o "\"$1\": *-\{0,1\}[0-9][0-9.eE+-]*" | head -1 | sed 's/.*: *//'; }
start=$(sed -n 1p "$DEMO/eval.jsonl")
end=$(sed -n 2p "$DEMO/eval.jsonl")
state=$(cat "$DEMO/run/latest/trainer-state.json" 2>/dev/null || true)
{
  echo
  echo "================ lm demo summary ================"
  printf 'data:        %s of %s (%s)\n' "$(human "$corpus_bytes")" \
    "$(if [ -n "${DEMO_CORPUS:-}" ]; then echo text; else echo fortunes quotes; fi)" "$corpus"
  lm-pack inspect "$DEMO/shards" 2>/dev/null | grep -E '^ *(train|val):' | sed 's/^ */             /'
  printf 'vocabulary:  %s tokens (%s)\n' "$VOCAB" "$DEMO/tok.bpe"
  cfg=$(cat "$DEMO/run/latest/config.json")
  printf 'model:       %s layers, dim %s, %s heads, ffn %s, context %s\n' \
    "$(echo "$cfg" | json_field num_hidden_layers)" "$(echo "$cfg" | json_field hidden_size)" \
    "$(echo "$cfg" | json_field num_attention_heads)" "$(echo "$cfg" | json_field intermediate_size)" \
    "$(echo "$cfg" | json_field max_position_embeddings)"
  if [ -n "$state" ]; then
    printf 'trained:     %s steps, %s tokens in %ss\n' \
      "$(echo "$state" | json_field step)" "$(echo "$state" | json_field tokens_seen)" \
      "$(num '%.0f' "$(echo "$state" | json_field elapsed_seconds)")"
  fi
  num 'val loss:    %.3f -> %.3f nats/token\n' "$(echo "$start" | json_field loss)" "$(echo "$end" | json_field loss)"
  num 'val bpb:     %.3f -> %.3f bits/byte\n' "$(echo "$start" | json_field bpb)" "$(echo "$end" | json_field bpb)"
  num 'eval speed:  %.0f tokens/s\n' "$(echo "$end" | json_field tokens_per_second)"
  echo "samples (temperature 0.8, top-k 40):"
  sed 's/^/  /' "$DEMO/samples.txt"
  echo "total time:  $(( $(date +%s) - t0 ))s    (everything is in $DEMO/; rerun reuses it)"
} | tee "$DEMO/summary.txt"
