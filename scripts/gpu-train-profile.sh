#!/usr/bin/env bash
# The LoRA training step on a GPU machine, for work on its speed: builds the CUDA model tests, the
# stacked-projection tests, the op tests and model_bench (scripts/gpu-build.sh), runs the tests that
# compare CUDA training with the CPU and the op tests of the kernels a step uses (OPS_FILTER), then model_bench --train in the modes named by TRAIN_MODES (default
# "eager qv q4_0 checkpoint lazy", run by scripts/gpu-train-bench.sh) and one profiled eager step
# (WICK_PROFILE=1: GPU time by op and by op and shape); prints a summary last.
#
# Usage: scripts/gpu-train-profile.sh   (device tool: carry [".deps"])
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build-gpu/train-profile}
mkdir -p "$OUT"
DEPS=$(pwd)/.deps/root/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH="$DEPS:$DEPS/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bash scripts/gpu-build.sh "$OUT" test_ops test_cuda test_models model_bench >"$OUT/build.out" 2>&1 ||
  { tail -5 "$OUT/build.out"; grep -E "error" "$OUT/build.log" | head -30; exit 4; }
timeout 300 build-gpu/tests/test_cuda --gtest_filter='CudaPeftParity*:CudaLoraDropout*:CudaTrainingForward*' \
  >"$OUT/tests_cuda.log" 2>&1
cuda_rc=$?
timeout 300 build-gpu/tests/test_models --gtest_filter='StackedProjections*:Split*' >"$OUT/tests_models.log" 2>&1
models_rc=$?
timeout 400 build-gpu/tests/test_ops --gtest_filter="${OPS_FILTER:-Attention*:Elementwise*:ShapeOps*:Indexing*:Swiglu*:SwiGLU*:Lora*:Rope*}" \
  >"$OUT/tests_ops.log" 2>&1
ops_rc=$?
# The modes as scripts/gpu-train-bench.sh runs them (model_bench is built): one JSON line each.
TRAIN_BENCH_MODES="${TRAIN_MODES:-eager qv q4_0 checkpoint lazy}" PEERS=0 bash scripts/gpu-train-bench.sh \
  >"$OUT/train.txt" 2>&1
WICK_PROFILE=1 timeout 300 build-gpu/bench/model_bench --device cuda --dtype bf16 --train >"$OUT/profile.txt" 2>&1
echo "================ training summary"
for log in tests_cuda tests_models tests_ops; do
  grep -E "^\[  (PASSED|FAILED) |^\[  FAILED  \]|Failure" "$OUT/$log.log" | head -12
done
echo "test_cuda rc $cuda_rc; test_models rc $models_rc; test_ops rc $ops_rc"
grep -A32 "GPU time by op:" "$OUT/profile.txt" | head -22
grep -A42 "GPU time by op and output shape" "$OUT/profile.txt" | head -36
cat "$OUT/train.txt"
