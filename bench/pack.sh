#!/usr/bin/env bash
# bench/pack.sh: lm-pack and the loader on the GPT-2 tokens of
# ../shared/corpora/gutenberg/train.
#
#   1. packing throughput, lm-pack -j 1 --level 3, against its anchor measured
#      in the same run: `zstd -3 -T1` compressing the same tokens as raw 16-bit
#      bytes (the limit: lm-pack does that compression plus parsing, checksums,
#      the split and fsync). Goal: ratio >= 0.8. Also the floor: zstd level 3
#      alone on lm-pack's 16 KiB blocks (bench/zstd_blocks.c). And the same
#      with --val-fraction 0.05: each book is one document, so every one is
#      cut and 5% of it held back until its end (the split's cost).
#   2. compression ratio of the shards against raw 16-bit tokens (and zstd -3's).
#   3. loader throughput: random training batches (T=1024, B=16) through
#      Dataset + BatchSampler, one thread, every block verified at first read:
#      with the default 64 MiB cache, with no cache (every window decompresses
#      its block), and from an uncompressed (--level 0) dataset. Goal: >= 1 GB/s
#      of tokens per core.
#   4. Dataset::Open on a manifest of 5000 shards.
#
# Environment: BUILD, BIN (default build, bin), REPEAT (best of, default 3),
# SECONDS_PER_RUN (loader runs, default 3), KEEP=1 keeps the work directory.
set -euo pipefail
export LC_ALL=C  # a decimal point in $EPOCHREALTIME and in bc's input
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN=${BIN:-bin}
REPEAT=${REPEAT:-3}
RUN_S=${SECONDS_PER_RUN:-3}
CORPUS=../shared/corpora/gutenberg/train
TIKTOKEN=../shared/corpora/tokenizers/gpt2.tiktoken
if [ ! -d "$CORPUS" ] || [ ! -f "$TIKTOKEN" ]; then
  echo "bench/pack.sh: ../shared/corpora absent, nothing measured"
  exit 0
fi
command -v zstd >/dev/null || { echo "bench/pack.sh: zstd (the anchor) not found" >&2; exit 1; }

make --no-print-directory BUILD="$BUILD" BIN="$BIN" NVCC= -j2 "$BIN/lm-pack" "$BIN/lm-tokenize" \
  "$BUILD/libdata.a" "$BUILD/libformat.a" "$BUILD/libutil.a" >/dev/null
