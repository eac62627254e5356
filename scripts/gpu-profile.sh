#!/usr/bin/env bash
# Where a decode step's GPU time goes, in one device call: builds wick (scripts/gpu-build.sh), makes
# the BF16 GGUF of bench/peers/make_gguf.py (the converter from .peers/, no llama.cpp build), then
#   1. `wick bench` of decode batch 1 and 8 (graph replay, the figures users see);
#   2. WICK_PROFILE=1 `wick bench`: GPU time per op, eager;
#   3. ncu (when it can read the card): the time of each kernel of the replayed decode steps,
#      summed per kernel name, so launch gaps show as the difference to the step's time.
# Device tool: carry [".peers", ".deps"]. Writes under $OUT (default build-gpu/profile).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${OUT:-$ROOT/build-gpu/profile}
mkdir -p "$OUT"
WORK=$ROOT/build-peers
export PYTHONUNBUFFERED=1
export LD_LIBRARY_PATH="$ROOT/.deps/root/usr/lib/x86_64-linux-gnu:$ROOT/.deps/root/usr/lib/x86_64-linux-gnu/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
START=$SECONDS
say() { echo "== [$((SECONDS - START)) s] $*"; }
TYPES=${TYPES:-bf16}
MODEL=$WORK/models/qwen2.5-0.5b-shape-${TYPES%%,*}.gguf
(
  mkdir -p "$WORK"
  bash bench/peers/llama_cpp.sh unpack .peers/llama.cpp.tar.xz "$WORK/llama.cpp" &&
    python3 bench/peers/make_gguf.py --out "$WORK/models" --llama-cpp "$WORK/llama.cpp" --types bf16
) >"$OUT/make_gguf.log" 2>&1 &
gguf=$!
JOBS=16 bash scripts/gpu-build.sh "$OUT/build" wick ${EXTRA_TARGETS:-} >"$OUT/build.out" 2>&1
rc=$?
say "wick built (rc $rc)"
[ $rc -ne 0 ] && { grep -E "error" "$OUT/build/build.log" | head -30; exit $rc; }
wait $gguf || { tail -20 "$OUT/make_gguf.log"; exit 5; }
say "model made: $(ls -la "$MODEL" | awk '{print $5}') bytes"
W=build-gpu/bin/wick
timeout 120 $W bench --model "$MODEL" --device cuda -p 128,512 -n 128 -b 1,8,32 -r 2 >"$OUT/bench.txt" 2>&1
say "bench done"
WICK_PROFILE=1 timeout 120 $W bench --model "$MODEL" --device cuda -p 0 -n 32 -b 1 -r 1 >"$OUT/profile_b1.txt" 2>&1
WICK_PROFILE=1 timeout 120 $W bench --model "$MODEL" --device cuda -p 512 -n 0 -b 1 -r 1 >"$OUT/profile_pp512.txt" 2>&1
say "profiles done"
if [ -x build-gpu/tests/test_serve ]; then
  timeout 200 build-gpu/tests/test_serve --gtest_filter='BatchingEngine.*Gpu*' >"$OUT/serve-gpu.log" 2>&1
  say "serve gpu test rc $?: $(grep -E '^\[  (PASSED|FAILED) ' "$OUT/serve-gpu.log" | tr '\n' ' ')"
fi
if [ -x build-gpu/tests/test_cuda ]; then
  timeout 200 build-gpu/tests/test_cuda --gtest_filter='CudaRunner*:Cuda*Inference*' >"$OUT/cuda-runner.log" 2>&1
  say "cuda runner tests rc $?: $(grep -E '^\[  (PASSED|FAILED) ' "$OUT/cuda-runner.log" | tr '\n' ' ')"
fi
if command -v ncu >/dev/null && [ "${NCU:-1}" = 1 ]; then
  # A 4-token decode after the warm-up: skip the capture and profile ~3 replayed steps.
  timeout 240 ncu --clock-control none --metrics gpu__time_duration.sum --launch-skip ${NCU_SKIP:-1500} \
    --launch-count ${NCU_COUNT:-1200} --csv \
    $W bench --model "$MODEL" --device cuda -p 0 -n 8 -b 1 -r 1 >"$OUT/ncu_b1.csv" 2>"$OUT/ncu.err"
  say "ncu rc $?"
fi
echo "================ bench"
cat "$OUT/bench.txt" | tail -20
echo "================ profile b1 (head)"
head -45 "$OUT/profile_b1.txt"
echo "================ profile pp512 (head)"
head -30 "$OUT/profile_pp512.txt" | tail -25
echo "================ ncu per kernel (sorted by total)"
python3 - "$OUT/ncu_b1.csv" <<'PY'
import csv, sys, collections
agg = collections.defaultdict(lambda: [0.0, 0])
try:
    lines = [l for l in open(sys.argv[1]) if l.startswith('"')]
    for r in csv.DictReader(lines):
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        unit = r.get("Metric Unit", "")
        v = float(r["Metric Value"].replace(",", "")) * {"nsecond": 1e-3, "usecond": 1.0, "msecond": 1e3}.get(unit, 1.0)
        k = r.get("Kernel Name", "")[:100] + "  <" + r.get("Grid Size", "") + "x" + r.get("Block Size", "") + ">"
        agg[k][0] += v
        agg[k][1] += 1
except Exception as e:
    print("no ncu data:", e)
rows = sorted(((t, n, k) for k, (t, n) in agg.items()), reverse=True)
print(f"total {sum(r[0] for r in rows):.0f} us over {sum(r[1] for r in rows)} kernels")
for t, n, k in rows[:40]:
    print(f"{t:9.0f} us {n:6d} x {t / n:7.2f} us  {k}")
PY
