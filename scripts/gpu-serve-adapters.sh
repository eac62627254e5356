#!/usr/bin/env bash
# Serving with mixed adapters on the GPU box in one device call, without the llama.cpp build:
# makes the BF16 GGUF of the random Qwen2.5-0.5B-shape model with llama.cpp's converter (Python
# only, from the carried source) while wick builds, runs the batched-LoRA op tests (float64 reference)
# with a compute-sanitizer memcheck of their kernels and the whole of test_cuda, then `wick bench`
# at batch 32 with no adapter and with 8, then bench/peers/serve_bench.sh --skip-llama: wick serve at
# 32 streaming clients without adapters, then the same load spread over 8 adapters.
#   bash scripts/gpu-serve-adapters.sh [--commit HASH]     (device tool: carry [".peers", ".deps"])
# NO_NCU=1 leaves out the Nsight Compute pass over the adapted steps.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
COMMIT=""
[ "${1:-}" = --commit ] && COMMIT=${2:?--commit HASH}
OUT=${OUT:-$ROOT/build-gpu/serve-adapters}
WORK=$ROOT/build-peers
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1
export LD_LIBRARY_PATH="$ROOT/.deps/root/usr/lib/x86_64-linux-gnu:$ROOT/.deps/root/usr/lib/x86_64-linux-gnu/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
START=$SECONDS
say() { echo "== [$((SECONDS - START)) s] $*"; }

bash bench/peers/llama_cpp.sh unpack .peers/llama.cpp.tar.xz "$WORK/llama.cpp" >"$OUT/unpack.log" 2>&1 ||
  { say "FATAL: unpack failed"; exit 3; }
python3 bench/peers/make_gguf.py --out "$WORK/models" --llama-cpp "$WORK/llama.cpp" --types bf16 >"$OUT/make_gguf.log" 2>&1 &
gguf=$!
commit_args=()
[ -n "$COMMIT" ] && commit_args=(-- -DWICK_COMMIT="$COMMIT")
bash scripts/gpu-build.sh "$OUT/build" wick test_ops test_cuda "${commit_args[@]}" >"$OUT/build.out" 2>&1
rc=$?
say "wick built (rc $rc)"
[ $rc -ne 0 ] && { grep -E "error" "$OUT/build/build.log" | head -30; exit $rc; }
timeout 120 build-gpu/tests/test_ops --gtest_filter='LoraGather*/cuda*' >"$OUT/test_ops.log" 2>&1
t1=$?
timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/tests/test_ops --gtest_filter='LoraGather*/cuda*' \
  >"$OUT/memcheck.log" 2>&1
t3=$?
say "tests: LoraGather rc $t1 ($(grep -E '^\[  (PASSED|FAILED) ' "$OUT/test_ops.log" | tr '\n' ' ')), memcheck rc $t3 ($(grep 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1))"
grep -E "FAILED|Failure" "$OUT/test_ops.log" | head -20
timeout 300 build-gpu/tests/test_cuda >"$OUT/test_cuda.log" 2>&1
t2=$?
say "test_cuda rc $t2 ($(grep -E '^\[  (PASSED|FAILED) ' "$OUT/test_cuda.log" | tr '\n' ' '))"
grep -E "FAILED|Failure" "$OUT/test_cuda.log" | head -20
wait $gguf || { tail -20 "$OUT/make_gguf.log"; say "FATAL: the GGUF was not made"; exit 4; }
say "BF16 GGUF made"
for a in 0 8; do
  timeout 90 build-gpu/bin/wick bench --model "$WORK/models/qwen2.5-0.5b-shape-bf16.gguf" --device cuda -p 0 -n 64 \
    -b 32 -r 3 --adapters $a >"$OUT/bench-adapters-$a.txt" 2>&1
  echo "wick bench b32, $a adapters: $(grep -E '^\| tg' "$OUT/bench-adapters-$a.txt")"
done
# Each kernel's own duration in the adapted steps (Nsight Compute runs them one at a time, so launch
# gaps and overlap are not in these figures); the whole report stays in $OUT/ncu.txt.
if [ "${NO_NCU:-0}" != 1 ] && command -v ncu >/dev/null; then
  timeout 150 ncu --clock-control none -k regex:'gather|shrink|expand|skinny|paged|attention|norm|swiglu|nvjet|gemm|embed|sample' \
    --launch-skip 200 --launch-count 200 --print-summary per-kernel \
    --metrics gpu__time_duration.sum build-gpu/bin/wick bench --model "$WORK/models/qwen2.5-0.5b-shape-bf16.gguf" \
    --device cuda -p 0 -n 4 -b 32 -r 1 --adapters 8 >"$OUT/ncu.txt" 2>&1
  say "ncu rc $?"
fi
OUT=$OUT bash bench/peers/serve_bench.sh --skip-llama --clients 32 --requests 4 --adapters 8 --adapter-clients 32 \
  --deadline 300 ${COMMIT:+--commit "$COMMIT"} >"$OUT/serve.out" 2>&1
say "serve_bench rc $?"
tail -n 12 "$OUT/serve.out"
[ $t1 -eq 0 ] && [ $t2 -eq 0 ] && [ $t3 -eq 0 ]
