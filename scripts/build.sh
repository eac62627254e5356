#!/usr/bin/env bash
# Configures and builds wick into ./build (Release, ccache; CUDA when nvcc is present).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$jobs"
