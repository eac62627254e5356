#!/usr/bin/env bash
# Builds wick with the CUDA backend on a GPU machine, runs the CUDA tests (every op against the CPU
# backend) and a compute-sanitizer memcheck pass over a quick subset, then prints a short summary.
#
# The GPU machine has nvcc, cmake, ninja and a compiler but maybe not the dev packages wick needs
# (nlohmann-json, CLI11, GoogleTest, Google Benchmark, OpenBLAS, cpp-httplib) and no package registry. Whatever
# is missing is taken from .deps/debs (prepared by scripts/gpu-deps.sh on a machine with apt),
# unpacked into .deps/root, and handed to CMake.
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

say "machine"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nvcc --version | tail -1;
  cmake --version | head -1; ninja --version; c++ --version | head -1; } 2>&1 | tee -a "$LOG"

# ---------------------------------------------------------------- dependencies
have_header() {  # name, then the folders to look in
  local h=$1; shift
  for d in "$@"; do [ -e "$d/$h" ] && return 0; done
  return 1
}
SYS_INC=(/usr/include /usr/local/include)
BLAS_INC=(/usr/include/x86_64-linux-gnu/openblas-pthread /usr/include/openblas /usr/include /usr/local/include)
missing=()      # found by CMake packages or headers
missing_pc=()   # found through pkg-config (the tokenizer's PCRE2 and ICU, the server's cpp-httplib)
have_header nlohmann/json.hpp "${SYS_INC[@]}" || missing+=(nlohmann-json)
have_header CLI/CLI.hpp "${SYS_INC[@]}" || missing+=(CLI11)
have_header gtest/gtest.h "${SYS_INC[@]}" || missing+=(gtest)
have_header benchmark/benchmark.h "${SYS_INC[@]}" || missing+=(benchmark)
have_header cblas.h "${BLAS_INC[@]}" || missing+=(openblas)
for pc in libpcre2-8 icu-uc; do pkg-config --exists "$pc" 2>/dev/null || missing_pc+=("$pc"); done
# `wick serve`'s cpp-httplib (Debian builds it as a library) and what its pkg-config file requires.
if ! pkg-config --exists cpp-httplib 2>/dev/null; then
  missing_pc+=(cpp-httplib)
  for pc in openssl zlib libbrotlicommon; do pkg-config --exists "$pc" 2>/dev/null || missing_pc+=("$pc"); done
fi
say "missing on this machine: ${missing[*]:-} ${missing_pc[*]:-}"

CMAKE_ARGS=(-DWICK_CUDA=ON -DWICK_CUDA_ARCH=90 -DWICK_BENCH=ON -DCMAKE_BUILD_TYPE=Release)
DEPS=$ROOT/.deps/root
LIBDIR=$DEPS/usr/lib/x86_64-linux-gnu
if [ ${#missing[@]} -gt 0 ] || [ ${#missing_pc[@]} -gt 0 ]; then
  if ! ls "$ROOT"/.deps/debs/*.deb >/dev/null 2>&1; then
    say "FATAL: missing ${missing[*]:-} ${missing_pc[*]:-} and no .deps/debs/*.deb (run scripts/gpu-deps.sh, carry .deps)"
    exit 2
  fi
  # Only the packages of what is missing: their headers must not shadow the machine's own.
  globs=()
  for m in "${missing[@]}" "${missing_pc[@]}"; do
    case $m in
      nlohmann-json) globs+=("nlohmann-json3-dev_*") ;;
      CLI11) globs+=("libcli11-dev_*") ;;
      gtest) globs+=("libgtest-dev_*" "libgmock-dev_*") ;;
      benchmark) globs+=("libbenchmark*") ;;
      openblas) globs+=("libopenblas*" "libgfortran5_*") ;;
      libpcre2-8) globs+=("libpcre2-*") ;;
      icu-uc) globs+=("libicu*") ;;
      cpp-httplib) globs+=("libcpp-httplib*") ;;
      openssl) globs+=("libssl-dev_*" "libssl3_*") ;;
      zlib) globs+=("zlib1g-dev_*") ;;
      libbrotlicommon) globs+=("libbrotli*") ;;
    esac
  done
  stamp="$DEPS/.unpacked-$(echo "${globs[*]}" | md5sum | cut -c1-8)"
  if [ ! -e "$stamp" ]; then
    rm -rf "$DEPS"
    mkdir -p "$DEPS"
    for deb in $(cd "$ROOT/.deps/debs" && for g in "${globs[@]}"; do ls $g 2>/dev/null; done); do
      deb=$ROOT/.deps/debs/$deb
      if command -v dpkg >/dev/null; then
        dpkg -x "$deb" "$DEPS"
      else  # a .deb is an ar archive holding data.tar.*
        tmp=$(mktemp -d)
        (cd "$tmp" && ar x "$deb" && tar -xf data.tar.* -C "$DEPS")
        rm -rf "$tmp"
      fi
    done
    # pkg-config files name prefix=/usr: point copies of them at the unpacked tree.
    mkdir -p "$DEPS/pkgconfig"
    for f in "$LIBDIR"/pkgconfig/*.pc "$DEPS"/usr/share/pkgconfig/*.pc; do
      [ -e "$f" ] && sed -E "s|^prefix *= */usr *$|prefix=$DEPS/usr|" "$f" >"$DEPS/pkgconfig/$(basename "$f")"
    done
    touch "$stamp"
  fi
  export LD_LIBRARY_PATH="$LIBDIR:$LIBDIR/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
if [ ${#missing[@]} -gt 0 ]; then
  CMAKE_ARGS+=(-DCMAKE_PREFIX_PATH="$DEPS/usr")
  if [[ " ${missing[*]} " == *" openblas "* ]]; then
    CMAKE_ARGS+=(-DOPENBLAS_LIB="$LIBDIR/openblas-pthread/libopenblas.so"
                 -DCBLAS_INCLUDE="$DEPS/usr/include/x86_64-linux-gnu/openblas-pthread")
  fi
fi
[ ${#missing_pc[@]} -gt 0 ] && export PKG_CONFIG_PATH="$DEPS/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

# ---------------------------------------------------------------- build
say "configure"
if ! cmake -S "$ROOT" -B "$BUILD" -G Ninja "${CMAKE_ARGS[@]}" >>"$LOG" 2>&1; then
  say "configure with benchmarks failed; retrying without them"
  rm -rf "$BUILD/CMakeCache.txt" "$BUILD/CMakeFiles"  # keeps $OUT, which may live under $BUILD
  CMAKE_ARGS=("${CMAKE_ARGS[@]/-DWICK_BENCH=ON/-DWICK_BENCH=OFF}")
  cmake -S "$ROOT" -B "$BUILD" -G Ninja "${CMAKE_ARGS[@]}" >>"$LOG" 2>&1 || { tail -40 "$LOG"; say "FATAL: configure failed"; exit 3; }
fi
say "build test_cuda"
t0=$(date +%s)
if ! cmake --build "$BUILD" --target test_cuda -j"$JOBS" >"$OUT/build.log" 2>&1; then
  grep -E "error|Error" "$OUT/build.log" | head -40
  say "FATAL: build of test_cuda failed (see build.log)"
  exit 4
fi
say "built in $(( $(date +%s) - t0 )) s; warnings in wick's CUDA backend: $(grep -c 'backend/cuda.*warning' "$OUT/build.log")"

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
