#!/usr/bin/env bash
# recipe-24h.sh: a day on one GPU, from a pile of text to a trained model.
#
#   scripts/recipe-24h.sh --corpus DIR|FILE... --out DIR [--budget 24h]
#                         [--vocab-size N] [--jsonl FIELD | --doc-delim STR | --paragraphs]
#                         [--device auto|cuda|cpu] [--context T] [--vocab-sample-mb M]
#                         [--gpus N] [-j JOBS] [--train-opt OPTION]...
#
# Each input file is one document, unless --jsonl FIELD (each line a JSON
# object), --doc-delim STR or --paragraphs (blank lines, in any line ending)
# splits it. 1% of the tokens are held out for validation (lm-pack
# --val-fraction: the last 1% of each document over 1024 tokens, and 1% of
# the shorter ones, whole, by hash). --train-opt passes one more
# option to lm-train (e.g. --train-opt --micro-batch=16); one that names
# --ckpt-every, --keep or --val-every replaces the recipe's 30m, 4 or 500.
# --gpus N trains on N GPUs of this machine, one rank each, under mpirun
# (docs/distributed.md); the global batch is then N micro-batches a step
# unless --train-opt --batch-tokens=N says otherwise.
#
# Stages (docs/recipe.md explains each):
#   1. vocabulary: lm-tokenize train on a sample of the corpus (the first M MB of
#      the files, default 256)
#   2. tokenize + pack: one `lm-tokenize | lm-pack --append` per input file,
#      run in parallel with xargs -P; 1% of the tokens held out for validation
#   3. size: lm-train --auto-size probes a few shapes on the device and picks the
#      one whose compute-optimal token count (about 20 per parameter) fits the budget
#   4. train to the deadline, checkpointing every 30 minutes
#   5. evaluate the final checkpoint and sample from it
#
# Restartable: rerunning the same command after a crash or a reboot skips the
# finished stages (and the files already packed) and resumes training from the
# last checkpoint with the original deadline schedule.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$here/../bin}
PATH="$(cd "$BIN" 2>/dev/null && pwd || echo "$BIN"):$PATH"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
corpus=() out= budget=24h vocab_size=32768 jsonl= delim= paragraphs= device=auto context=1024 sample_mb=256
jobs=$(nproc) train_opts=() gpus=1
while [ $# -gt 0 ]; do
  case "$1" in
    --corpus) shift; while [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; do corpus+=("$1"); shift; done; continue ;;
    -h|--help) usage; exit 0 ;;
    --out|--budget|--vocab-size|--jsonl|--doc-delim|--context|--train-opt|--device|--vocab-sample-mb|-j|--gpus)
      [ $# -ge 2 ] || { echo "recipe-24h.sh: $1 needs a value" >&2; exit 2; } ;;
  esac
  case "$1" in
    --out) out=$2; shift ;;
    --budget) budget=$2; shift ;;
    --vocab-size) vocab_size=$2; shift ;;
    --jsonl) jsonl=$2; shift ;;
    --doc-delim) delim=$2; shift ;;
    --paragraphs) paragraphs=1 ;;
    --context) context=$2; shift ;;
    --train-opt) train_opts+=("$2"); shift ;;
    --device) device=$2; shift ;;
    --vocab-sample-mb) sample_mb=$2; shift ;;
    -j) jobs=$2; shift ;;
    --gpus) gpus=$2; shift ;;
    *) echo "recipe-24h.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[ ${#corpus[@]} -gt 0 ] || { echo "recipe-24h.sh: --corpus is required" >&2; exit 2; }
[ -n "$out" ] || { echo "recipe-24h.sh: --out is required" >&2; exit 2; }
[[ "$gpus" =~ ^[1-9][0-9]*$ ]] || { echo "recipe-24h.sh: --gpus takes a whole number of 1 or more, got '$gpus'" >&2; exit 2; }
# Several GPUs: one lm-train rank each, launched by mpirun on this machine.
launch=()
if [ "$gpus" -gt 1 ]; then
  command -v mpirun >/dev/null ||
    { echo "recipe-24h.sh: --gpus $gpus needs mpirun (scripts/install-deps.sh installs Open MPI)" >&2; exit 1; }
  launch=(mpirun -np "$gpus")
  [ "$(id -u)" -ne 0 ] || launch+=(--allow-run-as-root)
