#!/usr/bin/env bash
# Issue 14's measurement in one device call: wick against llama.cpp (CUDA, flash attention) on the
# same GGUF files — one random Qwen2.5-0.5B-shape model as BF16, Q8_0 and Q4_K_M.
#
# Prepare here (once; the archive is ~3 MB):
#   bench/peers/llama_cpp.sh source /tmp/llama.cpp && bench/peers/llama_cpp.sh pack /tmp/llama.cpp .peers/llama.cpp.tar.xz
# Run on the GPU box (device tool: carry [".peers"], plus ".deps" where scripts/gpu-deps.sh made it):
#   bash bench/peers/decode_bench.sh [--build-only | --run-only] [--commit HASH] [--types bf16,q8_0,q4_k_m]
#                                    [--reps N] [--deadline SECONDS]
#
# What it does (everything it writes stays under build-peers/ and build-gpu/, which git ignores):
#   build  unpacks .peers/llama.cpp.tar.xz and builds llama.cpp for sm_90 in the background
#          (bench/peers/llama_cpp.sh build cuda), builds wick meanwhile (scripts/gpu-build.sh wick),
#          makes the BF16 GGUF meanwhile (bench/peers/make_gguf.py: transformers + llama.cpp's
#          converter), then the Q8_0 and Q4_K_M files once llama-quantize exists.   ~7-8 min
#   run    on a quiet machine, per file (BF16 first): llama-bench (pp128, pp512, tg128),
#          llama-batched-bench (128-token prompts, 128 new tokens, 1/8/32 sequences) and
#          `wick bench` (pp128, pp512; tg128 at batch 1, 8, 32 after 0 and 128 tokens).  ~1-2 min
#   Then bench/peers/decode_summary.py prints the table: workload, llama.cpp, wick, ratio, and the
#   fraction of the HBM roofline for batch-1 decode.
# The default does both. Whatever would end past --deadline (default 570 s after the start) is
# skipped and named, so one call of 600 s returns a table; a later `--run-only` call on the same,
# still warm machine (30 s) runs the rest from the builds and files already there.
# Logs and JSON are packed into $OUT/decode_bench.tar.gz (the device tool brings back 8 files at
# most), the table into $OUT/summary.md; without $OUT (elsewhere) both go to build-peers/out.
# --commit names the commit wick reports where the copied tree has no .git; --quantized-base MODE
# is handed to `wick bench` for the Q8_0 and Q4_K_M files (default: dequantized to bf16 at load).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
START=$SECONDS
MODE=all
COMMIT=""
TYPES=bf16,q8_0,q4_k_m
REPS=3
DEADLINE=570
QUANTIZED_BASE=""
while [ $# -gt 0 ]; do
  case $1 in
    --build-only) MODE=build ;;
    --run-only) MODE=run ;;
    --commit) COMMIT=${2:?--commit HASH}; shift ;;
    --types) TYPES=${2:?--types LIST}; shift ;;
    --reps) REPS=${2:?--reps N}; shift ;;
    --deadline) DEADLINE=${2:?--deadline SECONDS}; shift ;;
    --quantized-base) QUANTIZED_BASE=${2:?--quantized-base MODE}; shift ;;
    *) echo "decode_bench.sh: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done
for t in ${TYPES//,/ }; do
  case $t in bf16 | q8_0 | q4_k_m) ;; *) echo "decode_bench.sh: --types: unknown type '$t'" >&2; exit 2 ;; esac
done

WORK=$ROOT/build-peers
OUT=${OUT:-$WORK/out}
RESULTS=$WORK/results  # everything of this call, packed into $OUT at the end
ARCHIVE=$ROOT/.peers/llama.cpp.tar.xz
LLAMA_SRC=$WORK/llama.cpp
LLAMA_BUILD=$WORK/llama.cpp-cuda
LLAMA_BIN=$LLAMA_BUILD/bin
MODELS=$WORK/models
WICK=$ROOT/build-gpu/bin/wick
STEM=qwen2.5-0.5b-shape
rm -rf "$RESULTS"
mkdir -p "$WORK" "$OUT" "$RESULTS"
export PYTHONUNBUFFERED=1
# Libraries scripts/gpu-build.sh took from .deps (if any) are found at run time this way.
export LD_LIBRARY_PATH="$ROOT/.deps/root/usr/lib/x86_64-linux-gnu:$ROOT/.deps/root/usr/lib/x86_64-linux-gnu/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# fd 3 is the terminal of the call: what a step redirects does not swallow these lines.
exec 3>&1
say() { echo "== [$((SECONDS - START)) s] $*" | tee -a "$RESULTS/decode_bench.log" >&3; }
pack_results() {
  [ -f "$RESULTS/summary.md" ] && cp "$RESULTS/summary.md" "$OUT/summary.md"
  tar -czf "$OUT/decode_bench.tar.gz" -C "$RESULTS" .
}
trap pack_results EXIT
left() { echo $((DEADLINE - (SECONDS - START))); }
skipped=()

