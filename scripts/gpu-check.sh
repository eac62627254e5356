#!/usr/bin/env bash
# Builds wick with the CUDA backend on a GPU machine (scripts/gpu-build.sh: sm_90, dependencies
# missing there taken from .deps/debs), runs the CUDA tests and a compute-sanitizer memcheck pass
# over them, then prints a short summary. The CUDA tests are the cuda instances of the
# device-parameterised op and engine tests (tests/ops, tests/engine: the same float64 and
# finite-difference checks as on the CPU) and what only a GPU can check (tests/cuda).
#
# Usage: scripts/gpu-check.sh [gtest filter]      Logs go to $OUT (or build-gpu/check).
# The filter (default: all) selects among the CUDA tests of test_ops, test_engine and test_cuda; the
# CPU instances of device-parameterised tests (names ending in /cpu) are always left out.
# MEMCHECK_TIMEOUT=seconds bounds the sanitizer pass over all three (default 420; 0 skips it),
# MEMCHECK_FILTER is its gtest filter (default: every CUDA test but the out-of-memory one and the
# finite-difference gradient tests, whose thousands of small launches re-run kernels the others cover),
# TEST_TIMEOUT bounds each test binary (default 600); BUILD_ALL=0 skips building the rest of the
# tree (CLI, other tests, benchmarks).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${OUT:-$ROOT/build-gpu/check}  # under build-gpu/, which git ignores
mkdir -p "$OUT"
FILTER=${1:-*}
TESTS=(test_ops test_engine test_cuda)
BUILD=$ROOT/build-gpu
JOBS=$(nproc)
LOG=$OUT/gpu-check.log
: >"$LOG"
say() { echo "== $*" | tee -a "$LOG"; }

# ---------------------------------------------------------------- build
bash scripts/gpu-build.sh "$OUT" "${TESTS[@]}" || exit $?
cat "$OUT/gpu-build.log" >>"$LOG"
# Libraries that gpu-build.sh took from .deps (if any) are found at run time this way.
export LD_LIBRARY_PATH="$ROOT/.deps/root/usr/lib/x86_64-linux-gnu:$ROOT/.deps/root/usr/lib/x86_64-linux-gnu/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# A gtest filter without the CPU instances of the device-parameterised tests.
cuda_only() {
  if [[ $1 == *-* ]]; then echo "$1:*/cpu"; else echo "$1-*/cpu"; fi
}

# ---------------------------------------------------------------- tests
test_rc=0
for t in "${TESTS[@]}"; do
  say "$t"
  timeout "${TEST_TIMEOUT:-600}" "$BUILD/tests/$t" --gtest_filter="$(cuda_only "$FILTER")" \
    --gtest_output=xml:"$OUT/$t.xml" >"$OUT/$t.log" 2>&1
  rc=$?
  [ $rc -ne 0 ] && test_rc=$rc
  grep -E "^\[  (FAILED|PASSED|SKIPPED) |Failure|error:|^\[ *OK *\].*\([0-9]{4,} ms\)" "$OUT/$t.log" | head -80
done

say "compute-sanitizer memcheck"
# All but the 10 TiB request, which the sanitizer reports, and the finite-difference tests.
SAN_FILTER=${MEMCHECK_FILTER:-'*-CudaRuntime.OutOfMemoryIsCatchable:*.Gradients/*:*.UnaryGradients/*:*.BinaryGradients/*:*.CrossEntropyGradients/*'}
SAN_FILTER=$(cuda_only "$SAN_FILTER")
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
SAN_TIMEOUT=${MEMCHECK_TIMEOUT:-420}
if [ "$SAN_TIMEOUT" = 0 ]; then
  san_rc=0
  san_summary="skipped (MEMCHECK_TIMEOUT=0)"
elif [ -x "$SAN" ]; then
  # One deadline for the three binaries together.
  san_rc=0
  san_summary=""
  san_end=$(( $(date +%s) + SAN_TIMEOUT ))
  : >"$OUT/memcheck.log"
  for t in "${TESTS[@]}"; do
    left=$(( san_end - $(date +%s) ))
    if [ $left -le 0 ]; then
      san_rc=124
      san_summary="$san_summary $t: not reached in $SAN_TIMEOUT s;"
      continue
    fi
    # A binary none of whose tests the filter selects is skipped (the sanitizer fails a program that
    # never touches the GPU).
    if ! "$BUILD/tests/$t" --gtest_list_tests --gtest_filter="$SAN_FILTER" 2>/dev/null | grep -q '^  '; then
      san_summary="$san_summary $t: no test selected;"
      continue
    fi
    timeout "$left" "$SAN" --tool memcheck --error-exitcode 9 "$BUILD/tests/$t" --gtest_filter="$SAN_FILTER" \
      >"$OUT/memcheck-$t.log" 2>&1
    rc=$?
    cat "$OUT/memcheck-$t.log" >>"$OUT/memcheck.log"
    summary=$(grep -E "ERROR SUMMARY" "$OUT/memcheck-$t.log" | tail -1)
    [ $rc -eq 124 ] && summary="timed out after $SAN_TIMEOUT s in all ($summary)"
    [ $rc -ne 0 ] && san_rc=$rc
    san_summary="$san_summary $t: $summary;"
  done
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
  for t in "${TESTS[@]}"; do
    echo "$t: $(grep -E '^\[  PASSED  \]' "$OUT/$t.log" | tail -1) $(grep -E '^\[  FAILED  \] [0-9]+ test' "$OUT/$t.log" | tail -1) $(grep -E '^\[  SKIPPED \] [0-9]+ test' "$OUT/$t.log" | tail -1)"
    grep -E '^\[  FAILED  \] [A-Za-z]' "$OUT/$t.log" | grep -v ' ms)$' | sort -u | head -30
  done
  echo "tests rc=$test_rc"
  echo "memcheck (rc=$san_rc): $san_summary"
  echo "whole tree built: $all_built"
} | tee -a "$LOG"
[ $test_rc -eq 0 ] && [ $san_rc -eq 0 ]
