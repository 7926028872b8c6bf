#!/usr/bin/env bash
# The device side of the GPU check (scripts/gpu-check.sh copies it into the package as run.sh). Runs in one call of the
# device tool, from the repository root, on a machine with a GPU but no Node.js, no network and no Vulkan loader:
#
#   bash build/gpu-check/run.sh [--tiny]      → results in $OUT
#
# 1. unpack Node, Dawn, the three bundles and the digits into a temporary folder;
# 2. the Vulkan loader: `dpkg -x libvulkan1_*.deb /` + ldconfig, unless libvulkan.so.1 is already there; the NVIDIA
#    Vulkan ICD through VK_DRIVER_FILES (the lent machines have it at /usr/local/nvidia/share/vulkan/icd.d/);
# 3. gpu-check.js (scripts/gpu-check.ts): backend line, kernels and a Trainer step vs cpu, a short training run with
#    lib/train's Trainer and a sample grid;
# 4. bench.js (scripts/bench.ts = `npm run bench`): the webgpu row of both U-Nets next to PyTorch on CUDA in the same
#    run (scripts/bench_torch.py --device cuda, when a python3 here has torch), with the kernel profile of a step;
# 5. bench-webgpu-kernels.js (scripts/bench-webgpu-kernels.ts --gpu): the course's WGSL kernels against tfjs' own;
# 6. bench-webgpu-host.js (scripts/bench-webgpu-host.ts --gpu): host time per step for tfjs' submit batching, GPU time
#    per step, and where the host's time goes (V8 profile).
# --parts a,b runs only those parts (check, bench, bench-256, kernels, host; default all).
# Each part has a time limit so that the whole stays inside the tool's 600 s (RUN_BUDGET, default 500 s; parts that
# no longer fit are skipped with a message). --tiny: the dry run's sizes (scripts/gpu-check.sh --dry-run, llvmpipe).
# Everything it prints also goes to $OUT/gpu-check.log.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${OUT:-$here/out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
exec > >(tee -a "$out/gpu-check.log") 2>&1
start=$(date +%s)
budget=${RUN_BUDGET:-500}
tiny=0
parts=check,bench,bench-256,kernels,host
while [ $# -gt 0 ]; do
  case "$1" in
    --tiny) tiny=1; shift ;;
    --parts) parts=$2; shift 2 ;;
    *) echo "usage: run.sh [--tiny] [--parts check,bench,bench-256,kernels,host]"; exit 2 ;;
  esac
done
want() { [[ ",$parts," == *",$1,"* ]]; }
say() { echo "[run.sh +$(( $(date +%s) - start ))s] $*"; }
left() { echo $(( budget - ($(date +%s) - start) )); }

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
for b in gpu-check bench bench-webgpu-kernels bench-webgpu-host; do unxz_to "$here/$b.js.xz" "$work/$b.js"; done
unxz_to "$here/mnist-subset.bin.xz" "$work/mnist-subset.bin"
say "node $("$work/node" --version)"

# (the linker cache is read whole before grep: `ldconfig -p | grep -q` under pipefail fails at random on SIGPIPE)
ld_cache=$(ldconfig -p 2>/dev/null || true)
loader=$(grep -m1 'libvulkan\.so\.1 ' <<<"$ld_cache" | sed 's/.*=> //')
if [ -n "$loader" ]; then
  say "Vulkan loader present: $loader"
elif [ -n "${GPU_CHECK_DRY_RUN:-}" ]; then
  say "no Vulkan loader, and a dry run does not install into / (on the device: dpkg -x libvulkan1_*.deb / && ldconfig)"
