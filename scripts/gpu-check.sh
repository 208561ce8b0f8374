#!/usr/bin/env bash
# gpu-check.sh: the one script to run on a lent GPU (an H100/H200; see
# docs/cuda.md). Prints the machine first (nvidia-smi, ldd of each program,
# the cuDNN found), runs bin/lm-kernel-check (every kernel and cuDNN's
# attention against the CPU twins, the whole model on both backends), then
# bench/train-gpu.sh (lm-train --device cuda against the PyTorch reference),
# and prints a short table last. Seeds are fixed. Meant to finish in under 7
# minutes on one H100/H200 with 16 cores.
#
#   scripts/gpu-check.sh --prepare   on the build machine: build the programs
#                                    (sm_90 machine code: CUDA_SASS, default 90)
#                                    into build-gpu/carry/bin (stripped), check
#                                    scripts/ptxas-report.sh, and copy the
#                                    shared libraries they need beyond glibc,
#                                    CUDA, cuBLAS, cuDNN and NVRTC into
#                                    build-gpu/carry/lib
#   scripts/gpu-check.sh             on the GPU machine: use build-gpu/carry when
#                                    it was carried there and its programs load,
#                                    else build there; then check and bench
#
# Logs go to $OUT when set (the device tool brings it back), else gpu-check/.
# The CUDA libraries come from the GPU machine: scripts/cuda-libs.sh finds
# cuBLAS, cuBLASLt, cuDNN and NVRTC in the toolkit's folders or in a Python
# environment's nvidia/*/lib folders (PyTorch's wheels) and the programs run
# with that path; the CUDA runtime is linked in statically.
# Environment: JOBS (make -j, default: all cores), STEPS (bench steps, default
# 15), SKIP_BENCH=1, SHAPES (bench shapes, default "124m 350m"), SEED
# (lm-kernel-check's, default 1234), BUDGET_S (the whole run's seconds, default
# 420: the device call's timeout_s is 450, which leaves a 15-minute device
# budget room for a start and a shorter rerun).
set -uo pipefail
cd "$(dirname "$0")/.."
carry=build-gpu/carry
jobs=${JOBS:-$(nproc)}
sass=${CUDA_SASS:-90}
progs="lm-kernel-check lm-train lm-tokenize lm-pack"

# A hash of every source the programs are built from: carried programs are used
# only when it matches (the GPU machine's copy of the tree has no .git).
sources_hash() {
  find Makefile common tools tests/gpu -type f \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' \
    -o -name '*.cuh' -o -name '*.mk' -o -name Makefile \) | LC_ALL=C sort | xargs cat | sha256sum |
    cut -c1-16
}

build() {  # make the programs into $carry/bin
  make -j"$jobs" BUILD=build-gpu BIN="$carry/bin" CUDA_SASS="$sass" \
    $(for p in $progs; do echo "$carry/bin/$p"; done)
}

if [ "${1:-}" = --prepare ]; then
  set -e
  # As the Makefile finds it; without it make stopped at "No rule to make target
  # 'build-gpu/carry/bin/lm-kernel-check'".
  nvcc=${NVCC-$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)}
  if [ -z "$nvcc" ]; then
    echo "gpu-check.sh --prepare: nvcc not found (on PATH or in /usr/local/cuda): the CUDA build needs it" >&2
    exit 1
  fi
  build
  # Registers and spills of every kernel, checked before device time is spent.
  scripts/ptxas-report.sh | tee "$carry/ptxas.txt"
  mkdir -p "$carry/lib"
  for p in $progs; do strip --strip-debug "$carry/bin/$p"; done
  # Everything the programs load except glibc's own libraries, the compiler's
  # runtime (the GPU machine's newer ones serve these binaries) and CUDA's
  # (cuBLAS, cuDNN, NVRTC: hundreds of MB, found there by cuda-libs.sh).
  for p in $progs; do ldd "$carry/bin/$p"; done | awk '$3 ~ /^\// {print $3}' | sort -u |
    grep -vE '/(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so|/libcu[a-zA-Z]*\.so|/libnvrtc|/usr/local/cuda' |
    while read -r lib; do cp -L "$lib" "$carry/lib/"; done
  sources_hash >"$carry/sources"
  git rev-parse HEAD >"$carry/commit" 2>/dev/null || true
  du -sh "$carry"
  echo "carry $carry to the GPU machine (device tool: carry [\"$carry\"])"
  exit 0
fi

out=${OUT:-gpu-check}
mkdir -p "$out"
start=$(date +%s)
stamp() { echo "[$(($(date +%s) - start))s] $*" >&2; }
# Only lm's programs get the library path (Python and PyTorch keep theirs).
bins="$carry/bin"
libpath() {  # the carried libraries, then the CUDA libraries wherever they are
  EXTRA="$PWD/$carry/lib" scripts/cuda-libs.sh $(for p in $progs; do echo "$bins/$p"; done) 2>&1
}
export LM_LD_PATH
LM_LD_PATH=$(libpath | grep -v '^cuda-libs.sh:' | head -1)
lmenv() { LD_LIBRARY_PATH="$LM_LD_PATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"; }