W=$(mktemp -d /tmp/lm-bench-pack.XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$W"' EXIT
PATH="$(cd "$BIN" && pwd):$PATH"
g++ -O2 -std=c++17 -Icommon bench/pack_loader.cpp -o "$W/pack_loader" \
  "$BUILD/libdata.a" "$BUILD/libformat.a" "$BUILD/libutil.a" -lzstd -lxxhash -fopenmp -lpthread

gcc -O2 bench/zstd_blocks.c -o "$W/zstd_blocks" -lzstd

# measure CMD...: prints the wall seconds (microsecond clock) and the CPU
# seconds (user + system of its processes, millisecond clock) of CMD.
measure() (
  t0=$EPOCHREALTIME
  "$@" >/dev/null
  t1=$EPOCHREALTIME
  # The second line of `times` is this subshell's children: "XmY.YYYs XmY.YYYs"
  # (written to a file: in a pipe, `times` would run in a child of its own).
  times >"$W/times.txt"
  awk -v w="$(echo "$t1 - $t0" | bc -l)" 'NR == 2 {
    split($1, u, /[ms]/); split($2, s, /[ms]/)
    printf "%.6f %.3f\n", w, u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$W/times.txt"
)

# keep_best NAME CMD...: runs CMD once; keeps in NAME_wall and NAME_cpu the
# figures of NAME's run with the least wall time so far.
keep_best() {
  local name=$1 w c best
  shift
  read -r w c < <(measure "$@")
  best=${name}_wall
  if [ -z "${!best:-}" ] || [ "$(echo "$w < ${!best}" | bc -l)" = 1 ]; then
    printf -v "${name}_wall" '%s' "$w"
    printf -v "${name}_cpu" '%s' "$c"
  fi
}
rate() { echo "$1 / $2 / 1000000" | bc -l; }

echo "== inputs"
lm-tokenize import --tiktoken "$TIKTOKEN" --pattern gpt2 -o "$W/gpt2.bpe" -q
lm-tokenize --vocab "$W/gpt2.bpe" "$CORPUS"/*.txt >"$W/train.tok"
# The same tokens as raw little-endian 16-bit bytes, for the anchor.
python3 - "$W/train.tok" "$W/raw.u16" <<'EOF'
import sys
sys.path.insert(0, "bench")
from lm_files import read_token_stream
ids = read_token_stream(sys.argv[1])
assert len(ids) == 0 or ids.max() < 1 << 16, "expected GPT-2 tokens (16-bit)"
ids.astype("<u2").tofile(sys.argv[2])
EOF
# Eight copies, so that each packing run lasts long enough to time well.
for f in train.tok raw.u16; do
  for _ in 1 2 3 4 5 6 7 8; do cat "$W/$f"; done >"$W/x8.$f"
done
raw_bytes=$(stat -c %s "$W/raw.u16")
tokens=$((raw_bytes / 2))
echo "corpus: $CORPUS ($(du -sb "$CORPUS" | cut -f1) bytes of text), $tokens GPT-2 tokens"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== 1. packing throughput (best of $REPEAT, interleaved; the tokens eight times: $((8 * tokens)) tokens)"
cat "$W/x8.train.tok" "$W/x8.raw.u16" >/dev/null  # both in the page cache
for _ in $(seq "$REPEAT"); do
  keep_best zstd zstd -3 -T1 -q -f "$W/x8.raw.u16" -o "$W/x8.raw.zst"
  # lm-pack fsyncs each shard before the manifest names it; the same for zstd:
  keep_best zsync bash -c 'zstd -3 -T1 -q -f "$1" -o "$2" && exec sync --data "$2"' _ \
    "$W/x8.raw.u16" "$W/x8.raw.zst"
  keep_best pack bash -c 'rm -rf "$1" && exec lm-pack -o "$1" -j 1 --level 3 -q "$2"' _ \
    "$W/x8" "$W/x8.train.tok"
  keep_best split bash -c 'rm -rf "$1" && exec lm-pack -o "$1" -j 1 --level 3 --val-fraction 0.05 -q "$2"' _ \
    "$W/x8" "$W/x8.train.tok"
done
rm -rf "$W/x8"
zstd -3 -T1 -q -f "$W/raw.u16" -o "$W/raw.zst"
lm-pack -o "$W/shards" -j 1 --level 3 -q "$W/train.tok"
for v in zstd zsync pack split; do
  wall=${v}_wall cpu=${v}_cpu
  case $v in
    zstd) label="zstd -3 -T1:" ;;
    zsync) label="  + sync --data:" ;;
    pack) label="lm-pack -j1 -l3:" ;;
    split) label="  --val-fraction 0.05:" ;;
  esac
  printf '%-18s wall %.3f s (%6.1f M tokens/s)   cpu %.3f s (%6.1f M tokens/s)\n' "$label" \
    "${!wall}" "$(rate $((8 * tokens)) "${!wall}")" "${!cpu}" "$(rate $((8 * tokens)) "${!cpu}")"
done
printf 'ratio lm-pack / zstd -3 -T1: %.2fx by wall time, %.2fx by CPU time (goal >= 0.8)\n' \
  "$(echo "$zstd_wall / $pack_wall" | bc -l)" "$(echo "$zstd_cpu / $pack_cpu" | bc -l)"
printf 'ratio lm-pack / (zstd -3 -T1 + fsync of its output): %.2fx by wall time\n' \
  "$(echo "$zsync_wall / $pack_wall" | bc -l)"
printf 'ratio lm-pack --val-fraction 0.05 / zstd -3 -T1: %.2fx by wall time, %.2fx by CPU time\n' \
  "$(echo "$zstd_wall / $split_wall" | bc -l)" "$(echo "$zstd_cpu / $split_cpu" | bc -l)"
# The floor under lm-pack: zstd alone on the same tokens cut into lm-pack's
# independent 8192-token (16 KiB) blocks, in memory, with no I/O at all.
read -r floor_cpu floor_ratio < <("$W/zstd_blocks" "$W/x8.raw.u16" 16384 3 "$REPEAT")
printf 'floor: zstd level 3 alone on the same 16 KiB blocks in memory: cpu %.3f s (%.1f M tokens/s), %.3fx smaller\n' \
  "$floor_cpu" "$(rate $((8 * tokens)) "$floor_cpu")" "$floor_ratio"
printf '       (the anchor, one zstd stream, takes %.2fx the floor'"'"'s CPU time; lm-pack %.2fx)\n' \
  "$(echo "$zstd_cpu / $floor_cpu" | bc -l)" "$(echo "$pack_cpu / $floor_cpu" | bc -l)"

echo "== 2. compression"
shard_bytes=$(du -cb "$W"/shards/*.lms | tail -1 | cut -f1)
zst_bytes=$(stat -c %s "$W/raw.zst")
printf 'lm-pack --level 3:  %d bytes, %.3fx smaller than raw 16-bit tokens (%d bytes)\n' "$shard_bytes" \
  "$(echo "$raw_bytes / $shard_bytes" | bc -l)" "$raw_bytes"
printf 'zstd -3 (one frame): %d bytes, %.3fx\n' "$zst_bytes" "$(echo "$raw_bytes / $zst_bytes" | bc -l)"

echo "== 3. loader: random batches T=1024 B=16, one thread, checksums verified at first read"
lm-pack -o "$W/raw" -j 1 --level 0 -q "$W/train.tok"
for c in "zstd, 64 MiB cache:$W/shards:67108864" "zstd, no cache:$W/shards:0" "raw --level 0 (mmap):$W/raw:0"; do
  IFS=: read -r label dir cache <<<"$c"
  printf '%-21s %s\n' "$label" "$("$W/pack_loader" "$dir" 1024 16 "$RUN_S" "$cache")"
done
echo "(GB: of tokens as the uint32 the loader hands out; 5629 windows of 1025 tokens per epoch)"

echo "== 4. open"
"$W/pack_loader" --open "$W/shards" 5000
