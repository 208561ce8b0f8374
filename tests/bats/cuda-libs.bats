#!/usr/bin/env bats
# scripts/cuda-libs.sh: the library path under which lm's CUDA programs find
# cuBLAS, cuDNN and NVRTC where they live only in a Python environment's
# nvidia/*/lib folders (as on the lent GPU machines). A stand-in library and a
# program that needs it play the part; a stand-in "python3" names the folders.

bats_require_minimum_version 1.5.0

setup() {
  command -v cc >/dev/null || skip "no C compiler to build the stand-in program"
  ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
  W="$BATS_TEST_TMPDIR"
  sp="$W/env/lib/python3.12/site-packages/nvidia"
  mkdir -p "$sp/cudnn/lib" "$sp/cuda_nvrtc/lib" "$sp/empty"
  echo 'int stand_in(void) { return 42; }' >"$W/lib.c"
  cc -shared -fPIC -Wl,-soname,libstandin_cudnn.so.9 -o "$sp/cudnn/lib/libstandin_cudnn.so.9" "$W/lib.c"
  printf 'int stand_in(void);\nint main(void) { return stand_in() == 42 ? 0 : 3; }\n' >"$W/main.c"
  cc -o "$W/prog" "$W/main.c" "$sp/cudnn/lib/libstandin_cudnn.so.9"
  printf '#!/bin/sh\necho %s/cudnn/lib\necho %s/cuda_nvrtc/lib\n' "$sp" "$sp" >"$W/python"
  chmod +x "$W/python"
}

@test "cuda-libs: finds a library the program lacks in a Python environment, with its siblings" {
  run --separate-stderr env PYTHONS="$W/python" CUDA_HOME=/nonexistent "$ROOT/scripts/cuda-libs.sh" "$W/prog"
  [ "$status" -eq 0 ]
  [ "$output" = "$sp/cudnn/lib:$sp/cuda_nvrtc/lib" ]
  LD_LIBRARY_PATH="$output" run "$W/prog"
  [ "$status" -eq 0 ]
}

@test "cuda-libs: a library found nowhere is named, exit 1" {
  rm "$sp/cudnn/lib/libstandin_cudnn.so.9"
  run --separate-stderr env PYTHONS="$W/python" CUDA_HOME=/nonexistent "$ROOT/scripts/cuda-libs.sh" "$W/prog"
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"still not found: libstandin_cudnn.so.9"* ]]
}

@test "cuda-libs: EXTRA folders come first" {
  mkdir -p "$W/carry"
  cp "$sp/cudnn/lib/libstandin_cudnn.so.9" "$W/carry/"
  run --separate-stderr env EXTRA="$W/carry" PYTHONS="$W/python" CUDA_HOME=/nonexistent "$ROOT/scripts/cuda-libs.sh" "$W/prog"
  [ "$status" -eq 0 ]
  [ "$output" = "$W/carry" ]
}
