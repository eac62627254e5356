#!/usr/bin/env bash
# Everything done on a GPU machine in one go: the CUDA check (scripts/gpu-check.sh: build for
# sm_90, CUDA tests against the CPU backend, compute-sanitizer memcheck), the engine benchmarks
# with their PyTorch peers on the GPU and the CPU, and the model fixtures made with transformers
# and peft. Logs and results are packed into $OUT/results.tar.gz; a summary is printed last.
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

timeout 240 python3 scripts/golden/models_golden.py "$WORK/models" >"$WORK/models.out" 2>&1
models_rc=$?

tar -czf "$FINAL_OUT/results.tar.gz" -C "$WORK" . 2>/dev/null
echo "================ gpu-run summary"
grep -A20 "== summary" "$WORK/check.out" | tail -n +2
echo "--- benchmarks (rc=$bench_rc)"
cat "$WORK"/bench/table_*.md 2>/dev/null || tail -5 "$WORK/bench.out" 2>/dev/null
echo "--- model fixtures (rc=$models_rc): $(tail -1 "$WORK/models.out")"
echo "gpu-check rc=$check_rc"
