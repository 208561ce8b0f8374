#!/usr/bin/env bash
# ptxas-report.sh: what ptxas says of every CUDA kernel for sm_90 (registers,
# static shared memory, stack, spills), checked on the build machine before
# any GPU time is spent: no GPU is needed, only nvcc.
#
#   scripts/ptxas-report.sh [FILE.cu...]     (default: common/cuda/*.cu)
#
# Prints one line per kernel, then a verdict. Fails (exit 1) when a kernel
# spills registers beyond its allowance below, or when a file does not
# compile; exit 77 when nvcc is not found. Environment: NVCC (the compiler),
# NVCC_EXTRA (more flags, e.g. -maxrregcount=32), JOBS (parallel compiles).
set -uo pipefail
# FILE arguments are taken from where the script was called, before the cd.
args=()
for f in "$@"; do
  case "$f" in /*) args+=("$f") ;; *) args+=("$PWD/$f") ;; esac
done
cd "$(dirname "$0")/.."
export LC_ALL=C
NVCC=${NVCC:-$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null)}
if [ -z "$NVCC" ] || [ ! -x "$NVCC" ]; then
  echo "ptxas-report: nvcc not found; nothing checked" >&2
  exit 77
fi
jobs=${JOBS:-$(nproc)}
if [ ${#args[@]} -gt 0 ]; then sources=("${args[@]}"); else sources=(common/cuda/*.cu); fi

# Spill bytes (stores + loads) a kernel may have. The head-size-128 tensor-core
# dK/dV kernel keeps 16 wmma accumulator tiles and the fragment map live across
# its loop at the 255-register limit and spills a few words; the GPT-2 shapes
# use head size 64, which does not spill.
allowance() {
  case $1 in
    'attention_dkv_tc_kernel<128>') echo 64 ;;
    *) echo 0 ;;
  esac
}

w=$(mktemp -d /tmp/lm-ptxas.XXXXXX)
trap 'rm -rf "$w"' EXIT
# The flags of the Makefile's CUDA objects, for sm_90 alone (the PTX target is
# compiled by the driver, not by this ptxas).
compile() {
  local src=$1 log
  log="$w/$(echo "$src" | tr / _).log"
  # shellcheck disable=SC2086
  if ! "$NVCC" -O3 -std=c++17 --expt-relaxed-constexpr -gencode arch=compute_90,code=sm_90 \
    -Icommon -I. -Xcompiler -fopenmp ${NVCC_EXTRA:-} -Xptxas -v -c "$src" -o "$w/$(basename "$src").o" \
    >"$log" 2>&1; then
    echo "ptxas-report: $src: does not compile:" >&2
    grep -v '^ptxas info' "$log" | head -20 >&2
    return 1
  fi
}
export -f compile
export NVCC NVCC_EXTRA w
# -d '\n': a path with a quote in it (xargs reads quotes otherwise).
printf '%s\n' "${sources[@]}" | xargs -d '\n' -P "$jobs" -I{} bash -c 'compile "$1"' _ {} || exit 1

# ptxas prints, per kernel: "Compiling entry function 'MANGLED' for 'sm_90'",
# then "N bytes stack frame, N bytes spill stores, N bytes spill loads", then
# "Used N registers, used N barriers[, N bytes smem][, ...]".
cat "$w"/*.log | awk '
  /Compiling entry function/ {
    name = $0; sub(/.*entry function \047/, "", name); sub(/\047.*/, "", name)
    stack = 0; st = 0; ld = 0
  }
  /bytes stack frame/ { stack = $1; st = $5; ld = $9 }
  /Used [0-9]+ registers/ {
    regs = $0; sub(/.*Used /, "", regs); sub(/ registers.*/, "", regs)
    smem = 0
    if (match($0, /[0-9]+ bytes smem/)) { smem = substr($0, RSTART, RLENGTH); sub(/ .*/, "", smem) }
    print name, regs, smem, stack, st, ld
  }' | while read -r mangled regs smem stack st ld; do
  # lm::cuda::(anonymous namespace)::attention_dq_kernel<64>(args) -> attention_dq_kernel<64>,
  # void lm::cuda::cross_entropy_kernel<__nv_bfloat16, true>(args) -> cross_entropy_kernel<__nv_bfloat16,true>
  name=$(echo "$mangled" | c++filt | sed -e 's/([^()]*)$//' -e 's/, /,/g' -e 's/^.*:://' \
    -e 's/<\(-\{0,1\}[0-9]\{1,\}\)[a-z]*>/<\1>/')
  echo "$name $regs $smem $stack $st $ld"
done | sort >"$w/table"

if [ ! -s "$w/table" ]; then
  echo "ptxas-report: ptxas reported no kernel" >&2
  exit 1
fi
printf '%-42s %5s %10s %6s %13s  %s\n' kernel regs "smem (B)" stack "spills (B)" verdict
bad=0
while read -r name regs smem stack st ld; do
  allowed=$(allowance "$name")
  spill=$((st + ld))
  verdict=ok
  if [ "$spill" -gt "$allowed" ]; then
    verdict="SPILLS (allowed $allowed)"
    bad=$((bad + 1))
  elif [ "$spill" -gt 0 ]; then
    verdict="ok (spills allowed: $allowed)"
  fi
  printf '%-42s %5s %10s %6s %6s / %-5s %s\n' "$name" "$regs" "$smem" "$stack" "$st" "$ld" "$verdict"
done <"$w/table"
n=$(wc -l <"$w/table")
if [ "$bad" -gt 0 ]; then
  echo "ptxas-report: $bad of $n kernels spill beyond their allowance"
  exit 1
fi
echo "ptxas-report: $n kernels, no spill beyond the allowances"
