#!/usr/bin/env bats
# scripts/ptxas-report.sh: the register, shared-memory and spill report of
# every CUDA kernel for sm_90, checked without a GPU. Skipped when nvcc is not
# found (a CPU-only machine).

bats_require_minimum_version 1.5.0

setup() {
  ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
  NVCC=${NVCC:-$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)}
  [ -n "$NVCC" ] || skip "nvcc not found: no CUDA kernels to report on"
  export NVCC
}

@test "ptxas-report: every kernel reported, none spilling beyond its allowance" {
  run --separate-stderr "$ROOT/scripts/ptxas-report.sh"
  [ "$status" -eq 0 ]
  [[ "$output" == *"no spill beyond the allowances"* ]]
  # Every __global__ function in common/cuda (all named *_kernel, the name on
  # the line of __global__ or the next) has a line; templates one per instance.
  kernels=$(grep -h -A1 '__global__' "$ROOT"/common/cuda/*.cu | grep -o '[a-z_0-9]*_kernel(' | tr -d '(' | sort -u)
  [ "$(echo "$kernels" | wc -l)" -ge 13 ]
  for k in $kernels; do
    echo "$output" | grep -qE "^$k(<[^ ]+>)? " || { echo "no line for $k"; return 1; }
  done
  # The tensor-core attention kernels of the GPT-2 head size do not spill.
  [ "$(echo "$output" | grep -cE '^attention_(forward|dq|dkv)_tc_kernel<64> .* 0 / 0 +ok$')" -eq 3 ]
}

@test "ptxas-report: a kernel forced to spill fails the check and is named" {
  NVCC_EXTRA=-maxrregcount=16 run --separate-stderr "$ROOT/scripts/ptxas-report.sh" \
    "$ROOT/common/cuda/adamw.cu"
  [ "$status" -eq 1 ]
  [[ "$output" == *"adamw_kernel"*"SPILLS (allowed 0)"* ]]
  [[ "$output" == *"spill beyond their allowance"* ]]
}

@test "ptxas-report: a file that does not compile fails with its errors" {
  printf 'this is not CUDA\n' >"$BATS_TEST_TMPDIR/bad.cu"
  run --separate-stderr "$ROOT/scripts/ptxas-report.sh" "$BATS_TEST_TMPDIR/bad.cu"
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"bad.cu: does not compile"* ]]
}

@test "ptxas-report: without nvcc, exit 77 and say nothing was checked" {
  NVCC=/nonexistent/nvcc PATH=/usr/bin:/bin run --separate-stderr "$ROOT/scripts/ptxas-report.sh"
  [ "$status" -eq 77 ]
  [[ "$stderr" == *"nvcc not found; nothing checked"* ]]
}

@test "ptxas-report: a FILE named from another directory, in a path with a space and a quote" {
  d="$BATS_TEST_TMPDIR/it's here"
  mkdir -p "$d"
  cp "$ROOT/common/cuda/adamw.cu" "$d/"
  # adamw.cu includes by repo-relative paths, which the script compiles from.
  cd "$d"
  run --separate-stderr "$ROOT/scripts/ptxas-report.sh" adamw.cu
  [ "$status" -eq 0 ] || { echo "$stderr"; false; }
  [[ "$output" == *"adamw_kernel"* ]]
}
