#!/usr/bin/env bash
# Run here (a Debian machine with apt): downloads the .deb files of wick's build dependencies into
# .deps/debs, to be carried to a GPU machine that has a CUDA toolchain but no package registry.
# There, scripts/gpu-check.sh unpacks them with `dpkg -x` into .deps/root when a dependency is
# missing from the system.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps/debs
cd .deps/debs
apt-get download nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian \
  libopenblas-dev libopenblas0-pthread libopenblas-pthread-dev libopenblas0 libgfortran5 \
  libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 libicu-dev libicu72 \
  libcpp-httplib-dev libcpp-httplib0.11 libbrotli-dev libbrotli1 zlib1g-dev libssl-dev libssl3 2>/dev/null
ls
