#!/usr/bin/env bash
# The whole suite: typecheck, then every mocha test (lib, kernels, grading, notebooks executed in fast mode).
# Ends with one summary line "tests: N passed, N failed, N skipped".
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
log=$(mktemp)
if [ $# -eq 0 ]; then set -- 'test/**/*.test.ts'; fi
npx mocha "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
passed=$(grep -Eo '^ *[0-9]+ passing' "$log" | grep -Eo '[0-9]+' | tail -1)
failed=$(grep -Eo '^ *[0-9]+ failing' "$log" | grep -Eo '[0-9]+' | tail -1)
pending=$(grep -Eo '^ *[0-9]+ pending' "$log" | grep -Eo '[0-9]+' | tail -1)
rm -f "$log"
echo "[test] wall time: $(( $(date +%s) - start )) s; result: $([ "$rc" = 0 ] && echo PASS || echo FAIL)"
echo "tests: ${passed:-0} passed, ${failed:-0} failed, ${pending:-0} skipped"
exit "$rc"
