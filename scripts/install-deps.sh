#!/usr/bin/env bash
# install-deps.sh: install the Debian/Ubuntu packages that lm's build, tests and
# demo need. Does nothing when all are present; uses sudo when not root.
#
#   scripts/install-deps.sh           install what is missing
#   scripts/install-deps.sh --check   exit 1 (listing them) if any is missing
#   scripts/install-deps.sh --bench   also the benchmark anchors (python3-torch, pip tools)
#   scripts/install-deps.sh --fuzz    also clang and its sanitizer and OpenMP runtimes (make
#                                     fuzz, and the sanitizer builds of .ci/run)
#   scripts/install-deps.sh --cudnn-frontend   only the cudnn-frontend headers (below)
#
# The CUDA toolkit is not a Debian package here: install it from your GPU
# vendor; `make` finds nvcc on PATH or in /usr/local/cuda. Where it is found
# with cuDNN 9 or later, this also fetches the header-only cudnn-frontend C++
# API (cuDNN's fused attention) from the Python package index's
# nvidia-cudnn-frontend wheel, through pip, into .deps/cudnn-frontend/include
# (ignored by git, never part of the repository). Without it the build still
# works and attention uses the built-in kernels.
set -euo pipefail

PKGS=(
  g++ make pkg-config git
  libzstd-dev zstd libxxhash-dev libboost-program-options-dev libpcre2-dev
  nlohmann-json3-dev libopenblas-dev libopenblas0-openmp
  bats python3 python3-numpy gnuplot-nox fortunes
  openmpi-bin libopenmpi-dev
)
BENCH_PKGS=(python3-torch python3-pip hyperfine)
# libFuzzer and the ASan/UBSan/TSan runtimes are in libclang-rt-dev; clang's
# -fopenmp links LLVM's OpenMP (libomp-dev).
FUZZ_PKGS=(clang libclang-rt-dev libomp-dev)

CUDNN_FE_VERSION=1.32.0
CUDNN_FE_DIR=.deps/cudnn-frontend

# The cudnn-frontend headers into $CUDNN_FE_DIR/include, when nvcc and cuDNN 9+
# are there and the headers are not. Never fails the script: on failure it
# says why and leaves $CUDNN_FE_DIR.failed, which keeps make from retrying on
# every build (this script, run again, retries).
cudnn_frontend() {
  cd "${0%/*}/.." || return 0
  [ -f "$CUDNN_FE_DIR/include/cudnn_frontend.h" ] && return 0
  local nvcc home h
  nvcc=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null) || return 0
  home=${nvcc%/bin/nvcc}
  h=$(ls "$home/include/cudnn_version.h" /usr/include/cudnn_version.h \
    /usr/include/*-linux-gnu/cudnn_version.h 2>/dev/null | head -1 || true)
  [ -n "$h" ] && [ "$(sed -n 's/^#define CUDNN_MAJOR  *\([0-9]*\).*/\1/p' "$h")" -ge 9 ] || return 0
  local tmp
  tmp=$(mktemp -d)
  echo "install-deps.sh: fetching the cudnn-frontend $CUDNN_FE_VERSION headers into $CUDNN_FE_DIR" >&2
  mkdir -p .deps
  if python3 -m pip download -q --no-deps --only-binary=:all: --timeout 20 --retries 1 \
      -d "$tmp" "nvidia-cudnn-frontend==$CUDNN_FE_VERSION" >"$tmp/log" 2>&1 &&
    python3 - "$tmp" "$CUDNN_FE_DIR.tmp" <<'PY' 2>>"$tmp/log"
import glob, os, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith("include/") and not name.endswith("/"):
            z.extract(name, sys.argv[2])
PY
  then
    rm -rf "$CUDNN_FE_DIR" "$CUDNN_FE_DIR.failed"
    echo "$CUDNN_FE_VERSION" >"$CUDNN_FE_DIR.tmp/VERSION"
    mv "$CUDNN_FE_DIR.tmp" "$CUDNN_FE_DIR"
  else
    rm -rf "$CUDNN_FE_DIR.tmp"
    tail -3 "$tmp/log" >"$CUDNN_FE_DIR.failed"
    echo "install-deps.sh: could not fetch nvidia-cudnn-frontend $CUDNN_FE_VERSION (pip: $(tail -1 "$tmp/log")); attention will use the built-in kernels" >&2
  fi
  rm -rf "$tmp"
  return 0
}

mode=install
want=("${PKGS[@]}")
for a in "$@"; do
  case "$a" in
    --check) mode=check ;;
    --bench) want+=("${BENCH_PKGS[@]}") ;;
    --fuzz) want+=("${FUZZ_PKGS[@]}") ;;
    --cudnn-frontend) cudnn_frontend || true; exit 0 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-deps.sh: unknown option '$a'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  [ "$mode" = check ] || (rm -f "${0%/*}/../$CUDNN_FE_DIR.failed" 2>/dev/null; cudnn_frontend) || true
  exit 0
fi
if [ "$mode" = check ]; then
  echo "missing packages: ${missing[*]}" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null; then
  echo "install-deps.sh: apt-get not found; install these packages by hand: ${missing[*]}" >&2
  exit 1
fi
SUDO=
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "install-deps.sh: not root and no sudo; install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# Wait for another apt or dpkg (unattended-upgrades, another terminal) to let go
# of its lock instead of failing at once (apt 1.9.11 and later; older ones
# ignore the option).
apt=(apt-get -o DPkg::Lock::Timeout=300)
echo "install-deps.sh: updating the package lists" >&2
$SUDO "${apt[@]}" update -qq ||
  echo "install-deps.sh: apt-get update failed; going on with the package lists there are" >&2

# A package that this release does not have (or whose component, e.g. Ubuntu's
# universe, is not enabled) makes apt-get install nothing at all: find those,
# install the others, then name them.
unavailable=()
if ! apt-get install -s -qq "${missing[@]}" >/dev/null 2>&1; then
  available=()
  for p in "${missing[@]}"; do
    if apt-get install -s -qq "$p" >/dev/null 2>&1; then available+=("$p"); else unavailable+=("$p"); fi
  done
  missing=(${available[@]+"${available[@]}"})
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps.sh: installing ${missing[*]}" >&2
  $SUDO "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
if [ ${#unavailable[@]} -gt 0 ]; then
  required=()
  for p in "${unavailable[@]}"; do
    case " ${PKGS[*]} " in *" $p "*) required+=("$p") ;; esac
  done
  echo "install-deps.sh: not in this system's package lists: ${unavailable[*]}" >&2
  echo "  (on Ubuntu, enable the universe component: sudo add-apt-repository universe; on an" >&2
  echo "  older release, install them by other means)" >&2
  [ ${#required[@]} -eq 0 ] || exit 1
fi
(rm -f "${0%/*}/../$CUDNN_FE_DIR.failed" 2>/dev/null; cudnn_frontend) || true
