#!/usr/bin/env bash
# Installs what wick needs to build and test on a fresh Debian 12 machine (run as root or with sudo).
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
packages=(cmake ninja-build g++ ccache pkg-config python3 python3-pip unzip
          libopenblas-dev nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
          libpcre2-dev libicu-dev libcurl4-openssl-dev libssl-dev libcpp-httplib-dev libedit-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The `wick serve` tests drive the server with the official OpenAI client, at a pinned version.
OPENAI_VERSION=3.57.0
if ! python3 -c "import openai, sys; sys.exit(openai.__version__ != '$OPENAI_VERSION')" 2>/dev/null; then
  echo "installing: openai==$OPENAI_VERSION (pip)"
  python3 -m pip install --quiet --disable-pip-version-check "openai==$OPENAI_VERSION"
fi
