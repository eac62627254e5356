#!/usr/bin/env bash
# The attention kernels on a GPU machine: builds test_ops, cuda_kernels_bench and model_bench
# (scripts/gpu-build.sh), runs the attention tests, times wick's attention against PyTorch's
# scaled_dot_product_attention at the training shape (bench/peers/attention_peer.py), then one
# training step benchmark (model_bench --train) with the per-op GPU profile, and a compute-sanitizer
# memcheck pass over the attention and RoPE tests; prints a summary last.
#
# Usage: scripts/gpu-attention.sh   (device tool: carry [".deps"])
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build-gpu/attention}
mkdir -p "$OUT"
DEPS=$(pwd)/.deps/root/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH="$DEPS:$DEPS/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bash scripts/gpu-build.sh "$OUT" test_ops cuda_kernels_bench model_bench >"$OUT/build.out" 2>&1 ||
  { tail -5 "$OUT/build.out"; grep -E "error" "$OUT/build.log" | head -30; exit 4; }
timeout 300 build-gpu/tests/test_ops --gtest_filter='Attention*:*Attention*:Rope*:Lora*' >"$OUT/tests.log" 2>&1
tests_rc=$?
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
timeout 240 "$SAN" --tool memcheck --error-exitcode 9 build-gpu/tests/test_ops \
  --gtest_filter='Attention.HalfPrecisionGradients/cuda:Attention.KernelShapes/cuda:Rope.*/cuda' >"$OUT/memcheck.log" 2>&1
memcheck_rc=$?
timeout 120 build-gpu/bench/cuda_kernels_bench --benchmark_filter=Attention >"$OUT/kernels.txt" 2>&1
timeout 120 python3 bench/peers/attention_peer.py >"$OUT/peer.txt" 2>&1
timeout 300 build-gpu/bench/model_bench --device cuda --dtype bf16 --train >"$OUT/train.txt" 2>&1
WICK_PROFILE=1 timeout 300 build-gpu/bench/model_bench --device cuda --dtype bf16 --train >"$OUT/profile.txt" 2>&1
echo "================ attention summary"
grep -E "^\[  (PASSED|FAILED) |^\[  FAILED  \]|Failure" "$OUT/tests.log" | head -20
echo "tests rc $tests_rc; memcheck rc $memcheck_rc: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1)"
grep -E "Attention" "$OUT/kernels.txt"
cat "$OUT/peer.txt" | tail -3
tail -2 "$OUT/train.txt"
grep -iE "attention|total" "$OUT/profile.txt" | head -8
