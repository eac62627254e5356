#!/usr/bin/env bash
# Installs dependencies, fetches the small real models, builds and runs every test (ctest).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if [ -x scripts/fetch-models.sh ]; then scripts/fetch-models.sh models; fi
scripts/build.sh
cd build && ctest --output-on-failure -j"$(nproc)"
