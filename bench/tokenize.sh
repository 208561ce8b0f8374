#!/usr/bin/env bash
# tokenize.sh: lm-tokenize against its anchors, in one run on the same data.
#
#   bench/tokenize.sh [BIN_DIR]        (default bin/)
#
# Training at vocabulary 32,768 on ../shared/corpora/gutenberg/train (about
# 23 MB), against Hugging Face tokenizers and rustbpe, with bytes per token of
# each on gutenberg/valid; encoding that text with the GPT-2 vocabulary against
# tiktoken, one thread and all threads. Prints seconds and the ratio
# anchor/lm (above 1: lm is faster). Anchors: pip install tiktoken tokenizers rustbpe.
# Our times are wall-clock times of the whole command (start-up and vocabulary
# loading included); the anchors' exclude Python start-up and file reading.
set -euo pipefail
export LC_ALL=C  # decimal points in printf, awk and python3 -c figures, whatever the locale
cd "$(dirname "$0")/.."
BIN=${1:-bin}
TOK="$BIN/lm-tokenize"
C=../shared/corpora
[ -x "$TOK" ] || { echo "tokenize.sh: $TOK not built (make)" >&2; exit 1; }
[ -d "$C/gutenberg/train" ] || { echo "tokenize.sh: $C/gutenberg absent" >&2; exit 1; }
for m in tiktoken tokenizers rustbpe; do
  python3 -c "import $m" 2>/dev/null || { echo "tokenize.sh: python module $m missing (pip install tiktoken tokenizers rustbpe)" >&2; exit 1; }
done
TRAIN=("$C"/gutenberg/train/*)
VALID="$C/gutenberg/valid"
NPROC=$(nproc)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

now() { date +%s.%N; }
ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

bytes=$(cat "${TRAIN[@]}" | wc -c)
echo "data: gutenberg/train, ${#TRAIN[@]} files, $bytes bytes; $NPROC cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

# --- training -------------------------------------------------------------
t0=$(now)
"$TOK" train -q --vocab-size 32768 -o "$tmp/lm.bpe" "${TRAIN[@]}"
lm_train=$(python3 -c "print('%.3f' % ($(now) - $t0))")
lm_bpt=$("$TOK" stats --vocab "$tmp/lm.bpe" "$VALID"/* | sed -n 's/^bytes_per_token //p')
hf=$(python3 bench/tokenize_anchors.py train-hf "$tmp" 32768 "$VALID" "${TRAIN[@]}")
rb=$(python3 bench/tokenize_anchors.py train-rustbpe 32768 "$VALID" "${TRAIN[@]}")
hf_s=$(echo "$hf" | field seconds); hf_bpt=$(echo "$hf" | field bytes_per_token)
rb_s=$(echo "$rb" | field seconds); rb_bpt=$(echo "$rb" | field bytes_per_token)
echo
echo "train, vocab 32768 (gpt2 pattern)     seconds  bytes/token(valid)  ratio anchor/lm"
printf '  lm-tokenize train -j %-2s          %8.2f  %8s\n' "$NPROC" "$lm_train" "$lm_bpt"
printf '  HF tokenizers BpeTrainer          %8.2f  %8s            %s\n' "$hf_s" "$hf_bpt" "$(ratio "$hf_s" "$lm_train")"
printf '  rustbpe train_from_iterator       %8.2f  %8s            %s\n' "$rb_s" "$rb_bpt" "$(ratio "$rb_s" "$lm_train")"
echo "  bytes/token lm vs HF: $(python3 -c "print('%+.2f%%' % (100 * ($lm_bpt / $hf_bpt - 1)))")"

# --- encoding -------------------------------------------------------------
"$TOK" import -q --tiktoken "$C/tokenizers/gpt2.tiktoken" --pattern gpt2 -o "$tmp/gpt2.bpe"
echo
echo "encode, GPT-2 vocabulary           seconds     MB/s  ratio tiktoken/lm"
for j in 1 "$NPROC"; do
  t0=$(now)
  "$TOK" --vocab "$tmp/gpt2.bpe" -j "$j" "${TRAIN[@]}" >"$tmp/out.tok"
  lm_s=$(python3 -c "print('%.3f' % ($(now) - $t0))")
  tk=$(python3 bench/tokenize_anchors.py encode-tiktoken "$C/tokenizers/gpt2.tiktoken" "$j" "${TRAIN[@]}")
  tk_s=$(echo "$tk" | field seconds)
  printf '  lm-tokenize -j %-2s                %8.2f %8.1f\n' "$j" "$lm_s" "$(python3 -c "print($bytes / $lm_s / 1e6)")"
  printf '  tiktoken %-2s thread(s)            %8.2f %8.1f  %s\n' "$j" "$tk_s" "$(python3 -c "print($bytes / $tk_s / 1e6)")" "$(ratio "$tk_s" "$lm_s")"
done
