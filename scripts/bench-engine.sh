#!/usr/bin/env bash
# Runs the engine micro-benchmarks and their PyTorch peer on the same machine, one device at a
# time, and prints markdown tables of medians and ratios (for bench/RESULTS.md).
# Usage: scripts/bench-engine.sh BUILD_DIR OUT_DIR [cpu] [cuda]
set -euo pipefail
build=${1:?build dir}; out=${2:?output dir}; shift 2
devices=("$@"); [ ${#devices[@]} -gt 0 ] || devices=(cpu)
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
for dev in "${devices[@]}"; do
  "$build/bench/engine_bench" --benchmark_filter="/$dev/" --benchmark_min_time=0.2 --benchmark_repetitions=3 \
    --benchmark_report_aggregates_only=true --benchmark_format=json --benchmark_out="$out/wick_$dev.json" \
    --benchmark_out_format=json >/dev/null
  python3 "$here/bench/peers/engine_peer.py" --device "$dev" --out "$out/peer_$dev.json" >/dev/null
  python3 "$here/bench/compare.py" "$out/wick_$dev.json" "$out/peer_$dev.json" --device "$dev" | tee "$out/table_$dev.md"
done
