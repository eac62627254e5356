#!/usr/bin/env bash
# Configures and builds wick with the CUDA backend (sm_90) into build-gpu/ on a GPU machine, then
# builds the named targets. Used by scripts/gpu-check.sh and bench/peers/decode_bench.sh.
#
# The GPU machine has nvcc, cmake, ninja and a compiler but maybe not the dev packages wick needs
# (nlohmann-json, CLI11, GoogleTest, Google Benchmark, OpenBLAS, cpp-httplib) and no package registry. Whatever
# is missing is taken from .deps/debs (prepared by scripts/gpu-deps.sh on a machine with apt),
# unpacked into .deps/root, and handed to CMake. Programs built against those libraries find them
# with LD_LIBRARY_PATH=.deps/root/usr/lib/x86_64-linux-gnu:.deps/root/usr/lib/x86_64-linux-gnu/openblas-pthread.
#
# Usage: scripts/gpu-build.sh LOGDIR TARGET... [-- CMAKE_ARG...]
#   Logs: LOGDIR/gpu-build.log (machine, configure), LOGDIR/build.log (the build). JOBS=N sets the
#   build's parallelism (default: every core). Exit 2: dependencies missing, 3: configure failed,
#   4: build failed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LOGDIR=${1:?usage: gpu-build.sh LOGDIR TARGET... [-- CMAKE_ARG...]}
shift
TARGETS=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do TARGETS+=("$1"); shift; done
[ $# -gt 0 ] && shift
EXTRA_CMAKE_ARGS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || { echo "gpu-build.sh: name at least one target" >&2; exit 2; }
mkdir -p "$LOGDIR"
BUILD=$ROOT/build-gpu
JOBS=${JOBS:-$(nproc)}
LOG=$LOGDIR/gpu-build.log
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

# WICK_COMMIT is reset unless given (a copy of the tree without .git reports the commit it is told).
CMAKE_ARGS=(-DWICK_CUDA=ON -DWICK_CUDA_ARCH=90 -DWICK_BENCH=ON -DCMAKE_BUILD_TYPE=Release -DWICK_COMMIT= "${EXTRA_CMAKE_ARGS[@]}")
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

# NCCL: the CUDA installation may lack it; PyTorch's wheel nvidia-nccl-cu13 has it.
if [ -z "${NCCL_ROOT:-}" ] && ! ls /usr/local/cuda/include/nccl.h >/dev/null 2>&1; then
  nccl_dir=$(python3 -c 'import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__) if nvidia.nccl.__file__ else list(nvidia.nccl.__path__)[0])' 2>/dev/null)
  [ -n "$nccl_dir" ] && [ -e "$nccl_dir/include/nccl.h" ] && export NCCL_ROOT=$nccl_dir &&
    export LD_LIBRARY_PATH="$nccl_dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
say "NCCL: ${NCCL_ROOT:-from the CUDA installation, if there}"

# ---------------------------------------------------------------- build
say "configure"
if ! cmake -S "$ROOT" -B "$BUILD" -G Ninja "${CMAKE_ARGS[@]}" >>"$LOG" 2>&1; then
  say "configure with benchmarks failed; retrying without them"
  rm -rf "$BUILD/CMakeCache.txt" "$BUILD/CMakeFiles"  # keeps logs that may live under $BUILD
  CMAKE_ARGS=("${CMAKE_ARGS[@]/-DWICK_BENCH=ON/-DWICK_BENCH=OFF}")
  cmake -S "$ROOT" -B "$BUILD" -G Ninja "${CMAKE_ARGS[@]}" >>"$LOG" 2>&1 || { tail -40 "$LOG"; say "FATAL: configure failed"; exit 3; }
fi
say "build ${TARGETS[*]}"
t0=$(date +%s)
if ! cmake --build "$BUILD" --target "${TARGETS[@]}" -j"$JOBS" >"$LOGDIR/build.log" 2>&1; then
  grep -E "error|Error" "$LOGDIR/build.log" | head -40
  say "FATAL: build of ${TARGETS[*]} failed (see build.log)"
  exit 4
fi
say "built in $(( $(date +%s) - t0 )) s; warnings in wick's CUDA backend: $(grep -c 'backend/cuda.*warning' "$LOGDIR/build.log")"
