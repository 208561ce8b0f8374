#!/usr/bin/env bats
# scripts/gpu-check.sh's error paths on a machine without the CUDA toolkit (the
# GPU run itself is checked on a lent GPU, not here).

bats_require_minimum_version 1.5.0

@test "gpu-check: --prepare without nvcc says so and builds nothing" {
  ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
  # NVCC= is how the Makefile is told there is no nvcc; the script honours it too.
  NVCC= run --separate-stderr "$ROOT/scripts/gpu-check.sh" --prepare
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"nvcc not found (on PATH or in /usr/local/cuda)"* ]]
  [[ "$stderr" != *"No rule to make target"* ]]
}
