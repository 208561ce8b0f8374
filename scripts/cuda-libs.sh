#!/usr/bin/env bash
# cuda-libs.sh: the library path under which lm's CUDA programs find cuBLAS,
# cuBLASLt and cuDNN on a machine that has them in the CUDA toolkit's folders
# or only in a Python environment's nvidia/*/lib folders (pip's
# nvidia-cublas, nvidia-cudnn-cu13 wheels, as PyTorch installs them). The CUDA
# runtime is linked statically; the driver's libcuda.so.1 comes from the system.
#
#   scripts/cuda-libs.sh [PROGRAM...]      prints a colon-separated path: set
#                                          LD_LIBRARY_PATH to it, e.g.
#   LD_LIBRARY_PATH=$(scripts/cuda-libs.sh bin/lm-train) bin/lm-train ...
#
# Folders searched, in order: EXTRA (colon-separated, first), the toolkit's
# (CUDA_HOME, /usr/local/cuda: lib64 and targets/*/lib), then every nvidia/*/lib
# under the site-packages of each python3 on PATH and of PYTHONS (more
# interpreters, colon-separated; default /opt/torch/.venv/bin/python3). A
# folder is kept when it holds a library a PROGRAM needs and does not find
# (ldd), or, without PROGRAMs, libcublasLt.so.* or libcudnn.so.*; every
# nvidia/*/lib of a kept Python environment goes too, since cuDNN loads its
# engines and NVRTC from them at run time. Exit 1 (with the path found so far
# on stdout and the missing libraries on stderr) when a PROGRAM still lacks one.
set -uo pipefail

dirs=()
add() { case ":$(IFS=:; echo "${dirs[*]:-}"):" in *":$1:"*) ;; *) dirs+=("$1") ;; esac; }
path() { (IFS=:; echo "${dirs[*]:-}"); }

# Folders that may hold the libraries, best first.
candidates() {
  local IFS=:
  for d in ${EXTRA:-}; do [ -d "$d" ] && echo "$d"; done
  for home in "${CUDA_HOME:-}" /usr/local/cuda; do
    [ -n "$home" ] || continue
    for d in "$home"/lib64 "$home"/targets/*/lib; do [ -d "$d" ] && echo "$d"; done
  done
  local py
  for py in $(command -v python3 2>/dev/null) ${PYTHONS:-/opt/torch/.venv/bin/python3}; do
    [ -x "$py" ] || continue
    "$py" - <<'PY' 2>/dev/null
import glob, os, site, sysconfig
roots = set(site.getsitepackages()) | {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
for r in sorted(roots):
    for d in sorted(glob.glob(os.path.join(r, "nvidia", "*", "lib")) + glob.glob(os.path.join(r, "nvidia", "*", "*", "lib"))):
        print(d)
PY
  done
}

missing() {  # the libraries the programs do not find under the path so far
  local p
  for p in "$@"; do
    LD_LIBRARY_PATH="$(path)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$p" 2>/dev/null |
      awk '/not found/ {print $1}'
  done | sort -u
}

mapfile -t cands < <(candidates | awk '!seen[$0]++')
if [ $# -eq 0 ]; then
  want=(libcublasLt.so libcudnn.so)
else
  mapfile -t want < <(missing "$@")
fi
for lib in "${want[@]}"; do
  for d in "${cands[@]}"; do
    if compgen -G "$d/$lib*" >/dev/null; then
      add "$d"
      # A Python environment's folder: its siblings too (cuDNN's engines, NVRTC).
      case "$d" in */site-packages/nvidia/*)
        root=${d%%/site-packages/nvidia/*}/site-packages/nvidia
        for s in "$root"/*/lib "$root"/*/*/lib; do [ -d "$s" ] && add "$s"; done ;;
      esac
      break
    fi
  done
done
path
if [ $# -gt 0 ]; then
  left=$(missing "$@")
  if [ -n "$left" ]; then
    echo "cuda-libs.sh: still not found: $(echo $left)" >&2
    exit 1
  fi
fi
exit 0
