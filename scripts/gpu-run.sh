#!/usr/bin/env bash
# Everything done on a GPU machine in one go: the CUDA check (scripts/gpu-check.sh: build for
# sm_90, the CUDA tests, compute-sanitizer memcheck), the engine benchmarks
# with their PyTorch peers on the GPU and the CPU, and the model benchmarks with transformers.
# (The model fixtures of tests/data/models come from scripts/golden/models_golden.py.)
# Logs and results are packed into $OUT/results.tar.gz; a summary is printed last.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
FINAL_OUT=${OUT:-$ROOT/gpu-out}
WORK=$(mktemp -d)
mkdir -p "$FINAL_OUT"
export OUT=$WORK
export PYTHONUNBUFFERED=1

bash scripts/gpu-check.sh "${1:-*}" >"$WORK/check.out" 2>&1
check_rc=$?
tail -12 "$WORK/check.out"

bench_rc=skipped
if [ -x build-gpu/bench/engine_bench ]; then
  # The carried libraries (if any) are found the way gpu-check.sh found them.
  export LD_LIBRARY_PATH="$ROOT/.deps/root/usr/lib/x86_64-linux-gnu:$ROOT/.deps/root/usr/lib/x86_64-linux-gnu/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  timeout 420 bash scripts/bench-engine.sh build-gpu "$WORK/bench" cuda cpu >"$WORK/bench.out" 2>&1
  bench_rc=$?
fi

fused_rc=skipped
if [ -x build-gpu/bench/fused_bench ]; then
  timeout 300 build-gpu/bench/fused_bench --benchmark_filter=/cuda --benchmark_min_time=0.1 --benchmark_repetitions=3 \
    --benchmark_report_aggregates_only=true --benchmark_out="$WORK/fused_cuda.json" --benchmark_out_format=json >/dev/null 2>"$WORK/fused.err"
  fused_rc=$?
  python3 bench/fused_table.py "$WORK/fused_cuda.json" --device cuda >"$WORK/fused_table.md" 2>>"$WORK/fused.err"
fi

model_rc=skipped
if [ -x build-gpu/bench/model_bench ]; then
  { timeout 240 build-gpu/bench/model_bench --device cuda --dtype bf16 && \
    timeout 300 python3 bench/peers/model_peer.py --device cuda --dtype bf16; } >"$WORK/model_bench.out" 2>"$WORK/model_bench.err"
  model_rc=$?
fi

tar -czf "$FINAL_OUT/results.tar.gz" -C "$WORK" . 2>/dev/null
echo "================ gpu-run summary"
grep -A20 "== summary" "$WORK/check.out" | tail -n +2
echo "--- benchmarks (rc=$bench_rc)"
cat "$WORK"/bench/table_*.md 2>/dev/null || tail -5 "$WORK/bench.out" 2>/dev/null
echo "--- fused kernels against their compositions (rc=$fused_rc)"
cat "$WORK/fused_table.md" 2>/dev/null; tail -3 "$WORK/fused.err" 2>/dev/null
echo "--- model benchmarks (rc=$model_rc): wick, then transformers"
cat "$WORK/model_bench.out" 2>/dev/null; tail -3 "$WORK/model_bench.err" 2>/dev/null
echo "gpu-check rc=$check_rc"
