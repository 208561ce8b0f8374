#!/usr/bin/env bash
# install-deps.sh: install the Debian/Ubuntu packages that lm's build, tests and
# demo need. Does nothing when all are present; uses sudo when not root.
#
#   scripts/install-deps.sh           install what is missing
#   scripts/install-deps.sh --check   exit 1 (listing them) if any is missing
#   scripts/install-deps.sh --bench   also the benchmark anchors (python3-torch, pip tools)
#
# The CUDA toolkit is not a Debian package here: install it from your GPU
# vendor; `make` finds nvcc on PATH or in /usr/local/cuda.
set -euo pipefail

PKGS=(
  g++ make pkg-config git
  libzstd-dev zstd libxxhash-dev libboost-program-options-dev libpcre2-dev
  nlohmann-json3-dev libopenblas-dev libopenblas0-openmp
  bats python3 python3-numpy gnuplot-nox fortunes
)
BENCH_PKGS=(python3-torch python3-pip hyperfine)

mode=install
want=("${PKGS[@]}")
for a in "$@"; do
  case "$a" in
    --check) mode=check ;;
    --bench) want+=("${BENCH_PKGS[@]}") ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-deps.sh: unknown option '$a'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
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
echo "install-deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
