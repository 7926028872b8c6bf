#!/usr/bin/env bash
# Builds the optional native BLAS kernels (native/blas_kernels.c → build/native/blas_kernels.node).
# Needs a C compiler, Node's headers and OpenBLAS (Debian: build-essential libopenblas-dev); without them it prints
# why and exits 3, and the course runs on tfjs' wasm kernels alone (slower, same results). Called by scripts/setup.sh.
# -march=native: the addon is built on the machine that uses it, so it may use every instruction set of that CPU.
#   scripts/build-native.sh          build when the source is newer than the binary
#   scripts/build-native.sh --force  rebuild
set -euo pipefail
cd "$(dirname "$0")/.."
src=native/blas_kernels.c
out=build/native/blas_kernels.node
cpu_file=build/native/blas_kernels.cpu   # the CPU's flags at build time (-march=native): lib refuses the addon elsewhere
cpu_flags() { grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | xargs || true; }
if [[ "${1:-}" != "--force" && -f "$out" && "$out" -nt "$src" && "$out" -nt "$0" && -f "$cpu_file" ]] \
   && [[ "$(cat "$cpu_file")" == "$(cpu_flags)" ]]; then exit 0; fi

node_prefix=$(dirname "$(dirname "$(node -p 'process.execPath')")")
inc=""
for d in "$node_prefix/include/node" /usr/include/node /usr/local/include/node; do
  if [[ -f "$d/node_api.h" ]]; then inc=$d; break; fi
done
if [[ -z "$inc" ]]; then
  echo "[native] skipped: Node's headers (node_api.h) not found under $node_prefix/include/node or /usr/include/node" >&2
  exit 3
fi
cc=${CC:-cc}
if ! command -v "$cc" >/dev/null; then echo "[native] skipped: no C compiler ($cc); install build-essential" >&2; exit 3; fi
if ! echo 'int main(void){return 0;}' | "$cc" -x c - -lopenblas -o /dev/null 2>/dev/null; then
  echo "[native] skipped: OpenBLAS not found; install it with: apt-get install libopenblas-dev" >&2
  exit 3
fi
blas_inc=""
for d in /usr/include/x86_64-linux-gnu/openblas-pthread /usr/include/aarch64-linux-gnu/openblas-pthread /usr/include/openblas; do
  if [[ -f "$d/cblas.h" ]]; then blas_inc="-I$d"; break; fi
done
mkdir -p build/native
tmp="$out.tmp.$$"
# -fvisibility=hidden: only the Node-API entry point is exported. Written to a temp file and renamed: a failed build
# never leaves a half-written addon behind.
"$cc" -O3 -march=native -std=c11 -Wall -Wextra -fPIC -shared -fvisibility=hidden -I"$inc" $blas_inc "$src" -o "$tmp" -lopenblas -lm -lpthread
mv "$tmp" "$out"
cpu_flags > "$cpu_file"
echo "[native] built $out ($(node -e "const m=require('./$out');console.log(m.config())"))"
