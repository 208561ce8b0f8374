#!/usr/bin/env bats
# tests/run-all.sh (what `make test` runs) on stand-in test programs: the count,
# a TESTS pattern that matches nothing, UNIT_TESTS, and a bats too old.

bats_require_minimum_version 1.5.0

setup() {
  ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
  export BUILD="$BATS_TEST_TMPDIR/build" BIN="$LM_BIN"
  unset UNIT_TESTS  # make test sets it for the run-all.sh that runs this file
  mkdir -p "$BUILD/tests/zz"
  # A program that plans 3 tests, passes one, skips one and dies.
  printf '#!/bin/sh\necho 1..3\necho "ok 1 a"\necho "ok 2 b # skip no"\nexit 3\n' >"$BUILD/tests/zz/dies_test"
  printf '#!/bin/sh\necho 1..1\necho "ok 1 a"\n' >"$BUILD/tests/zz/fine_test"
  chmod +x "$BUILD/tests/zz/"*_test
}

@test "run-all: a test program that dies has its missing tests counted as failed" {
  TESTS='^zz/' run "$ROOT/tests/run-all.sh"
  [ "$status" -eq 1 ]
  [[ "$output" == *"zz/dies_test: 1 tests never reported (exit 3)"* ]]
  [ "${lines[-1]}" = "2 passed, 1 failed, 1 skipped" ]
}

@test "run-all: UNIT_TESTS names the programs to run (not whatever lies in BUILD)" {
  UNIT_TESTS="$BUILD/tests/zz/fine_test" TESTS='^zz/' run "$ROOT/tests/run-all.sh"
  [ "$status" -eq 0 ]
  [[ "$output" != *dies_test* ]]
  [ "${lines[-1]}" = "1 passed, 0 failed, 0 skipped" ]
}

@test "run-all: a TESTS pattern that matches no test file fails and says so" {
  TESTS='no-such-test-xyz' run "$ROOT/tests/run-all.sh"
  [ "$status" -eq 1 ]
  [[ "$output" == *"no test file matches TESTS='no-such-test-xyz'"* ]]
  [ "${lines[-1]}" = "0 passed, 1 failed, 0 skipped" ]
}

@test "run-all: a bats older than 1.5 is a failure that says so" {
  mkdir -p "$BATS_TEST_TMPDIR/old"
  printf '#!/bin/sh\necho "Bats 1.2.1"\n' >"$BATS_TEST_TMPDIR/old/bats"
  chmod +x "$BATS_TEST_TMPDIR/old/bats"
  PATH="$BATS_TEST_TMPDIR/old:$PATH" TESTS='^zz/fine' run "$ROOT/tests/run-all.sh"
  [ "$status" -eq 1 ]
  [[ "$output" == *"bats 1.2.1 is too old: the tests need 1.5 or later"* ]]
  [ "${lines[-1]}" = "1 passed, 1 failed, 0 skipped" ]
}