build_phase() {
  [ -f "$ARCHIVE" ] || { say "FATAL: $ARCHIVE is missing (make it here with bench/peers/llama_cpp.sh; carry .peers)"; exit 2; }
  # The same archive as last time (a warm machine): keep the tree and its build, which is then
  # up to date; a fresh unpack would give every file a new time and rebuild everything.
  local digest
  digest=$(sha256sum "$ARCHIVE" | cut -c1-64)
  if [ "$(cat "$LLAMA_SRC.sha256" 2>/dev/null)" != "$digest" ]; then
    say "unpack llama.cpp"
    bash bench/peers/llama_cpp.sh unpack "$ARCHIVE" "$LLAMA_SRC" && echo "$digest" >"$LLAMA_SRC.sha256" ||
      { say "FATAL: unpack failed"; exit 3; }
  fi
  say "build llama.cpp (CUDA, background; log llama-build.log), wick and the BF16 GGUF"
  bash bench/peers/llama_cpp.sh build cuda "$LLAMA_SRC" "$LLAMA_BUILD" "$(nproc)" >"$RESULTS/llama-build.log" 2>&1 &
  local llama_pid=$!
  python3 bench/peers/make_gguf.py --out "$MODELS" --llama-cpp "$LLAMA_SRC" --types bf16 >"$RESULTS/make_gguf.log" 2>&1 &
  local gguf_pid=$!
  local commit_args=()
  [ -n "$COMMIT" ] && commit_args=(-- -DWICK_COMMIT="$COMMIT")
  JOBS=$(nproc) bash scripts/gpu-build.sh "$RESULTS/wick-build" wick "${commit_args[@]}" >"$RESULTS/wick-build.out" 2>&1
  local wick_rc=$?
  say "wick built (rc $wick_rc): $(grep -E '^== (built|FATAL)' "$RESULTS/wick-build.out" | tail -1)"
  wait $gguf_pid
  local gguf_rc=$?
  say "BF16 GGUF (rc $gguf_rc): $(tail -1 "$RESULTS/make_gguf.log")"
  wait $llama_pid
  local llama_rc=$?
  say "llama.cpp built (rc $llama_rc): $(ls "$LLAMA_BIN" 2>/dev/null | grep -c '^llama-') programs"
  [ $wick_rc -eq 0 ] && [ $gguf_rc -eq 0 ] && [ $llama_rc -eq 0 ] ||
    { tail -n 20 "$RESULTS/llama-build.log" "$RESULTS/make_gguf.log" "$RESULTS/wick-build.out"; say "FATAL: build failed"; exit 4; }
  local quantized=${TYPES//bf16/}
  quantized=$(echo "$quantized" | tr -s ',' | sed 's/^,//; s/,$//')
  if [ -n "$quantized" ]; then
    python3 bench/peers/make_gguf.py --out "$MODELS" --llama-cpp "$LLAMA_SRC" --llama-quantize "$LLAMA_BIN/llama-quantize" \
      --types "$quantized" >>"$RESULTS/make_gguf.log" 2>&1 || { tail -20 "$RESULTS/make_gguf.log"; say "FATAL: quantization failed"; exit 4; }
  fi
  say "model files:"
  grep -E '^ *[0-9,]+  [0-9a-f]{64}' "$RESULTS/make_gguf.log" | sort -u -k3 | tee -a "$RESULTS/decode_bench.log"
  cp "$MODELS/manifest.json" "$RESULTS/manifest.json"
  cp "$MODELS"/*.log "$RESULTS/" 2>/dev/null  # the converter's and quantizer's own logs
}

# run_step NAME SECONDS_NEEDED COMMAND...: runs COMMAND under a timeout that ends it before the
# deadline; skips it (and says so) when not even SECONDS_NEEDED are left.
run_step() {
  local name=$1 need=$2
  shift 2
  local remaining
  remaining=$(left)
  if [ "$remaining" -lt "$need" ]; then
    skipped+=("$name")
    say "skip $name: $remaining s left, it needs about $need"
    return 1
  fi
  say "$name"
  timeout "$((remaining - 5))" "$@"
  local rc=$?
  [ $rc -ne 0 ] && say "$name failed (rc $rc)"
  return $rc
}

run_phase() {
  for p in "$WICK" "$LLAMA_BIN/llama-bench" "$LLAMA_BIN/llama-batched-bench"; do
    [ -x "$p" ] || { say "FATAL: $p is missing: the machine went cold; run without --run-only"; exit 5; }
  done
  # A call that carries .deps again replaces the libraries unpacked from it: unpack them anew (the
  # build itself is up to date).
  if [ "$MODE" = run ]; then
    local commit_args=()
    [ -n "$COMMIT" ] && commit_args=(-- -DWICK_COMMIT="$COMMIT")
    JOBS=$(nproc) bash scripts/gpu-build.sh "$RESULTS/wick-build" wick "${commit_args[@]}" >"$RESULTS/wick-build.out" 2>&1
  fi
  [ -f "$MODELS/manifest.json" ] && cp "$MODELS/manifest.json" "$RESULTS/manifest.json"
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv,noheader | tee "$RESULTS/gpu.txt"
  for t in ${TYPES//,/ }; do
    local f=$MODELS/$STEM-$t.gguf
    [ -f "$f" ] || { say "FATAL: $f is missing"; exit 5; }
    run_step "llama-bench $t" 20 "$LLAMA_BIN/llama-bench" -m "$f" -p 128,512 -n 128 -fa 1 -ngl 99 -r "$REPS" -o json \
      >"$RESULTS/llama-bench-$t.json" 2>"$RESULTS/llama-bench-$t.log"
    # 32 sequences of 128 + 128 tokens fill the 8192-token cache (the prompts are not shared).
    run_step "llama-batched-bench $t" 20 "$LLAMA_BIN/llama-batched-bench" -m "$f" -c 8192 -b 2048 -ub 512 \
      -npp 128 -ntg 128 -npl 1,8,32 -fa on -ngl 99 --output-format jsonl \
      >"$RESULTS/batched-bench-$t.jsonl" 2>"$RESULTS/batched-bench-$t.log"
    local storage=()
    [ "$t" != bf16 ] && [ -n "$QUANTIZED_BASE" ] && storage=(--quantized-base "$QUANTIZED_BASE")
    run_step "wick bench $t" 40 "$WICK" bench --model "$f" --device cuda -p 128,512 -n 128 -b 1,8,32 -d 0,128 \
      -r "$REPS" "${storage[@]}" --json >"$RESULTS/wick-bench-$t.json" 2>"$RESULTS/wick-bench-$t.log"
    # Batch-1 decode again with the skinny products launched serially (WICK_CUDA_OVERLAP=0): what
    # their programmatic-dependent launches bring.
    WICK_CUDA_OVERLAP=0 run_step "wick bench $t, serial launches" 15 "$WICK" bench --model "$f" --device cuda -p 0 \
      -n 128 -b 1 -r "$REPS" "${storage[@]}" --json >"$RESULTS/wick-serial-$t.json" 2>"$RESULTS/wick-serial-$t.log"
  done
}
serial_summary() {  # tg128 at batch 1, overlapped (the default) against serial launches
  python3 - "$RESULTS" "$TYPES" <<'PY'
import json, pathlib, sys
d = pathlib.Path(sys.argv[1])
def tg(path):
    try:
        tests = json.loads(path.read_text())["tests"]
        return next(x["tokens_per_s"]["median"] for x in tests if x["name"] == "tg128" and x["batch"] == 1 and x["n_depth"] == 0)
    except Exception:
        return None
for t in sys.argv[2].split(","):
    a, b = tg(d / f"wick-bench-{t}.json"), tg(d / f"wick-serial-{t}.json")
    if a and b:
        print(f"{t}: decode b1 tg128 overlapped {a:.0f} tok/s, serial {b:.0f} tok/s: {a / b:.3f}x")
    else:
        print(f"{t}: overlapped {a}, serial {b} (missing)")
PY
}

say "decode_bench: mode $MODE, types $TYPES, $REPS repetitions, deadline $DEADLINE s, commit ${COMMIT:-from git}"
[ "$MODE" != run ] && build_phase
if [ "$MODE" != build ]; then
  run_phase
  echo "================ decode_bench summary (H200; the same GGUF files for both engines)"
  python3 bench/peers/decode_summary.py "$RESULTS"
  echo "---- programmatic-dependent launches (wick bench, WICK_CUDA_OVERLAP=0 for serial)"
  serial_summary
  [ ${#skipped[@]} -gt 0 ] && echo "skipped for time: ${skipped[*]} (run again with --run-only while the machine is warm)"
fi
say "done"
