#!/usr/bin/env bash
# Configures and builds wick into ./build (Release, ccache; CUDA when nvcc is present).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
# Paths relative to the checkout, so clones in other folders share the compiler cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(pwd)}"
# The Hub client and the HTTP server are required here (install-deps.sh installs libcurl, OpenSSL and
# cpp-httplib); elsewhere they are optional.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DWICK_HUB=ON -DWICK_SERVE=ON "$@" >/dev/null
cmake --build build -j"$jobs"