fi
for t in lm-tokenize lm-pack lm-train lm-eval lm-sample; do
  command -v $t >/dev/null || { echo "recipe-24h.sh: $t not found (run make)" >&2; exit 1; }
done
mkdir -p "$out"
# One recipe at a time in OUT, and none while the processes of an earlier one
# still work there. Every process the recipe starts (but lm-train, which has a
# lock of its own) inherits this lock's descriptor, so a recipe killed with
# SIGKILL keeps it held until its lm-tokenize | lm-pack pipelines end: they go
# on and commit their files. A rerun that did not wait saw those files missing
# from the manifest and packed them a second time.
exec 9>>"$out/.recipe.lock"
if ! flock -n 9; then
  echo "recipe-24h.sh: waiting for another recipe on $out (or the tools a killed one started) to finish" >&2
  flock 9
fi
# Ctrl-C (or SIGTERM/SIGHUP): lm-train checkpoints, then dies of the signal;
# stop here with a word on how to go on, never on to the next stage (a rerun
# resumes, and training counts as done only when trainer-state.json says so).
trap 'echo "recipe-24h.sh: interrupted; rerun the same command to resume" >&2; exit 130' INT TERM HUP
log() { printf '%s recipe: %s\n' "$(date -u +%FT%TZ)" "$*" | tee -a "$out/recipe.log" >&2; }

