#!/usr/bin/env bash
# Builds wick with the CUDA backend on a GPU machine (scripts/gpu-build.sh: sm_90, dependencies
# missing there taken from .deps/debs), runs the CUDA tests (every op against the CPU backend) and a
# compute-sanitizer memcheck pass over a quick subset, then prints a short summary.
#
# Usage: scripts/gpu-check.sh [gtest filter]      Logs go to $OUT (or build-gpu/check).
# MEMCHECK_TIMEOUT=seconds bounds the sanitizer pass (default 420; 0 skips it), MEMCHECK_FILTER is
# its gtest filter (default: every CUDA test but the out-of-memory one), TEST_TIMEOUT the
# tests (default 600); BUILD_ALL=0 skips building the rest of the tree (CLI, other tests, benchmarks).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${OUT:-$ROOT/build-gpu/check}  # under build-gpu/, which git ignores
mkdir -p "$OUT"
FILTER=${1:-*}
BUILD=$ROOT/build-gpu
JOBS=$(nproc)
LOG=$OUT/gpu-check.log
: >"$LOG"
say() { echo "== $*" | tee -a "$LOG"; }

# ---------------------------------------------------------------- build
bash scripts/gpu-build.sh "$OUT" test_cuda || exit $?
cat "$OUT/gpu-build.log" >>"$LOG"
# Libraries that gpu-build.sh took from .deps (if any) are found at run time this way.
export LD_LIBRARY_PATH="$ROOT/.deps/root/usr/lib/x86_64-linux-gnu:$ROOT/.deps/root/usr/lib/x86_64-linux-gnu/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# ---------------------------------------------------------------- tests
say "test_cuda"
timeout "${TEST_TIMEOUT:-600}" "$BUILD/tests/test_cuda" --gtest_filter="$FILTER" --gtest_output=xml:"$OUT/test_cuda.xml" >"$OUT/test_cuda.log" 2>&1
test_rc=$?
grep -E "^\[  (FAILED|PASSED|SKIPPED) |Failure|error:|^\[ *OK *\].*\([0-9]{4,} ms\)" "$OUT/test_cuda.log" | head -80

say "compute-sanitizer memcheck"
# All but the 10 TiB request, which the sanitizer reports; MEMCHECK_FILTER narrows it.
SAN_FILTER=${MEMCHECK_FILTER:-'*-CudaRuntime.OutOfMemoryIsCatchable'}
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
SAN_TIMEOUT=${MEMCHECK_TIMEOUT:-420}
if [ "$SAN_TIMEOUT" = 0 ]; then
  san_rc=0
  san_summary="skipped (MEMCHECK_TIMEOUT=0)"
elif [ -x "$SAN" ]; then
  timeout "$SAN_TIMEOUT" "$SAN" --tool memcheck --error-exitcode 9 "$BUILD/tests/test_cuda" --gtest_filter="$SAN_FILTER" \
    >"$OUT/memcheck.log" 2>&1
  san_rc=$?
  san_summary=$(grep -E "ERROR SUMMARY" "$OUT/memcheck.log" | tail -1)
  [ $san_rc -eq 124 ] && san_summary="timed out after $SAN_TIMEOUT s ($san_summary)"
else
  san_rc=-1
  san_summary="compute-sanitizer not found"
fi

# The rest of the tree (CLI, other tests, benchmarks) is built too, but does not fail the check.
all_built=skipped
if [ "${BUILD_ALL:-1}" = 1 ]; then
  cmake --build "$BUILD" -j"$JOBS" -- -k 0 >"$OUT/build-all.log" 2>&1 && all_built=yes || all_built=no
fi

# ---------------------------------------------------------------- summary
say "summary"
{
  echo "device: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
  echo "test_cuda (rc=$test_rc): $(grep -E '^\[  PASSED  \]' "$OUT/test_cuda.log" | tail -1) $(grep -E '^\[  FAILED  \] [0-9]+ test' "$OUT/test_cuda.log" | tail -1) $(grep -E '^\[  SKIPPED \] [0-9]+ test' "$OUT/test_cuda.log" | tail -1)"
  grep -E '^\[  FAILED  \] [A-Za-z]' "$OUT/test_cuda.log" | grep -v ' ms)$' | sort -u | head -30
  echo "memcheck (rc=$san_rc): $san_summary"
  echo "whole tree built: $all_built"
} | tee -a "$LOG"
[ $test_rc -eq 0 ] && [ $san_rc -eq 0 ]
