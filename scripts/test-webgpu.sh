#!/usr/bin/env bash
# The WebGPU kernel tests (test/backend/webgpu-*.test.ts) in their own mocha process: without test/hooks.ts, which
# selects one backend per process, and with DIFFUSION_WEBGPU_TESTS=1 (in the whole suite they skip themselves).
# Without a GPU, Dawn runs on Mesa llvmpipe (OpenGL, compatibility mode); on a GPU machine:
#   DIFFUSION_DAWN_ARGS= DIFFUSION_WEBGPU_FEATURE_LEVEL=core scripts/test-webgpu.sh
# Ends with the suite's summary line "tests: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
export DIFFUSION_WEBGPU_TESTS=1 TS_NODE_TRANSPILE_ONLY=true
log=$(mktemp)
if [ $# -eq 0 ]; then set -- 'test/backend/webgpu-*.test.ts'; fi
npx mocha --no-config -r ts-node/register --extension ts --timeout 600000 "$@" 2>&1 | grep -v '^Warning: max.*artificially reduced' | tee "$log"
rc=${PIPESTATUS[0]}
passed=$(grep -Eo '^ *[0-9]+ passing' "$log" | grep -Eo '[0-9]+' | tail -1)
failed=$(grep -Eo '^ *[0-9]+ failing' "$log" | grep -Eo '[0-9]+' | tail -1)
pending=$(grep -Eo '^ *[0-9]+ pending' "$log" | grep -Eo '[0-9]+' | tail -1)
rm -f "$log"
echo "tests: ${passed:-0} passed, ${failed:-0} failed, ${pending:-0} skipped"
exit "$rc"