# The input files, in a fixed order, each once, one per line: a backslash in a
# name is written \\ and a newline \n (so that any name fits on one line and
# names like most names are written as they are); that line is also the run's
# --label in the manifest, and `printf %b` gives the name back.
files=$out/files.txt
escape_names() {
  local f
  while IFS= read -r -d '' f; do
    f=${f//\\/\\\\}
    printf '%s\n' "${f//$'\n'/\\n}"
  done
}
if [ ! -s "$files" ]; then
  if ! for c in "${corpus[@]}"; do
    if [ -d "$c" ]; then find "$c" -type f ! -name '.*' -print0; elif [ -f "$c" ]; then printf '%s\0' "$c";
    else echo "recipe-24h.sh: $c: no such file or directory" >&2; exit 1; fi
  done | escape_names | LC_ALL=C sort -u >"$files.tmp"; then
    rm -f "$files.tmp"
    exit 1
  fi
  [ -s "$files.tmp" ] || { echo "recipe-24h.sh: no input files under ${corpus[*]}" >&2; exit 1; }
  mv "$files.tmp" "$files"
fi
modes=0
for m in "$jsonl" "$delim" "$paragraphs"; do [ -z "$m" ] || modes=$((modes + 1)); done
[ "$modes" -le 1 ] || { echo "recipe-24h.sh: give one of --jsonl, --doc-delim and --paragraphs" >&2; exit 2; }
doc_opts=()
[ -n "$jsonl" ] && doc_opts=(--jsonl "$jsonl")
[ -n "$delim" ] && doc_opts=(--doc-delim "$delim")
[ -n "$paragraphs" ] && doc_opts=(--paragraphs)

# 1. vocabulary ----------------------------------------------------------------
if [ ! -s "$out/tok.bpe" ]; then
  log "stage 1: vocabulary of $vocab_size on the first ${sample_mb} MB"
  # A sample in file order; with --jsonl the sample is whole JSON lines.
  while IFS= read -r f; do
    printf -v f '%b' "$f"
    cat -- "$f"
  done <"$files" | head -c "$((sample_mb * 1000000))" >"$out/vocab-sample.tmp" || true
  if [ -n "$jsonl" ]; then sed -i '$ d' "$out/vocab-sample.tmp"; fi
  lm-tokenize train --vocab-size "$vocab_size" "${doc_opts[@]}" -o "$out/tok.bpe" "$out/vocab-sample.tmp"
  rm -f "$out/vocab-sample.tmp"
fi

# 2. tokenize + pack, one pipeline per file, in parallel -------------------------
if [ ! -e "$out/.packed" ]; then
  # The files already in the dataset: each pipeline labels its run with its
  # file, and the label is committed with the shards, so a rerun after a crash
  # packs exactly the files that are missing, none twice.
  packed() {
    if [ -e "$out/shards/manifest.json" ]; then lm-pack inspect "$out/shards" --labels; fi
  }
  # Leftovers of lm-pack runs killed before their commit take disk space and
  # make lm-pack verify warn; clean is safe at any time.
  if [ -e "$out/shards/manifest.json" ]; then lm-pack clean "$out/shards" -q >/dev/null; fi
  todo=$(LC_ALL=C comm -23 <(LC_ALL=C sort "$files") <(packed | LC_ALL=C sort) | wc -l)
  log "stage 2: tokenize and pack $todo files with $jobs jobs"
  LC_ALL=C comm -23 <(LC_ALL=C sort "$files") <(packed | LC_ALL=C sort) |
    xargs -d '\n' -r -P "$jobs" -I{} bash -c '
      set -o pipefail
      printf -v file "%b" "$2"
      lm-tokenize --vocab "$1/tok.bpe" ${3:+--jsonl "$3"} ${4:+--doc-delim "$4"} ${5:+--paragraphs} -j 1 -- "$file" |
        lm-pack -o "$1/shards" --append --val-fraction 0.01 --seed 1 -j 1 --label="$2"' \
    _ "$out" {} "$jsonl" "$delim" "$paragraphs" ||
    true  # a failed file is found and named below
  if [ -n "$(LC_ALL=C comm -23 <(LC_ALL=C sort "$files") <(packed | LC_ALL=C sort))" ]; then
    echo "recipe-24h.sh: some files failed to pack (see above); rerun to retry them" >&2
    exit 1
  fi
  read -r val share < <(lm-pack inspect "$out/shards" | awk '$1 == "val:" {print $2, $(NF - 3)}')
  if [ "$val" -eq 0 ]; then
    echo "recipe-24h.sh: no token was held out for validation: the corpus is a few short documents; give more text, in a new --out directory (or remove $out first)" >&2
    exit 1
  fi
  log "stage 2: held out $val tokens for validation, $share of the tokens"
  touch "$out/.packed"
fi

# 3 + 4. size the model and train to the deadline --------------------------------
if [ ! -e "$out/.trained" ]; then
  log "stage 3+4: size the model for $budget on $device, then train (resumes if interrupted)"
  # The recipe's defaults, each left out when a --train-opt gives that option
  # (lm-train refuses an option given twice).
  defaults=(--ckpt-every 30m --keep 4 --val-every 500)
  extra=()
  for ((i = 0; i < ${#defaults[@]}; i += 2)); do
    given=0
    for t in "${train_opts[@]}"; do
      [[ "$t" == "${defaults[i]}" || "$t" == "${defaults[i]}="* ]] && given=1
    done
    [ "$given" = 1 ] || extra+=("${defaults[i]}" "${defaults[i + 1]}")
  done
  ${launch[@]+"${launch[@]}"} lm-train --data "$out/shards" --vocab "$out/tok.bpe" --out "$out/run" --auto-size \
    --budget "$budget" --device "$device" --context "$context" "${extra[@]}" "${train_opts[@]}" 9>&-
  # Exit 0 also at a --stop-at (a signal kills it, and the trap above ends the
  # recipe): done only when the budget run reached its deadline.
  if ! grep -q '"ended": *true' "$out/run/latest/trainer-state.json" 2>/dev/null; then
    echo "recipe-24h.sh: lm-train stopped before the end of its budget; rerun the same command to resume" >&2
    exit 1
  fi
  touch "$out/.trained"
fi

# 5. evaluate and sample -------------------------------------------------------------
if [ ! -s "$out/final-eval.json" ]; then
  log "stage 5: evaluate and sample"
  lm-eval --ckpt "$out/run" --data "$out/shards" --split val --json --device "$device" >"$out/final-eval.tmp"
  mv "$out/final-eval.tmp" "$out/final-eval.json"
fi
if [ ! -s "$out/samples.txt" ]; then
  lm-sample --ckpt "$out/run" --prompt "The" -n 200 --num-samples 3 --seed 1 --device "$device" \
    >"$out/samples.tmp"
  mv "$out/samples.tmp" "$out/samples.txt"
fi
log "done: $(cat "$out/final-eval.json")"
cat "$out/samples.txt"
