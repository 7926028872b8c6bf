#!/usr/bin/env bash
# Idempotent set-up for the course: system packages, npm packages, the tslab Jupyter kernel and the MNIST cache.
# Quick when nothing is missing. `npm start` and `npm test` run it first; `npm run setup` runs it alone.
#   SETUP_SKIP_APT=1   skip the Debian package step (other distributions: install the equivalents yourself)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# --- Node.js -------------------------------------------------------------------------------------------------------
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$node_major" -ge 20 ] || die "Node.js >= 20 is required (found: $(node --version 2>/dev/null || echo none)). Install Node.js 20 LTS."

# --- Debian packages -----------------------------------------------------------------------------------------------
# Jupyter (Notebook + nbconvert); the libraries node-canvas builds against; OpenBLAS (native kernels); bubblewrap (the
# grader's OS sandbox); Fashion-MNIST's original IDX files; the Vulkan loader (WebGPU on a real GPU) and Mesa's EGL/GL
# (WebGPU on the CPU through Dawn's OpenGL backend, which the tests use where there is no GPU).
APT_PACKAGES=(build-essential pkg-config libcairo2-dev libpango1.0-dev libjpeg-dev libgif-dev librsvg2-dev
  libopenblas-dev jupyter-notebook jupyter-nbconvert python3-nbclient jupyter-client python3-ipykernel
  bubblewrap dataset-fashion-mnist libvulkan1 libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri)
if [ "${SETUP_SKIP_APT:-0}" != 1 ] && command -v dpkg-query >/dev/null 2>&1; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}"
    if [ "$(id -u)" = 0 ]; then
      say "installing Debian packages: ${missing[*]}"
      bash -c "$cmd" >/tmp/diffusion-course-apt.log 2>&1 || die "apt-get failed; see /tmp/diffusion-course-apt.log"
    elif command -v sudo >/dev/null 2>&1; then
      say "installing Debian packages with sudo: ${missing[*]}"
      sudo bash -c "$cmd" || die "apt-get via sudo failed"
    else
      die "missing Debian packages: ${missing[*]}
Run this as root, then run the npm command again:
  $cmd"
    fi
  fi
elif ! command -v dpkg-query >/dev/null 2>&1; then
  say "not a Debian/Ubuntu system: make sure Jupyter (notebook, nbconvert, nbclient, ipykernel) and cairo/pango/jpeg/gif/rsvg development libraries are installed"
fi

# --- npm packages ----------------------------------------------------------------------------------------------------
# npm ci when node_modules is missing or older than the lock file. tfjs-node-gpu is optional: where it cannot install
# (no internet / no CUDA), npm drops it silently and lib/backend falls back to wasm.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci (first run builds node-canvas from source: about half a minute)"
  npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed"
fi
node -e "require('canvas')" 2>/dev/null || { say "rebuilding canvas"; npm rebuild canvas --loglevel=error >/dev/null || die "node-canvas does not load; check the Debian packages above"; }

# --- optional native kernels (C + OpenBLAS on the wasm heap: 5–7× faster training; see docs/benchmarks.md) ------
# Without a compiler, Node's headers or OpenBLAS the course still runs, on tfjs' wasm kernels alone.
if [ "${DIFFUSION_NATIVE:-1}" != 0 ]; then
  scripts/build-native.sh || say "native kernels not built (reason above): the course runs on wasm alone, 5–7× slower to train"
fi

# --- the tslab kernel ----------------------------------------------------------------------------------------------
# Jupyter must be the system one (/usr/bin/python3): a pyenv python3 first on PATH may lack Jupyter.
PY=python3
for cand in /usr/bin/python3 python3; do
  if "$cand" -c 'import jupyter_client' >/dev/null 2>&1; then PY="$cand"; break; fi
done
TSLAB_BIN="$ROOT/node_modules/.bin/tslab"
KERNEL_CMD="$ROOT/scripts/tslab-kernel.sh"   # tslab with the zeromq send fix preloaded
if ! "$PY" -c 'import jupyter_client' >/dev/null 2>&1; then
  die "Jupyter is not installed for $PY (Debian: apt-get install jupyter-notebook jupyter-nbconvert python3-nbclient)"
fi
spec_dir=$("$PY" -c 'from jupyter_client.kernelspec import KernelSpecManager as K
try: print(K().get_kernel_spec("tslab").resource_dir)
except Exception: print("")')
if [ -z "$spec_dir" ] || ! grep -qF "\"$KERNEL_CMD\"" "$spec_dir/kernel.json" 2>/dev/null; then
  say "registering the tslab kernel ($KERNEL_CMD)"
  "$TSLAB_BIN" install --python="$PY" --binary="$KERNEL_CMD" >/dev/null || die "tslab kernel registration failed"
fi

# --- the notebooks' view of lib (tslab only compiles files under the notebook's folder) --------------------------
for d in notebooks solutions; do
  if [ -d "$d" ] && [ ! -e "$d/lib" ]; then ln -s ../lib "$d/lib"; fi
done

# --- dataset cache -----------------------------------------------------------------------------------------------
if [ -f scripts/build-datasets.ts ]; then
  node -r ts-node/register scripts/build-datasets.ts || die "building the dataset cache failed"
fi
exit 0