{
  date -u
  git rev-parse HEAD 2>/dev/null || cat "$carry/commit" 2>/dev/null || echo "(no git)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1
  nvcc --version 2>&1 | tail -1
  echo "library path: $LM_LD_PATH"
  # The libcudnn lm-train loads (through the path above, or its rpath), and its version.
  cudnn=$(lmenv ldd "$bins/lm-train" 2>/dev/null | awk '/libcudnn\.so/ {print $3}')
  ver=$([ -n "$cudnn" ] && python3 -c "import ctypes, sys; v = ctypes.CDLL(sys.argv[1]).cudnnGetVersion(); print(f'{v // 10000}.{v // 100 % 100}.{v % 100}')" "$cudnn" 2>/dev/null)
  echo "cuDNN: ${cudnn:-not loaded}${ver:+ (version $ver)}"
} >"$out/machine.txt" 2>&1
cat "$out/machine.txt" >&2
nvidia-smi >&2 2>&1 || true
for p in $progs; do
  [ -x "$bins/$p" ] && { echo "== ldd $p"; lmenv ldd "$bins/$p"; } >>"$out/machine.txt" 2>&1
done
grep -E '^==|cublas|cudnn|nvrtc|not found' "$out/machine.txt" >&2

loads() {
  [ -f "$carry/sources" ] && [ "$(cat "$carry/sources")" = "$(sources_hash)" ] || return 1
  for p in $progs; do
    [ -x "$carry/bin/$p" ] || return 1
    lmenv ldd "$carry/bin/$p" 2>&1 | grep -q "not found" && return 1
  done
  return 0
}
if loads; then
  stamp "using the carried programs in $carry/bin (sources $(sources_hash))"
else
  stamp "build (sm_$sass, -j$jobs)"
  if ! build >"$out/build.log" 2>&1; then
    tail -30 "$out/build.log" >&2
    stamp "BUILD FAILED"
    exit 1
  fi
  LM_LD_PATH=$(libpath | grep -v '^cuda-libs.sh:' | head -1)
fi

# Every step ends inside BUDGET_S seconds from the start (default 420, inside
# the device tool's timeout_s of 450), so that the logs are gathered and the
# table printed even when a step runs long.
budget=${BUDGET_S:-420}
left() { echo $((budget - ($(date +%s) - start))); }
stamp "lm-kernel-check"
check_rc=0
kc_t=$(left)
[ "$kc_t" -gt 180 ] && kc_t=180
[ "$kc_t" -lt 10 ] && kc_t=10
LM_CUDA_SYNC=1 lmenv timeout "$kc_t" "$carry/bin/lm-kernel-check" --seed "${SEED:-1234}" \
  >"$out/kernel-check.log" 2>&1 || check_rc=$?
grep -E "^cudnn_attention:" "$out/kernel-check.log" >&2
grep -E "FAIL|error" "$out/kernel-check.log" | head -40 >&2
tail -3 "$out/kernel-check.log" >&2

bench_rc=skipped
bench_t=$(($(left) - 15))  # the rest, less time to gather the logs
if [ "${SKIP_BENCH:-0}" != 1 ] && [ "$bench_t" -lt 30 ]; then
  stamp "no time left for the bench ($bench_t s)"
elif [ "${SKIP_BENCH:-0}" != 1 ]; then
  stamp "bench/train-gpu.sh (at most $bench_t s)"
  bench_rc=0
  STEPS=${STEPS:-15} OUT="$out/bench" timeout "$bench_t" bench/train-gpu.sh "$carry/bin" \
    >"$out/bench.txt" 2>"$out/bench.log" || bench_rc=$?
  tail -8 "$out/bench.log" >&2
fi

# At most 8 files come back from the device tool: one file for the bench logs.
if [ -d "$out/bench" ]; then
  for f in "$out"/bench/*.log; do
    [ -e "$f" ] && { echo "=== $(basename "$f")"; cat "$f"; }
  done >"$out/bench-logs.txt"
  [ -f "$out/bench/results.jsonl" ] && mv "$out/bench/results.jsonl" "$out/results.jsonl"
  rm -rf "$out/bench"
fi
stamp "done"
echo
echo "== gpu-check $(head -1 "$out/machine.txt"), commit $(sed -n 2p "$out/machine.txt" | cut -c1-12)"
sed -n 3,4p "$out/machine.txt"
grep -E '^cuDNN:' "$out/machine.txt"
grep -E '^cudnn_attention:' "$out/kernel-check.log"
printf 'lm-kernel-check: exit %s, %s\n' "$check_rc" \
  "$(grep -E '^lm-kernel-check: [0-9]+ passed' "$out/kernel-check.log" ||
    { echo -n 'no summary; last line: '; tail -1 "$out/kernel-check.log"; })"
echo "failing lines: $(grep -c FAIL "$out/kernel-check.log")"
echo "bench: exit $bench_rc"
# From the results file, so that a bench cut short by its timeout still shows.
[ -s "$out/results.jsonl" ] && bench/train-gpu.sh --table "$out/results.jsonl"
[ "$check_rc" = 0 ] && { [ "$bench_rc" = 0 ] || [ "$bench_rc" = skipped ]; }
