# spec_helpers.bash: setup for the *-spec.bats files, which read and write lm's
# files with tests/python/lmspec.py, an implementation of docs/formats/ written
# from the specs alone (Python with the reference XXH3 library via ctypes).

SPEC="$BATS_TEST_DIRNAME/../python/lmspec.py"

# spec_setup: cd to the test's directory; skips without python3 or libxxhash.
spec_setup() {
  cd "$BATS_TEST_TMPDIR" || return 1
  command -v python3 >/dev/null || skip "python3 absent"
  python3 -c 'import ctypes; ctypes.CDLL("libxxhash.so.0")' 2>/dev/null ||
    skip "libxxhash.so.0 not loadable from Python"
  export PYTHONPATH="$BATS_TEST_DIRNAME/../python${PYTHONPATH:+:$PYTHONPATH}"
}

# spec_text FILE: ~20 KB of seeded English-like text in paragraphs, with
# punctuation, digits, tabs and contractions (ASCII).
spec_text() {
  awk 'BEGIN { srand(3); split("the a cat dog sat on mat ran fast and then it was very happy tree house don'"'"'t I'"'"'ll it'"'"'s 42 1999", w, " ");
    for (d = 0; d < 120; d++) { n = 10 + int(rand() * 30); s = "";
      for (i = 0; i < n; i++) s = s w[1 + int(rand() * 22)] (rand() < 0.1 ? ".\n" : rand() < 0.05 ? ",\t" : " ");
      print s; print "" } }' >"$1"
}

# refused STATUS-OUTPUT NAME WHAT: lm's last run ($status/$output) failed with
# exit 1 and one line "TOOL: error: ...NAME...WHAT...".
refused() {
  if [ "$status" -ne 1 ] || [ "${#lines[@]}" -ne 1 ] || [[ "$output" != *": error: "*"$1"* ]] ||
    [[ "$output" != *"$2"* ]]; then
    echo "expected a one-line refusal naming '$1' and saying '$2', got status $status:" >&2
    echo "$output" >&2
    return 1
  fi
}