fi
# NVIDIA's Vulkan ICD is libGLX_nvidia.so.0, which needs libglvnd (libGLdispatch.so.0): without it the loader says
# "Could not get 'vkCreateInstance' … for ICD libGLX_nvidia.so.0" (seen on a lent H200). Install what is missing.
if [ -z "${GPU_CHECK_DRY_RUN:-}" ]; then
  for deb in "$here"/*.deb; do
    lib=$(basename "$deb" | cut -d_ -f1)
    case "$lib" in libvulkan1) probe='libvulkan\.so\.1 ' ;; libglvnd0) probe='libGLdispatch\.so\.0 ' ;; libglx0) probe='libGLX\.so\.0 ' ;;
      libgl1) probe='libGL\.so\.1 ' ;; libegl1) probe='libEGL\.so\.1 ' ;; libopengl0) probe='libOpenGL\.so\.0 ' ;; *) probe='^$' ;; esac
    if grep -q "$probe" <<<"$ld_cache"; then continue; fi
    say "installing $(basename "$deb")"
    if command -v dpkg >/dev/null; then dpkg -x "$deb" /
    else (cd "$work" && ar x "$deb" && tar -xf data.tar.* -C /); fi
  done
  ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f "$icd" ]; then export VK_DRIVER_FILES=$icd; fi
egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
if [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ] && [ -f "$egl" ]; then export __EGL_VENDOR_LIBRARY_FILENAMES=$egl; fi
# what the ICD's library lacks, if anything (the usual reason for "Found no drivers")
icd_lib=$(grep -m1 'libGLX_nvidia\.so\.0 ' <<<"$(ldconfig -p 2>/dev/null || true)" | sed 's/.*=> //')
[ -n "$icd_lib" ] && say "ICD library $icd_lib; unresolved: $(ldd "$icd_lib" 2>/dev/null | grep 'not found' | tr -s ' \n' ' ' || true)"
say "VK_DRIVER_FILES=${VK_DRIVER_FILES:-(unset)}; GPU: $(nvidia-smi -L 2>/dev/null | head -2 | tr '\n' ' ' || echo 'nvidia-smi not found')"

# PyTorch for the CUDA rows, if a python3 here has it
torch_py=""
for py in python3 /usr/bin/python3 /usr/local/bin/python3 /opt/conda/bin/python3; do
  if command -v "$py" >/dev/null && "$py" -c 'import torch' 2>/dev/null; then torch_py=$(command -v "$py"); break; fi
done
say "PyTorch: ${torch_py:-not installed here (no CUDA rows)}${torch_py:+ ($("$torch_py" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>/dev/null))}"

rc=0
# run PART LIMIT CMD…: CMD with at most LIMIT seconds (less if the budget has less), from the repository root
run() {
  local part=$1 limit=$2 l r
  shift 2
  l=$(left)
  [ "$l" -lt "$limit" ] && limit=$l
  if [ "$limit" -lt 20 ]; then say "$part: skipped (time budget spent)"; rc=1; return; fi
  say "$part (at most ${limit} s): $*"
  if command -v timeout >/dev/null; then (cd "$root" && timeout --kill-after=10 "$limit" "$@")
  else (cd "$root" && "$@"); fi  # (no coreutils timeout: the part runs unbounded)
  r=$?
  say "$part: exit code $r$([ "$r" = 124 ] && echo ' (time limit)')"
  [ "$r" = 0 ] || rc=1
}

torch_args=(--no-torch)
[ -n "$torch_py" ] && torch_args=(--torch-device cuda --torch-python "$torch_py")
if [ "$tiny" = 1 ]; then
  # llvmpipe: webgpu must be forced onto a CPU adapter; tiny sizes
  want check && run "gpu-check" 150 "$work/node" "$work/gpu-check.js" --out "$out" --data "$work/mnist-subset.bin" --budget 120 --tiny
  want bench && run "bench (webgpu row)" 120 "$work/node" "$work/bench.js" --variants webgpu --webgpu --tiny --batch 2 --models unet-cond-mnist \
    --profile "${torch_args[@]}" --json "$out/bench.json"
  want kernels && run "bench-webgpu-kernels" 120 "$work/node" "$work/bench-webgpu-kernels.js" --batches 2 --reps 1 --models unet-cond-mnist-small \
    --only adam,clip,step --json "$out/bench-webgpu-kernels.json"
  want host && run "bench-webgpu-host" 150 "$work/node" "$work/bench-webgpu-host.js" --batches 2 --rounds 1 --steps 2 \
    --json "$out/bench-webgpu-host.json"
else
  # host time per step for submit batches of 15 (tfjs), 64, 256, interleaved; GPU time per step; V8 profile of the host
  want host && DIFFUSION_WEBGPU_PROFILE=1 run "bench-webgpu-host" 200 "$work/node" "$work/bench-webgpu-host.js" --gpu \
    --batches 64,256 --rounds 5 --steps 10 --settings submit-15,submit-64,submit-256 --json "$out/bench-webgpu-host.json"
  want check && run "gpu-check" 160 "$work/node" "$work/gpu-check.js" --out "$out" --data "$work/mnist-subset.bin" --budget 130
  # the U-Nets at batch 64, the webgpu row only on the real GPU (no --webgpu), PyTorch on CUDA in the same run
  want bench && run "bench B=64 (webgpu row + PyTorch CUDA)" 170 "$work/node" "$work/bench.js" --variants webgpu --quick --profile \
    "${torch_args[@]}" --json "$out/bench.json"
  # the reference U-Net at batch 256 (the issue's second column), same pairing
  want bench-256 && run "bench B=256 reference (webgpu row + PyTorch CUDA)" 100 "$work/node" "$work/bench.js" --variants webgpu --quick \
    --batch 256 --models reference --profile "${torch_args[@]}" --json "$out/bench-256.json"
  want kernels && run "bench-webgpu-kernels" 100 "$work/node" "$work/bench-webgpu-kernels.js" --gpu --batches 64 --reps 3 \
    --json "$out/bench-webgpu-kernels.json"
fi
say "done; results in $out: $(ls "$out" | tr '\n' ' ')"
exit "$rc"
