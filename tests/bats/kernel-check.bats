#!/usr/bin/env bats
# lm-kernel-check (tests/gpu/kernel_check.cpp) on a machine without a GPU: it
# runs its host-only checks, says that no GPU is visible and exits 77, so that
# scripts can tell "nothing was checked on a device" from a pass or a failure.
# Skipped when the program is not built (no nvcc) or when a GPU is visible
# (there, scripts/gpu-check.sh runs the real thing).

bats_require_minimum_version 1.5.0

setup() {
  [ -x "$LM_BIN/lm-kernel-check" ] || skip "lm-kernel-check not built (no CUDA toolkit)"
  if command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q GPU; then
    skip "a GPU is visible: scripts/gpu-check.sh runs lm-kernel-check there"
  fi
}

@test "kernel-check: no GPU: exit 77 and a message saying nothing ran on a device" {
  run --separate-stderr lm-kernel-check --seed 7
  [ "$status" -eq 77 ]
  [[ "$output" == *"lm-kernel-check: seed 7"* ]]
  [[ "$output" == *"no CUDA GPU visible"* ]]
  [[ "$output" == *"nothing run on a device"* ]]
}

@test "kernel-check: the host-only peak-rate table check passes without a GPU" {
  run --separate-stderr lm-kernel-check
  [ "$status" -eq 77 ]
  [[ "$output" == *"peak flops table"*"PASS"* ]]
  [[ "$output" != *"FAIL"* ]]
}

@test "kernel-check: --help documents the exit codes" {
  run lm-kernel-check --help
  [ "$status" -eq 0 ]
  [[ "$output" == *"usage: lm-kernel-check"* ]]
  [[ "$output" == *"77 no CUDA GPU visible"* ]]
}

@test "kernel-check: --version prints the version as every lm tool does" {
  run --separate-stderr lm-kernel-check --version
  [ "$status" -eq 0 ]
  [[ "$output" =~ ^lm-kernel-check\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
  [ "$output" = "lm-kernel-check $(lm-train --version | cut -d' ' -f2)" ]
}

@test "kernel-check: a bad argument is a usage error (exit 2) on stderr" {
  run --separate-stderr lm-kernel-check --bogus
  [ "$status" -eq 2 ]
  [ -z "$output" ]
  [[ "$stderr" == *"unknown argument '--bogus'"* ]]
  run --separate-stderr lm-kernel-check --seed x12
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"--seed takes a number"* ]]
}

@test "kernel-check: machine code for every GPU generation from Ampere, PTX for later ones" {
  # CUOBJDUMP names one where the toolkit has none (e.g. from the nvidia-cuda-cuobjdump wheel).
  cuobjdump=${CUOBJDUMP:-$(command -v cuobjdump || ls /usr/local/cuda/bin/cuobjdump 2>/dev/null || true)}
  [ -n "$cuobjdump" ] && [ -x "$cuobjdump" ] || skip "no cuobjdump (set CUOBJDUMP)"
  ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
  # The architectures this build was made for (make's CUDA_SASS, as its config records).
  cfg=${BUILD:-build}
  case $cfg in /*) ;; *) cfg="$ROOT/$cfg" ;; esac
  sass=$(grep -o 'code=sm_[0-9]*' "$cfg/.config" 2>/dev/null | sort -u | sed 's/code=//')
  [ -n "$sass" ] || skip "no CUDA_ARCH in the build's configuration"
  run "$cuobjdump" --list-elf "$LM_BIN/lm-kernel-check"
  [ "$status" -eq 0 ]
  for a in $sass; do [[ "$output" == *".$a."* ]] || { echo "no $a in: $output"; return 1; }; done
  run "$cuobjdump" --list-ptx "$LM_BIN/lm-kernel-check"
  [ "$status" -eq 0 ]
  [[ "$output" == *".sm_"* ]]
}
