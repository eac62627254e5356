#!/usr/bin/env bash
# Installs dependencies, builds wick and runs its main job.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec build/src/wick demo "$@"
