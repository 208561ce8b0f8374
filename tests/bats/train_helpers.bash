# train_helpers.bash: shared setup for the lm-train Bats files: a small
# generated corpus (no ../shared/corpora needed), a 300-token vocabulary, packed
# shards with a val split, and the options of a fast tiny model.

# make_corpus FILE: ~60 KB of seeded pseudo-sentences, paragraphs separated by a blank line.
make_corpus() {
  awk 'BEGIN { srand(7); split("the a cat dog sat on mat ran fast slow red blue big small and then it was very happy sad tree house", w, " ");
    for (d = 0; d < 400; d++) { n = 20 + int(rand() * 30); s = "";
      for (i = 0; i < n; i++) s = s w[1 + int(rand() * 24)] (rand() < 0.1 ? ".\n" : " ");
      print s; print "" } }' >"$1"
}

# make_data DIR: DIR/corpus.txt, DIR/tok.bpe, DIR/shards.
make_data() {
  local d=$1
  mkdir -p "$d"
  make_corpus "$d/corpus.txt"
  lm-tokenize train --vocab-size 300 -o "$d/tok.bpe" "$d/corpus.txt" 2>/dev/null &&
    lm-tokenize encode --vocab "$d/tok.bpe" --doc-delim '\n\n' "$d/corpus.txt" |
    lm-pack -q -o "$d/shards" --val-fraction 0.1 --seed 1
}

train_setup_file() {
  D="$BATS_FILE_TMPDIR/data"
  export D
  make_data "$D"
}

# The model and batch every test uses unless it gives the option itself:
# small and fast.
TRAIN_DEFAULTS=(--data "" --vocab "" --preset tiny --context 32 --micro-batch 4 --device cpu --threads 1
  --val-tokens 512)

# train_args RUN ARGS...: sets ARGS to lm-train's arguments: the defaults not
# overridden by ARGS, then ARGS.
train_args() {
  local run=$1 i opt
  shift
  ARGS=(--out "$run")
  for ((i = 0; i < ${#TRAIN_DEFAULTS[@]}; i += 2)); do
    opt=${TRAIN_DEFAULTS[i]}
    [[ " $* " == *" $opt "* ]] && continue
    case $opt in
      --data) ARGS+=(--data "$D/shards") ;;
      --vocab) ARGS+=(--vocab "$D/tok.bpe") ;;
      *) ARGS+=("$opt" "${TRAIN_DEFAULTS[i + 1]}") ;;
    esac
  done
  ARGS+=("$@")
}

# train RUN ARGS...: lm-train on the shared data into RUN.
train() {
  train_args "$@"
  lm-train "${ARGS[@]}"
}

# train_bg LOG RUN ARGS...: the same in the background (stderr to LOG), with
# TRAIN_PID the pid of lm-train itself, so that signals reach it.
train_bg() {
  local log=$1
  shift
  train_args "$@"
  lm-train "${ARGS[@]}" 2>"$log" &
  TRAIN_PID=$!
}

# sha FILE: its SHA-256.
sha() { sha256sum "$1" | cut -d' ' -f1; }

# wait_for FILE PATTERN SECONDS: until FILE contains PATTERN (fails on timeout).
wait_for() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1" >&2
  cat "$1" >&2
  return 1
}
