#!/usr/bin/env bash
# full-disk.sh: lm-tokenize and lm-pack writing onto a full disk. Whatever
# moment the disk fills, a tool either succeeds with whole output, or fails
# (exit 1, one line naming the file) leaving no output that looks whole: no
# new file where it wrote (an old one as it was), no temporary, and for
# lm-pack a dataset that `lm-pack verify` passes without a warning.
#
#   tests/crash/full-disk.sh [--step BYTES] [--tmpfs | --ulimit]
#
# With --tmpfs (the default when this user can mount one) every case runs in
# a small tmpfs, pre-filled so that only N bytes are free, N from 0 up by
# --step (default 4096, tmpfs's page) until the tool succeeds; with --ulimit
# (the fallback) the tool runs under `ulimit -f` of N KiB instead, which
# limits each file rather than the disk. One line per case, and a summary.
# Exits 1 at the first failure, keeping its files. BIN (default bin/).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$here/../../bin}
export PATH="$(cd "$BIN" && pwd):$PATH"
step=4096 mode=
while [ $# -gt 0 ]; do
  case "$1" in
    --step) step=$2; shift ;;
    --tmpfs) mode=tmpfs ;;
    --ulimit) mode=ulimit ;;
    *) echo "full-disk.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
work=$(mktemp -d "${TMPDIR:-/tmp}/full-disk.XXXXXX")
disk=$work/disk
mkdir -p "$disk"
if [ -z "$mode" ]; then
  if mount -t tmpfs -o size=16m tmpfs "$disk" 2>/dev/null; then mode=tmpfs; umount "$disk"; else mode=ulimit; fi
fi
cleanup() { mountpoint -q "$disk" && umount "$disk"; return 0; }
trap cleanup EXIT
fail() {
  echo "full-disk.sh: $case_name, $free free: $*; files in $work" >&2
  [ "$mode" != tmpfs ] || cp -a "$disk" "$work/disk-at-failure" 2>/dev/null || true
  exit 1
}

# Inputs, on ordinary disk: a vocabulary, text, a token stream.
awk 'BEGIN { srand(9); for (p = 0; p < 1500; p++) { n = 5 + int(rand() * 15); s = "";
  for (i = 0; i < n; i++) s = s sprintf("w%d ", int(rand() * 300)); print s "."; print "" } }' >"$work/text.txt"
lm-tokenize train -q --vocab-size 400 --doc-delim '\n\n' -o "$work/v.bpe" "$work/text.txt"
lm-tokenize --vocab "$work/v.bpe" --doc-delim '\n\n' -o "$work/in.tok" "$work/text.txt"

# fresh_disk: an empty disk (tmpfs), or an empty directory.
fresh_disk() {
  if [ "$mode" = tmpfs ]; then
    mountpoint -q "$disk" && umount "$disk"
    mount -t tmpfs -o size=16m tmpfs "$disk"
  else
    rm -rf "$disk"
    mkdir -p "$disk"
  fi
}
# fill FREE: a filler file leaves FREE bytes free (tmpfs only).
fill() {
  [ "$mode" = tmpfs ] || return 0
  local avail=$(($(stat -f -c '%a * %S' "$disk")))
  [ "$1" -ge "$avail" ] || head -c $((avail - $1)) /dev/zero >"$disk/.filler"
}
# limited COMMAND...: under ulimit -f in --ulimit mode (N = free, in KiB).
limited() {
  if [ "$mode" = ulimit ]; then (ulimit -f $((free / 1024)); "$@"); else "$@"; fi
}
# no_temporaries: nothing but the files named in $keep (and the filler).
no_temporaries() {
  local left
  left=$(cd "$disk" && find . -mindepth 1 ! -name .filler ! -name .lock ! -name 'manifest.json' \
    ! -name '*.lms' ! -path './ds' ! -path './keep.*' -print)
  [ -z "$left" ] || fail "left behind: $(tr '\n' ' ' <<<"$left")"
}

