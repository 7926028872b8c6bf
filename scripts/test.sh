#!/usr/bin/env bash
# The whole suite: typecheck, then every mocha test (lib, kernels, grading, notebooks executed in fast mode), then the
# webgpu tests (test/backend/webgpu-*.test.ts: kernels, training, sampling, notebook 00 on webgpu) in a process of their
# own (Dawn's native binding and Mesa llvmpipe stay out of the main run, and a crash there cannot take the other
# results with it). Ends with one summary line "tests: N passed, N failed, N skipped" that counts both runs. With
# arguments, mocha runs just those, in one process: scripts/test.sh 'test/backend/webgpu-*.test.ts' = the webgpu run.
set -uo pipefail
cd "$(dirname "$0")/.."
export DIFFUSION_FAST=1
start=$(date +%s)
echo "[test] typecheck (tsc --noEmit, strict)"
if ! npx tsc --noEmit -p .; then
  echo "[test] typecheck FAILED"
  echo "tests: 0 passed, 1 failed"
  exit 1
fi
passed=0 failed=0 pending=0 rc=0
run_mocha() {
  local log r p f s
  log=$(mktemp)
  # (Dawn warns on stderr that it caps two limits it does not use: noise in the webgpu run)
  npx mocha "$@" 2>&1 | grep --line-buffered -v '^Warning: max.*artificially reduced' | tee "$log"
  r=${PIPESTATUS[0]}
  p=$(grep -Eo '^ *[0-9]+ passing' "$log" | grep -Eo '[0-9]+' | tail -1)
  f=$(grep -Eo '^ *[0-9]+ failing' "$log" | grep -Eo '[0-9]+' | tail -1)
  s=$(grep -Eo '^ *[0-9]+ pending' "$log" | grep -Eo '[0-9]+' | tail -1)
  rm -f "$log"
  # a run that died before mocha's summary (e.g. a crash in native code) counts as one failure
  if [ "$r" != 0 ] && [ -z "$p$f" ]; then f=1; fi
  [ "$r" = 0 ] || rc=$r
  passed=$((passed + ${p:-0})) failed=$((failed + ${f:-0})) pending=$((pending + ${s:-0}))
}
webgpu_tests='test/backend/webgpu-*.test.ts'
if [ $# -eq 0 ]; then
  run_mocha 'test/**/*.test.ts' --ignore "$webgpu_tests"
  echo "[test] webgpu tests in their own process (on Mesa llvmpipe through Dawn's OpenGL backend when there is no GPU)"
  run_mocha "$webgpu_tests"
else
  run_mocha "$@"
fi
echo "[test] wall time: $(( $(date +%s) - start )) s; result: $([ "$rc" = 0 ] && echo PASS || echo FAIL)"
echo "tests: ${passed} passed, ${failed} failed, ${pending} skipped"
exit "$rc"
