#!/usr/bin/env bash
# A kernel-work round in one device call: builds wick, its test binaries and the skinny-product
# benchmark (scripts/gpu-build.sh), makes the BF16 GGUF of bench/peers/make_gguf.py (the converter
# from .peers/, no llama.cpp build), then
#   1. the CUDA instances of the tests named by FOCUS (a gtest filter over test_ops and test_cuda),
#      once plainly and once under compute-sanitizer memcheck, and the batching engine's GPU test;
#   2. gemv_bench (the skinny products against the card's bandwidth, with its split sweep);
#   3. `wick bench` of prefill and decode at batch 1, 8 and 32 (graph replay, the figures users see);
#   4. WICK_PROFILE=1 `wick bench`: GPU time per op, eager;
#   5. ncu (when it can read the card): the time of each kernel of replayed decode steps, summed per
#      kernel name and launch shape.
# Device tool: carry [".peers", ".deps"]. Writes under $OUT (default build-gpu/profile); logs are
# packed into $OUT/logs.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${OUT:-$ROOT/build-gpu/profile}
mkdir -p "$OUT/logs"
L=$OUT/logs
WORK=$ROOT/build-peers
export PYTHONUNBUFFERED=1
export LD_LIBRARY_PATH="$ROOT/.deps/root/usr/lib/x86_64-linux-gnu:$ROOT/.deps/root/usr/lib/x86_64-linux-gnu/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
START=$SECONDS
say() { echo "== [$((SECONDS - START)) s] $*"; }
FOCUS=${FOCUS:-'*'}
MODEL=$WORK/models/qwen2.5-0.5b-shape-bf16.gguf
(
  mkdir -p "$WORK"
  bash bench/peers/llama_cpp.sh unpack .peers/llama.cpp.tar.xz "$WORK/llama.cpp" &&
    python3 bench/peers/make_gguf.py --out "$WORK/models" --llama-cpp "$WORK/llama.cpp" --types bf16
) >"$L/make_gguf.log" 2>&1 &
gguf=$!
JOBS=16 bash scripts/gpu-build.sh "$L/build" wick test_ops test_cuda test_serve gemv_bench >"$L/build.out" 2>&1
rc=$?
say "built (rc $rc)"
pack() { tar -czf "$OUT/logs.tar.gz" -C "$OUT" logs 2>/dev/null; }
[ $rc -ne 0 ] && { grep -E "error" "$L/build/build.log" | head -30; pack; exit $rc; }
B=build-gpu
filter="$FOCUS-*/cpu"; [ "${CPU_TOO:-0}" = 1 ] && filter="$FOCUS"
[[ $FOCUS == *-* ]] && filter="$FOCUS:*/cpu"
for t in test_ops test_cuda; do
  timeout 300 $B/tests/$t --gtest_filter="$filter" >"$L/$t.log" 2>&1
  say "$t rc $?: $(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$L/$t.log" | tr '\n' ' ')"
  grep -E "^\[  FAILED  \].*\(|Failure|error" "$L/$t.log" | head -20
done
if [ "${MEMCHECK:-1}" = 1 ]; then
  for t in test_ops test_cuda; do
    timeout 200 compute-sanitizer --tool memcheck $B/tests/$t --gtest_filter="$filter" >"$L/memcheck_$t.log" 2>&1
    say "memcheck $t rc $?: $(grep -E 'ERROR SUMMARY' "$L/memcheck_$t.log" | tail -1)"
  done
fi
timeout 200 $B/tests/test_serve --gtest_filter='BatchingEngine.*Gpu*' >"$L/serve-gpu.log" 2>&1
say "serve gpu test rc $?"
grep -E "^\[  (PASSED|FAILED) |Failure|Expected|Which is|actual|error|request" "$L/serve-gpu.log" | head -20
[ "${GEMV:-1}" = 1 ] && timeout 90 $B/bench/gemv_bench >"$L/gemv_bench.txt" 2>&1
say "gemv_bench rc $?"
wait $gguf || { tail -20 "$L/make_gguf.log"; pack; exit 5; }
W=$B/bin/wick
timeout 120 $W bench --model "$MODEL" --device cuda -p 128,512 -n 128 -b 1,8,32 -r 2 >"$L/bench.txt" 2>&1
say "bench done"
WICK_PROFILE=1 timeout 120 $W bench --model "$MODEL" --device cuda -p 0 -n 32 -b 1 -r 1 >"$L/profile_b1.txt" 2>&1
say "profile done"
if command -v ncu >/dev/null && [ "${NCU:-1}" = 1 ]; then
  timeout 200 ncu --clock-control none --metrics gpu__time_duration.sum --launch-skip ${NCU_SKIP:-1500} \
    --launch-count ${NCU_COUNT:-1000} --csv \
    $W bench --model "$MODEL" --device cuda -p 0 -n 8 -b 1 -r 1 >"$L/ncu_b1.csv" 2>"$L/ncu.err"
  say "ncu rc $?"
fi
pack
echo "================ gemv_bench (tail)"
tail -n 45 "$L/gemv_bench.txt"
echo "================ bench"
tail -n 12 "$L/bench.txt"
echo "================ profile b1 (head)"
sed -n '/GPU time by op:/,/GPU time by op and/p' "$L/profile_b1.txt" | head -24
echo "================ ncu per kernel (sorted by total; times in us)"
python3 - "$L/ncu_b1.csv" <<'PY'
import csv, sys, collections
agg = collections.defaultdict(lambda: [0.0, 0])
try:
    lines = [l for l in open(sys.argv[1]) if l.startswith('"')]
    for r in csv.DictReader(lines):
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        unit = r.get("Metric Unit", "")
        v = float(r["Metric Value"].replace(",", "")) * {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0,
                                                            "ms": 1e3, "msecond": 1e3}.get(unit, 1.0)
        k = r.get("Kernel Name", "")[:80] + " <" + r.get("Grid Size", "") + "x" + r.get("Block Size", "") + ">"
        agg[k][0] += v
        agg[k][1] += 1
except Exception as e:
    print("no ncu data:", e)
rows = sorted(((t, n, k) for k, (t, n) in agg.items()), reverse=True)
print(f"total {sum(r[0] for r in rows):.0f} us over {sum(r[1] for r in rows)} kernels")
for t, n, k in rows[:28]:
    print(f"{t:8.0f} {n:5d} x {t / n:7.2f}  {k}")
PY
