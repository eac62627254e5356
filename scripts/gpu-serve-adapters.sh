#!/usr/bin/env bash
# Serving with mixed adapters on the GPU box in one device call, without the llama.cpp build:
# makes the BF16 GGUF of the random Qwen2.5-0.5B-shape model with llama.cpp's converter (Python
# only, from the carried source) while wick builds, runs the batched-LoRA and linear_add op tests (float64 reference)
# with a compute-sanitizer memcheck of their kernels and the whole of test_cuda, then `wick bench`
# at batch 32 with no adapter and with 8, then bench/peers/serve_bench.sh --skip-llama: wick serve at
# 32 streaming clients without adapters, then the same load spread over 8 adapters.
#   bash scripts/gpu-serve-adapters.sh [--commit HASH]     (device tool: carry [".peers", ".deps"])
# NO_NCU=1 leaves out the Nsight Compute pass over the adapted steps.
# A/B in one call: with AB_DIR=DIR (a folder of the tree, e.g. an untracked .ab/, holding other
# versions of source files at their paths in the tree), a second binary is built with those files in
# place (then put back), and the benchmarks alternate between the two: `wick bench` decode at batch
# 32 (no adapter, 8 adapters) and a 512-token prompt (no adapter, one), then the serving load with
# each binary. A is the tree as it is, B the tree with DIR's files; AB_DIR=DIR1:DIR2[:...] builds
# C, D ... the same way (each from the tree with its folder's files alone). Knobs:
#   AB_ROUNDS=N   rounds of `wick bench` (default 2); AB_PP=0 leaves out the 512-token prompts;
#   AB_QUICK=1    the LoraGather tests alone (otherwise their memcheck and test_cuda, after A's
#                 serving, or after all of it with AB_TESTS_FIRST=0);
#   AB_NCU=1      each kernel's time in A's 512-token prompt with an adapter (Nsight Compute);
#   AB_SERVE=0    no serving; AB_SERVE_ROUNDS=N pairs of loads without and with adapters per variant
#                 (serve_bench.sh --adapter-rounds), AB_SERVE_REQUESTS=N requests per client (4);
#                 AB_BUDGET=S (default 560): a variant's serving runs only if the call has time left.
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
targets=(wick test_ops test_cuda)
[ "${AB_QUICK:-0}" = 1 ] && targets=(wick test_ops)
bash scripts/gpu-build.sh "$OUT/build" "${targets[@]}" "${commit_args[@]}" >"$OUT/build.out" 2>&1
rc=$?
say "wick built (rc $rc)"
[ $rc -ne 0 ] && { grep -E "error" "$OUT/build/build.log" | head -30; exit $rc; }
VARIANTS=(a)
if [ -n "${AB_DIR:-}" ]; then
  cp build-gpu/bin/wick "$OUT/wick-a"
  IFS=: read -r -a ab_dirs <<<"$AB_DIR"
  names=(b c d e)
  [ ${#ab_dirs[@]} -le ${#names[@]} ] || { say "FATAL: AB_DIR names ${#ab_dirs[@]} folders, at most ${#names[@]}"; exit 2; }
  for k in "${!ab_dirs[@]}"; do
    v=${names[$k]} dir=${ab_dirs[$k]}
    mapfile -t ab_files < <(cd "$dir" && find . -type f | sed 's|^\./||')
    for f in "${ab_files[@]}"; do cp "$f" "$OUT/ab-orig-$(echo "$f" | tr / _)"; cp "$dir/$f" "$f"; done
    ninja -C build-gpu wick >"$OUT/build-$v.log" 2>&1
    rc=$?
    cp build-gpu/bin/wick "$OUT/wick-$v"
    for f in "${ab_files[@]}"; do cp "$OUT/ab-orig-$(echo "$f" | tr / _)" "$f"; rm "$OUT/ab-orig-$(echo "$f" | tr / _)"; done
    VARIANTS+=("$v")
    say "$v built with $dir: ${ab_files[*]} (rc $rc; build-gpu/bin/wick is the last variant until the next build)"
  done
fi
timeout 120 build-gpu/tests/test_ops --gtest_filter='LoraGather*/cuda*:LinearAdd*/cuda*' >"$OUT/test_ops.log" 2>&1
t1=$?
say "tests: LoraGather rc $t1 ($(grep -E '^\[  (PASSED|FAILED) ' "$OUT/test_ops.log" | tr '\n' ' '))"
grep -E "FAILED|Failure" -A6 "$OUT/test_ops.log" | head -40
t2=0 t3=0
# The memcheck of the LoraGather tests and the whole of test_cuda (AB_QUICK=1: neither).
full_tests() {
  [ "${AB_QUICK:-0}" = 1 ] && return
  timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/tests/test_ops --gtest_filter='LoraGather*/cuda*:LinearAdd*/cuda*' \
    >"$OUT/memcheck.log" 2>&1
  t3=$?
  say "memcheck of the LoraGather tests rc $t3 ($(grep 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1))"
  timeout 300 build-gpu/tests/test_cuda >"$OUT/test_cuda.log" 2>&1
  t2=$?
  say "test_cuda rc $t2 ($(grep -E '^\[  (PASSED|FAILED) ' "$OUT/test_cuda.log" | tr '\n' ' '))"
  grep -E "FAILED|Failure" "$OUT/test_cuda.log" | head -20
}
[ -z "${AB_DIR:-}" ] && full_tests
wait $gguf || { tail -20 "$OUT/make_gguf.log"; say "FATAL: the GGUF was not made"; exit 4; }
say "BF16 GGUF made"
if [ -n "${AB_DIR:-}" ]; then
  M="$WORK/models/qwen2.5-0.5b-shape-bf16.gguf"
  for round in $(seq 1 "${AB_ROUNDS:-2}"); do
    for v in "${VARIANTS[@]}"; do
      for a in 0 8; do
        timeout 90 "$OUT/wick-$v" bench --model "$M" --device cuda -p 0 -n 64 -b 32 -r 3 --adapters $a \
          >"$OUT/ab-$v-tg-$a-$round.txt" 2>&1
        echo "$v round $round: tg b32, $a adapters: $(grep -E '^\| tg' "$OUT/ab-$v-tg-$a-$round.txt")"
      done
      [ "${AB_PP:-1}" = 1 ] || continue
      for a in 0 1; do
        timeout 90 "$OUT/wick-$v" bench --model "$M" --device cuda -p 512 -n 0 -r 5 --adapters $a \
          >"$OUT/ab-$v-pp-$a-$round.txt" 2>&1
        echo "$v round $round: pp512, $a adapters: $(grep -E '^\| pp' "$OUT/ab-$v-pp-$a-$round.txt")"
      done
    done
  done
  if [ "${AB_NCU:-0}" = 1 ] && command -v ncu >/dev/null; then
    # Each kernel's time in a 512-token prompt with one adapter (two steps: warm-up and one timed).
    for v in a; do
      timeout 150 ncu --clock-control none --csv --page raw --metrics gpu__time_duration.sum \
        "$OUT/wick-$v" bench --model "$M" --device cuda -p 512 -n 0 -r 1 --adapters 1 >"$OUT/ncu-pp-$v.csv" 2>&1
      echo "---- $v: kernels of pp512 with one adapter (ncu rc $?), per step"
      python3 scripts/ncu_kernel_table.py "$OUT/ncu-pp-$v.csv" --steps 2 --top 16
    done
  fi
  serve() {
    WICK=$OUT/wick-$1 OUT=$OUT/serve-$1 bash bench/peers/serve_bench.sh --skip-llama --clients 32 --requests "${AB_SERVE_REQUESTS:-4}" \
      --adapters 8 --adapter-clients 32 --adapter-rounds "${AB_SERVE_ROUNDS:-1}" --deadline 120 >"$OUT/serve-$1.out" 2>&1
    say "$1: serve_bench rc $?"
    tail -n 8 "$OUT/serve-$1.out"
  }
  # Each variant's serving while the call has time for it (AB_BUDGET seconds), then the tests
  # (AB_TESTS_FIRST=1: the tests after A's serving, before the others').
  if [ "${AB_SERVE:-1}" = 1 ]; then
    for v in "${VARIANTS[@]}"; do
      if [ $((SECONDS - START)) -lt $((${AB_BUDGET:-560} - 110)) ]; then serve "$v"; else say "$v's serving left out for time"; fi
      [ "$v" = a ] && [ "${AB_TESTS_FIRST:-1}" = 1 ] && full_tests
    done
  fi
  [ "${AB_SERVE:-1}" = 1 ] && [ "${AB_TESTS_FIRST:-1}" = 1 ] || full_tests
  [ $t1 -eq 0 ] && [ $t2 -eq 0 ] && [ $t3 -eq 0 ]
  exit
fi
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
