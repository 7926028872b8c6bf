#!/usr/bin/env bash
# The device side of the GPU check (scripts/gpu-check.sh copies it into the package as run.sh). Runs in one call of the
# device tool, from the repository root, on a machine with a GPU but no Node.js, no network and no Vulkan loader:
#
#   bash build/gpu-check/run.sh [--tiny] [more scripts/gpu-check.ts options]      → results in $OUT
#
# 1. unpack Node, Dawn, the bundle and the digits into a temporary folder;
# 2. the Vulkan loader: `dpkg -x libvulkan1_*.deb /` + ldconfig, unless libvulkan.so.1 is already there; the NVIDIA
#    Vulkan ICD through VK_DRIVER_FILES (the lent machines have it at /usr/local/nvidia/share/vulkan/icd.d/);
# 3. node gpu-check.js: backend line, kernels vs cpu, bench, a short training run with a sample grid (--budget 330 s);
# 4. the same bench in PyTorch on CUDA (scripts/bench_torch.py --device cuda), when python3 has torch.
# Everything it prints also goes to $OUT/gpu-check.log.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${OUT:-$here/out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
exec > >(tee -a "$out/gpu-check.log") 2>&1
start=$(date +%s)
say() { echo "[run.sh +$(( $(date +%s) - start ))s] $*"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unxz_to() { # xz is not everywhere: Python's lzma reads the same format
  if command -v xz >/dev/null; then xz -dc "$1" > "$2"
  elif command -v python3 >/dev/null; then python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
  else echo "neither xz nor python3 here: cannot unpack $1"; exit 1; fi
}
say "unpacking into $work"
unxz_to "$here/node.xz" "$work/node" && chmod +x "$work/node"
mkdir -p "$work/node_modules/webgpu/dist/linux-x64"
cp "$here/webgpu/package.json" "$here/webgpu/index.js" "$work/node_modules/webgpu/"
unxz_to "$here/webgpu/dist/linux-x64/dawn.node.xz" "$work/node_modules/webgpu/dist/linux-x64/dawn.node"
unxz_to "$here/gpu-check.js.xz" "$work/gpu-check.js"
unxz_to "$here/mnist-subset.bin.xz" "$work/mnist-subset.bin"
say "node $("$work/node" --version)"

# (the linker cache is read whole before grep: `ldconfig -p | grep -q` under pipefail fails at random on SIGPIPE)
ld_cache=$(ldconfig -p 2>/dev/null || true)
loader=$(grep -m1 'libvulkan\.so\.1 ' <<<"$ld_cache" | sed 's/.*=> //')
if [ -n "$loader" ]; then
  say "Vulkan loader present: $loader"
elif [ -n "${GPU_CHECK_DRY_RUN:-}" ]; then
  say "no Vulkan loader, and a dry run does not install into / (on the device: dpkg -x libvulkan1_*.deb / && ldconfig)"
else
  deb=$(ls "$here"/libvulkan1_*.deb | head -1)
  say "installing the Vulkan loader from $(basename "$deb")"
  if command -v dpkg >/dev/null; then dpkg -x "$deb" /
  else (cd "$work" && ar x "$deb" && tar -xf data.tar.* -C /); fi
  ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f "$icd" ]; then export VK_DRIVER_FILES=$icd; fi
say "VK_DRIVER_FILES=${VK_DRIVER_FILES:-(unset)}; GPU: $(nvidia-smi -L 2>/dev/null | head -2 | tr '\n' ' ' || echo 'nvidia-smi not found')"

export DIFFUSION_BACKEND=webgpu DIFFUSION_WEBGPU_PROFILE=1
say "gpu-check: $*"
(cd "$work" && ./node gpu-check.js --out "$out" --data "$work/mnist-subset.bin" --budget 330 "$@")
rc=$?
say "gpu-check exit code $rc"

# PyTorch on the same GPU, same model and step (scripts/bench_torch.py), if this machine has it
torch_py=""
for py in python3 /usr/bin/python3; do
  if command -v "$py" >/dev/null && "$py" -c 'import torch' 2>/dev/null; then torch_py=$py; break; fi
done
if [ -z "$torch_py" ]; then
  say "PyTorch: not installed here, no CUDA reference"
elif [ ! -f "$root/scripts/bench_torch.py" ]; then
  say "PyTorch: scripts/bench_torch.py not found under $root"
else
  "$work/node" -e 'process.stdout.write(JSON.stringify(require(process.argv[1]).model))' "$root/configs/unet-cond-mnist.json" > "$work/course.json"
  batches="64 256"
  case " $* " in *" --tiny "*) batches="2" ;; esac
  for model in reference course; do
    for b in $batches; do
      # the device tool stops a command at 600 s: leave the PyTorch rows out rather than lose everything
      if [ $(( $(date +%s) - start )) -gt 480 ]; then say "PyTorch $model B=$b: skipped (time)"; continue; fi
      args=(--device cuda --batch "$b")
      [ "$model" = course ] && args+=(--config "$work/course.json")
      say "PyTorch $model B=$b: $(timeout 150 "$torch_py" "$root/scripts/bench_torch.py" "${args[@]}" 2>/dev/null | tee "$out/torch-$model-b$b.json" | head -c 400)"
    done
  done
fi
say "done; results in $out: $(ls "$out" | tr '\n' ' ')"
exit "$rc"
