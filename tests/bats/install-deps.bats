#!/usr/bin/env bats
# install-deps.sh against stand-ins for dpkg-query, apt-get, id and sudo (no
# root, no network): quiet when all is there, sudo when not root, a clear error
# without it, and a package the release lacks does not stop the others.

bats_require_minimum_version 1.5.0

setup() {
  ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
  F="$BATS_TEST_TMPDIR/fake"
  mkdir -p "$F"
  # Only these tools and the stand-ins are on PATH (so a real sudo is not found).
  for t in bash grep sed cat; do ln -s "$(command -v $t)" "$F/$t"; done
  export LOG="$BATS_TEST_TMPDIR/log" INSTALLED="$BATS_TEST_TMPDIR/installed"
  : >"$LOG"
  # All of the script's packages are installed unless a test removes some.
  sed -n '/^PKGS=(/,/^)/p' "$ROOT/scripts/install-deps.sh" | sed '1d;$d' | tr ' ' '\n' | grep . >"$INSTALLED"
  cat >"$F/dpkg-query" <<'EOF'
#!/bin/bash
grep -qx -- "${@: -1}" "$INSTALLED" && printf 'install ok installed'
exit 0
EOF
  cat >"$F/apt-get" <<'EOF'
#!/bin/bash
echo "apt-get $*" >>"$LOG"
case " $* " in *" -s "*)
  for p in $UNAVAILABLE; do case " $* " in *" $p "*) exit 100 ;; esac; done ;;
esac
exit 0
EOF
  printf '#!/bin/bash\necho "${FAKE_UID:-0}"\n' >"$F/id"
  chmod +x "$F/dpkg-query" "$F/apt-get" "$F/id"
}

deps() { run --separate-stderr env PATH="$F" "$ROOT/scripts/install-deps.sh" "$@"; }

@test "install-deps: all installed: exit 0, prints nothing, calls no apt-get" {
  deps
  [ "$status" -eq 0 ]
  [ -z "$output" ] && [ -z "$stderr" ]
  [ ! -s "$LOG" ]
  deps --check
  [ "$status" -eq 0 ]
}

@test "install-deps: --check names what is missing and installs nothing" {
  sed -i '/^fortunes$/d;/^bats$/d' "$INSTALLED"
  deps --check
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"missing packages: bats fortunes"* ]]
  [ ! -s "$LOG" ]
}

@test "install-deps: installs the missing ones, waiting for the apt lock" {
  sed -i '/^fortunes$/d;/^bats$/d' "$INSTALLED"
  deps
  [ "$status" -eq 0 ]
  grep -q 'Lock::Timeout=[0-9]* update' "$LOG"
  grep -qE 'Lock::Timeout=[0-9]* install -y .*bats fortunes$' "$LOG"
}

@test "install-deps: not root: through sudo, or a clear error without it" {
  sed -i '/^fortunes$/d' "$INSTALLED"
  FAKE_UID=1000 deps
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"not root and no sudo; install: fortunes"* ]]
  printf '#!/bin/bash\necho "sudo $1" >>"$LOG"\nexec "$@"\n' >"$F/sudo"
  chmod +x "$F/sudo"
  FAKE_UID=1000 deps
  [ "$status" -eq 0 ]
  [ "$(grep -c '^sudo apt-get' "$LOG")" -eq 2 ]
}

@test "install-deps: a package the release lacks is named; the others are still installed" {
  sed -i '/^fortunes$/d;/^bats$/d' "$INSTALLED"
  UNAVAILABLE=fortunes deps
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"not in this system's package lists: fortunes"* ]]
  grep -qE 'install -y .* bats$' "$LOG"
  # A missing benchmark extra is only reported.
  sed -i '/^fortunes$/d' "$INSTALLED"; echo fortunes >>"$INSTALLED"; : >"$LOG"
  UNAVAILABLE=hyperfine deps --bench
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"package lists: hyperfine"* ]]
  grep -qE 'install -y .*python3-torch python3-pip$' "$LOG"
}

@test "install-deps: a failing apt-get update does not stop the install" {
  sed -i '/^bats$/d' "$INSTALLED"
  sed -i 's/^exit 0$/case " $* " in *" update "*) exit 100 ;; esac; exit 0/' "$F/apt-get"
  deps
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"apt-get update failed"* ]]
  grep -qE 'install -y .* bats$' "$LOG"
}
