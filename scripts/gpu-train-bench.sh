#!/usr/bin/env bash
# The LoRA training benchmark on a GPU machine (PERFORMANCE.md D(ii)): builds model_bench (with the
# dependency handling of gpu-check.sh), runs wick's training step eager, eager with the LM head and
# the loss apart (unfused), lazy, eager with
# activation checkpointing, and with the projections kept as Q4_0 blocks (with and without
# checkpointing), then the PEFT peers (bench/peers/train_peer.py, plain and --qlora) in the same
# call; prints one JSON line each. TRAIN_BENCH_MODES picks a subset ("eager q4_0").
#
# Modes: eager unfused packing qv (rank 8 on q_proj, v_proj; its PEFT peer runs too) lazy checkpoint
# q4_0 q4_0+checkpoint. PEERS=0 leaves the peers out; PEERS_ONLY=1 runs only them.
#
# Usage: scripts/gpu-train-bench.sh        (run gpu-check.sh first in the same call, or let this
#                                          script run it with its tests skipped)
set -uo pipefail
cd "$(dirname "$0")/.."
DEPS=$(pwd)/.deps/root/usr/lib/x86_64-linux-gnu
[ -d "$DEPS" ] && export LD_LIBRARY_PATH="$DEPS:$DEPS/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ "${PEERS_ONLY:-0}" != 1 ]; then
  if [ ! -x build-gpu/bench/model_bench ]; then
    MEMCHECK_TIMEOUT=0 BUILD_ALL=0 scripts/gpu-check.sh 'NoTest.None' >/dev/null 2>&1
  fi
  cmake --build build-gpu --target model_bench -j"$(nproc)" >build-gpu/model_bench-build.log 2>&1 ||
    { grep -E "error" build-gpu/model_bench-build.log | head -20; echo "FATAL: model_bench build failed"; exit 4; }
fi
# bitsandbytes (the QLoRA peer) has native code: a wheel carried in .whl-bnb/ is installed aside
# (slimmed to the box's CUDA 13.0 library by scripts/slim-wheel.py, 3.6 MB, to fit beside .deps).
for w in .whl-bnb/bitsandbytes-*.whl; do
  [ -f "$w" ] || continue
  pip install --quiet --no-deps --target /tmp/bnb-site "$w" >/dev/null 2>&1 &&
    export PYTHONPATH="/tmp/bnb-site${PYTHONPATH:+:$PYTHONPATH}"
done
MODES=${TRAIN_BENCH_MODES:-"eager unfused lazy checkpoint q4_0 q4_0+checkpoint"}
[ "${PEERS_ONLY:-0}" = 1 ] && WICK_MODES="" || WICK_MODES=$MODES
for mode in $WICK_MODES; do
  case $mode in
    eager) args="" ;;
    unfused) args="--unfused-loss" ;;
    packing) args="--packing" ;;
    qv) args="--qv" ;;
    lazy) args="--lazy" ;;
    checkpoint) args="--checkpoint" ;;
    q4_0) args="--quantize q4_0" ;;
    q4_0+checkpoint) args="--quantize q4_0 --checkpoint" ;;
    *) echo "unknown mode $mode"; continue ;;
  esac
  timeout 300 build-gpu/bench/model_bench --device cuda --dtype bf16 --train $args 2>&1 | tail -3
done
[ "${PEERS:-1}" = 0 ] && exit 0
timeout 300 python3 bench/peers/train_peer.py 2>&1 | tail -3
case " $MODES " in
  *" qv "*) timeout 300 python3 bench/peers/train_peer.py --qv 2>&1 | tail -3 ;;
esac
# PEFT + Liger: liger-kernel travels as a wheel (device README; PYTHONPATH set by the caller).
timeout 300 python3 bench/peers/train_peer.py --liger 2>&1 | tail -3
case " $MODES " in
  *q4_0*) timeout 300 python3 bench/peers/train_peer.py --qlora 2>&1 | tail -3 ;;
esac