cases=0 failures=0 successes=0
run_case() {  # NAME PREPARE CHECK COMMAND...: sweep free space until the command succeeds
  case_name=$1 prepare=$2 check=$3
  shift 3
  local rc
  for ((free = 0; ; free += step)); do
    fresh_disk
    $prepare
    fill "$free"
    # stderr through a pipe: under ulimit -f a file would be limited too.
    rc=0
    err=$(limited "$@" 2>&1 >/dev/null) || rc=$?
    printf '%s\n' "$err" >"$work/err"
    cases=$((cases + 1))
    if [ $rc -eq 0 ]; then
      $check ok
      successes=$((successes + 1))
      echo "$case_name: fails with up to $((free - step)) bytes free, whole output with $free"
      return
    fi
    [ $rc -eq 1 ] || fail "exit $rc: $(cat "$work/err")"  # (153 would be SIGXFSZ unhandled)
    [ -n "$err" ] && [ "$(wc -l <<<"$err")" -eq 1 ] || fail "not one line on stderr: '$err'"
    $check failed
    failures=$((failures + 1))
    [ $free -lt $((64 << 20)) ] || fail "never succeeds"
  done
}

# lm-tokenize encode -o: no file, or the old one as it was.
prep_keep() { echo old >"$disk/keep.tok"; }
check_tok() {
  if [ "$1" = ok ]; then cmp -s "$disk/keep.tok" "$work/in.tok" || fail "output differs from the input"
  elif [ -e "$disk/keep.tok" ] && [ "$(cat "$disk/keep.tok")" != old ]; then fail "a partial keep.tok"; fi
  no_temporaries
}
run_case "lm-tokenize encode -o" prep_keep check_tok \
  lm-tokenize --vocab "$work/v.bpe" --doc-delim '\n\n' -o "$disk/keep.tok" "$work/text.txt"

# lm-tokenize train -o
prep_none() { :; }
check_vocab() {
  if [ "$1" = ok ]; then lm-tokenize --vocab "$disk/keep.bpe" -o /dev/null "$work/text.txt" || fail "bad vocabulary"
  elif [ -e "$disk/keep.bpe" ]; then fail "a vocabulary after a failure"; fi
  no_temporaries
}
run_case "lm-tokenize train -o" prep_none check_vocab \
  lm-tokenize train -q --vocab-size 400 --doc-delim '\n\n' -o "$disk/keep.bpe" "$work/text.txt"

# lm-pack -o DIR (a new dataset), then --append to one that exists.
check_pack() {
  if [ -e "$disk/ds/manifest.json" ]; then
    lm-pack verify "$disk/ds" >/dev/null 2>"$work/verify" || fail "verify: $(cat "$work/verify")"
    ! grep -q "not in the manifest" "$work/verify" || fail "leftovers: $(cat "$work/verify")"
  elif [ "$1" = ok ]; then fail "no manifest after a success"
  elif [ -n "$(ls -A "$disk/ds" 2>/dev/null | grep -v '^\.lock$' || true)" ]; then
    fail "no manifest, but files: $(ls -A "$disk/ds" | tr '\n' ' ')"
  fi
  no_temporaries
}
run_case "lm-pack -o (new dataset)" prep_none check_pack \
  lm-pack -q -o "$disk/ds" --shard-tokens 20000 --block-tokens 1024 --val-fraction 0.1 "$work/in.tok"
prep_ds() {
  lm-pack -q -o "$disk/ds" --shard-tokens 20000 --block-tokens 1024 "$work/in.tok"
  cp "$disk/ds/manifest.json" "$work/manifest.before"
}
check_append() {
  check_pack "$1"
  if [ "$1" = failed ]; then cmp -s "$disk/ds/manifest.json" "$work/manifest.before" || fail "manifest changed"; fi
}
run_case "lm-pack --append" prep_ds check_append \
  lm-pack -q -o "$disk/ds" --append --shard-tokens 20000 --block-tokens 1024 "$work/in.tok"
check_cat() {
  check_pack ok
  if [ "$1" = ok ]; then cmp -s "$disk/keep.cat" "$work/in.tok" || fail "cat output differs"
  elif [ -e "$disk/keep.cat" ]; then fail "a partial keep.cat"; fi
}
run_case "lm-pack cat -o" prep_ds check_cat lm-pack cat "$disk/ds" -o "$disk/keep.cat"

echo "full-disk.sh ($mode, steps of $step bytes): $cases runs, $failures failed cleanly, $successes succeeded with whole output; every check passed"
cleanup
rm -rf "$work"
