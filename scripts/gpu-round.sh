#!/usr/bin/env bash
# One measurement round on the GPU box in two device calls on the same (warm) machine.
#
#   bash scripts/gpu-round.sh check [--commit HASH]   (call 1, ~9 min)
#     starts, detached from the call, the peer's build (llama.cpp for sm_90 from .peers/) and the
#     GGUF files (a random Qwen2.5-0.5B-shape model: BF16, Q8_0, Q4_K_M); meanwhile builds wick and
#     its test and benchmark binaries (scripts/gpu-build.sh), runs the CUDA tests with a
#     compute-sanitizer memcheck pass over the inference kernels (scripts/gpu-check.sh) and the
#     batching engine's GPU test, and prints a summary. The peer's build goes on after the call returns.
#     NO_PEER=1 leaves the peer out (a check alone, e.g. before scripts/gpu-serve-adapters.sh).
#   bash scripts/gpu-round.sh bench [--commit HASH]   (call 2, at once, ~9 min)
#     waits for the peer's build, then: the skinny-product and sampler micro-benchmarks, both
#     engines on the same GGUF files (bench/peers/decode_bench.sh --run-only), and the serving
#     comparison (bench/peers/serve_bench.sh; SKIP_SERVE=1 leaves it out); prints the tables.
# Device tool: carry [".peers", ".deps"]; everything comes back packed under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PHASE=${1:?usage: gpu-round.sh check|bench [--commit HASH]}
shift
COMMIT=""
[ "${1:-}" = --commit ] && COMMIT=${2:?--commit HASH}
OUT=${OUT:-$ROOT/build-gpu/round}
mkdir -p "$OUT"
WORK=$ROOT/build-peers
export PYTHONUNBUFFERED=1
export LD_LIBRARY_PATH="$ROOT/.deps/root/usr/lib/x86_64-linux-gnu:$ROOT/.deps/root/usr/lib/x86_64-linux-gnu/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
START=$SECONDS
say() { echo "== [$((SECONDS - START)) s] $*"; }

peer_job() {  # the peer's build and the model files, in the background of call 1
  mkdir -p "$WORK"
  bash bench/peers/llama_cpp.sh unpack .peers/llama.cpp.tar.xz "$WORK/llama.cpp" &&
    sha256sum .peers/llama.cpp.tar.xz | cut -c1-64 >"$WORK/llama.cpp.sha256" || return 3
  python3 bench/peers/make_gguf.py --out "$WORK/models" --llama-cpp "$WORK/llama.cpp" --types bf16 \
    >"$WORK/make_gguf.log" 2>&1 &
  local gguf=$!
  bash bench/peers/llama_cpp.sh build cuda "$WORK/llama.cpp" "$WORK/llama.cpp-cuda" 8 >"$WORK/llama-build.log" 2>&1 ||
    return 4
  wait $gguf || return 5
  python3 bench/peers/make_gguf.py --out "$WORK/models" --llama-cpp "$WORK/llama.cpp" \
    --llama-quantize "$WORK/llama.cpp-cuda/bin/llama-quantize" --types q8_0,q4_k_m >>"$WORK/make_gguf.log" 2>&1 || return 6
}

