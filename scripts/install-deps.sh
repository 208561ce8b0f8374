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
  openmpi-bin libopenmpi-dev
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
