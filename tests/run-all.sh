#!/usr/bin/env bash
# run-all.sh: run every test (C++ unit tests, then Bats tests of the tools) and
# count them. Every test speaks TAP; a binary that dies before finishing its
# plan has its missing tests counted as failed. Ends with one line:
#   N passed, N failed, N skipped
# and exits non-zero when anything failed.
#
# Environment: BUILD (default build), BIN (default bin), TESTS (a grep -E
# pattern to run a subset by file name; one that matches no file fails),
# UNIT_TESTS (the unit-test programs, as `make test` names the ones it built;
# default: every *_test under $BUILD/tests).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN=${BIN:-bin}
mkdir -p "$BIN"
export LM_BIN="$(cd "$BIN" && pwd)"
export PATH="$LM_BIN:$PATH"
pattern=${TESTS:-.}
# Tests often run two tools at once on 2 cores: spinning OpenMP threads would
# starve each other (a tiny model step went from 0.3 s to 12 s that way).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
logdir="$BUILD/test-logs"
mkdir -p "$logdir"

passed=0 failed=0 skipped=0
failed_names=()

# count_tap NAME FILE EXIT_CODE
count_tap() {
  local name=$1 file=$2 rc=$3 plan=0 seen=0 p=0 f=0 s=0
  while IFS= read -r line; do
    case "$line" in
      1..*) plan=${line#1..}; plan=${plan%% *} ;;
      "not ok "*) f=$((f + 1)); seen=$((seen + 1)); failed_names+=("$name: ${line#not ok }") ;;
      "ok "*"# skip"*|"ok "*"# SKIP"*) s=$((s + 1)); seen=$((seen + 1)) ;;
      "ok "*) p=$((p + 1)); seen=$((seen + 1)) ;;
    esac
  done <"$file"
  if [ "$seen" -lt "$plan" ]; then
    f=$((f + plan - seen)); failed_names+=("$name: $((plan - seen)) tests never reported (exit $rc)")
  elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=$((f + 1)); failed_names+=("$name: exited $rc")
  fi
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
  printf '%-44s %4d passed %3d failed %3d skipped\n' "$name" "$p" "$f" "$s"
}

ran=0
echo "== unit tests"
# From make, only the programs this configuration built: a CUDA build's
# tests/gpu programs stay in $BUILD after `make NVCC=`, and a deleted test's
# program stays until `make clean`.
for t in ${UNIT_TESTS-$(find "$BUILD/tests" -type f -name '*_test' 2>/dev/null | sort)}; do
  name=${t#"$BUILD/tests/"}
  echo "$name" | grep -qE "$pattern" || continue
  ran=$((ran + 1))
  log="$logdir/$(echo "$name" | tr / _).tap"
  timeout 600 "$t" >"$log" 2>&1
  count_tap "$name" "$log" $?
done

echo "== bats tests"
bats_version=$(bats --version 2>/dev/null | sed -n 's/^Bats \([0-9][0-9.]*\).*/\1/p')
if ! command -v bats >/dev/null; then
  echo "bats not found (scripts/install-deps.sh installs it)"; failed=$((failed + 1))
elif [ -z "$bats_version" ] || [ "$(printf '%s\n1.5\n' "$bats_version" | sort -V | head -1)" != 1.5 ]; then
  # The tests use bats_require_minimum_version and run --separate-stderr (1.5).
  echo "bats ${bats_version:-(unknown version)} is too old: the tests need 1.5 or later"; failed=$((failed + 1))
else
  for b in tests/bats/*.bats; do
    [ -e "$b" ] || continue
    echo "$b" | grep -qE "$pattern" || continue
    ran=$((ran + 1))
    log="$logdir/$(basename "$b").tap"
    timeout 900 bats --tap "$b" >"$log" 2>&1
    count_tap "$b" "$log" $?
  done
fi

if [ "$ran" -eq 0 ] && [ "$failed" -eq 0 ]; then
  echo "no test file matches TESTS='$pattern'"
  failed=1
fi
if [ ${#failed_names[@]} -gt 0 ]; then
  echo "== failures (logs in $logdir)"
  printf '  %s\n' "${failed_names[@]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