case $PHASE in
check)
  rm -f "$WORK/peer.done"
  mkdir -p "$WORK"
  # NO_PEER=1: no peer build (a check alone, or one followed by timings the build would disturb).
  [ "${NO_PEER:-0}" = 1 ] || setsid bash -c "cd '$ROOT'; WORK='$WORK'; $(declare -f peer_job); export PYTHONUNBUFFERED=1; peer_job; echo \$? >'$WORK/peer.done'" \
    >"$WORK/peer-job.log" 2>&1 </dev/null &
  [ "${NO_PEER:-0}" = 1 ] || say "peer build started in the background"
  commit_args=()
  [ -n "$COMMIT" ] && commit_args=(-- -DWICK_COMMIT="$COMMIT")
  JOBS=10 bash scripts/gpu-build.sh "$OUT/build" wick test_ops test_engine test_cuda test_serve gemv_bench sampling_bench \
    "${commit_args[@]}" >"$OUT/build.out" 2>&1
  rc=$?
  say "wick built (rc $rc): $(grep -E '^== (built|FATAL)' "$OUT/build.out" | tail -1)"
  [ $rc -ne 0 ] && { grep -E "error" "$OUT/build/build.log" | head -30; exit $rc; }
  # The inference kernels under memcheck; the rest of the suite without it.
  OUT=$OUT/check BUILD_ALL=0 MEMCHECK_TIMEOUT=${MEMCHECK_TIMEOUT:-150} \
    MEMCHECK_FILTER=${MEMCHECK_FILTER:-'PagedAttention*:LoraGather*:CudaRunner*:CudaCapture*:SkinnyMatmul*:SkinnyGather*:CudaSampleTokens*'} \
    bash scripts/gpu-check.sh >"$OUT/check.out" 2>&1
  check_rc=$?
  # The batching engine on the GPU: sixteen requests batched against each alone.
  timeout 300 build-gpu/tests/test_serve --gtest_filter='BatchingEngine.*Gpu*' >"$OUT/serve-gpu.log" 2>&1 || check_rc=1
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |Failure" "$OUT/serve-gpu.log" | head -10
  grep -E "FAILED|Failure" "$OUT/check.out" | head -40
  say "peer job: $(cat "$WORK/peer.done" 2>/dev/null || echo running); $(tail -1 "$WORK/llama-build.log" 2>/dev/null)"
  echo "================ gpu-round check (rc $check_rc)"
  sed -n '/== summary/,$p' "$OUT/check.out"
  tar -czf "$OUT/check.tar.gz" -C "$OUT" check build 2>/dev/null
  ;;
bench)
  for i in $(seq 1 480); do [ -f "$WORK/peer.done" ] && break; sleep 1; done
  say "peer job: rc $(cat "$WORK/peer.done" 2>/dev/null || echo 'still running')"
  [ "$(cat "$WORK/peer.done" 2>/dev/null)" = 0 ] || { tail -n 30 "$WORK/llama-build.log" "$WORK/make_gguf.log"; exit 4; }
  timeout 60 build-gpu/bench/gemv_bench >"$OUT/gemv_bench.txt" 2>&1
  timeout 60 build-gpu/bench/sampling_bench >"$OUT/sampling_bench.txt" 2>&1
  say "micro-benchmarks done"
  commit_args=()
  [ -n "$COMMIT" ] && commit_args=(--commit "$COMMIT")
  OUT=$OUT bash bench/peers/decode_bench.sh --run-only --deadline 300 "${commit_args[@]}" >"$OUT/decode.out" 2>&1
  # Mixed adapters at batch 32 (issue 15): the step time with 8 resident adapters against none, and
  # the GPU time per op of the adapted run (WICK_PROFILE=1: eager steps, each op timed by events).
  bf16=$WORK/models/qwen2.5-0.5b-shape-bf16.gguf
  for a in 0 8; do
    timeout 60 build-gpu/bin/wick bench --model "$bf16" --device cuda -p 0 -n 64 -b 32 -r 3 --adapters $a \
      >"$OUT/adapters-$a.txt" 2>&1
  done
  WICK_PROFILE=1 timeout 60 build-gpu/bin/wick bench --model "$bf16" --device cuda -p 0 -n 32 -b 32 -r 1 --adapters 8 \
    >"$OUT/adapters-profile.txt" 2>&1
  say "adapter runs done"
  if [ "${SKIP_SERVE:-0}" = 1 ]; then
    echo "serving comparison skipped (SKIP_SERVE=1)" >"$OUT/serve.out"
  else
    OUT=$OUT bash bench/peers/serve_bench.sh --deadline $((560 - (SECONDS - START))) "${commit_args[@]}" \
      >"$OUT/serve.out" 2>&1
  fi
  echo "================ skinny products (tail)"
  tail -25 "$OUT/gemv_bench.txt"
  echo "================ sampler (tail)"
  tail -12 "$OUT/sampling_bench.txt"
  echo "================ decode"
  sed -n '/decode_bench summary/,$p' "$OUT/decode.out"
  echo "================ adapters (b32: none, then 8 of rank 16; profile of the adapted steps, eager)"
  grep -E "^\| tg" "$OUT/adapters-0.txt" "$OUT/adapters-8.txt"
  grep -A 22 "GPU time by op" "$OUT/adapters-profile.txt" | head -24
  echo "================ serve"
  tail -n 30 "$OUT/serve.out"
  ;;
*) echo "gpu-round.sh: unknown phase $PHASE" >&2; exit 2 ;;
esac
