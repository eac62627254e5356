#!/usr/bin/env bash
# Issue 15's serving comparison on the GPU box: llama-server and `wick serve` in turn on the same
# GGUF file, each loaded by bench/peers/serve_load.py with 1, 8, 32 and 64 concurrent streaming
# clients (~120-token prompts, 128 new tokens, ignore_eos, temperature 0); then wick again with
# random PEFT adapters (bench/peers/make_adapters.py) spread over the clients. Prints one table.
#
# It needs what bench/peers/decode_bench.sh builds (llama.cpp with llama-server, wick, the GGUF
# files); where they are missing it runs `decode_bench.sh --build-only` first (~7-8 min), so on a
# fresh machine the whole needs two calls, or one call after decode_bench.sh on the warm machine:
#   bash bench/peers/serve_bench.sh [--type bf16|q8_0|q4_k_m] [--clients 1,8,32,64] [--requests N]
#        [--adapters N] [--adapter-clients 32] [--adapter-rounds N] [--skip-llama] [--skip-wick]
#        [--commit HASH]
#        [--deadline SECONDS] [--max-tokens N] [-- WICK_SERVE_ARG...]
# Each server first gets one untimed request per client (the warm-up). --requests: requests per
# client (default 4). --adapters N (default 8; 0: none) makes N random
# rank-16 adapters and runs --adapter-clients clients over them after the plain runs; with
# --adapter-rounds N (default 1) N-1 more pairs follow (the same load without adapters, then with
# them; same prompts), and the summary gives each pair's time ratio and their median. Arguments
# after -- go to `wick serve` as they are (e.g. --max-batch 64). Device tool: carry [".peers"]
# (and ".deps" where needed); results are packed into $OUT/serve_bench.tar.gz, the table into
# $OUT/serve_summary.md. Steps that would end past --deadline (default 570 s) are skipped and named.
#
# On this machine's CPU instead: --cpu [--model GGUF] [--threads N] serves a GGUF on the CPU with
# both servers (llama-server from LLAMA_BIN=DIR, default build-peers/llama.cpp-cpu/bin, built by
# `bench/peers/llama_cpp.sh build cpu SRC build-peers/llama.cpp-cpu`; wick from WICK, default
# build/bin/wick), the model SmolLM2-135M-Instruct Q4_1 by default (scripts/fetch-models.sh), N
# threads each (default: all cores), no adapters unless --adapters is given with adapters in
# build-peers/adapters (make_adapters.py needs the model's Hugging Face folder), no deadline.
#   bash bench/peers/serve_bench.sh --cpu --clients 1,4,8 --requests 2 --max-tokens 64
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
START=$SECONDS
TYPE=bf16
CLIENTS=1,8,32,64
REQUESTS=4
ADAPTERS=8
ADAPTER_CLIENTS=32
ADAPTER_ROUNDS=1
RUN_LLAMA=1
RUN_WICK=1
COMMIT=""
DEADLINE=570
MAX_TOKENS=128
CPU=0
CPU_MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf
THREADS=$(nproc)
ADAPTERS_SET=0
WICK_ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --type) TYPE=${2:?--type T}; shift ;;
    --clients) CLIENTS=${2:?--clients LIST}; shift ;;
    --requests) REQUESTS=${2:?--requests N}; shift ;;
    --adapters) ADAPTERS=${2:?--adapters N}; ADAPTERS_SET=1; shift ;;
    --adapter-clients) ADAPTER_CLIENTS=${2:?--adapter-clients N}; shift ;;
    --adapter-rounds) ADAPTER_ROUNDS=${2:?--adapter-rounds N}; shift ;;
    --skip-llama) RUN_LLAMA=0 ;;
    --skip-wick) RUN_WICK=0 ;;
    --commit) COMMIT=${2:?--commit HASH}; shift ;;
    --deadline) DEADLINE=${2:?--deadline SECONDS}; shift ;;
    --max-tokens) MAX_TOKENS=${2:?--max-tokens N}; shift ;;
    --cpu) CPU=1 ;;
    --model) CPU_MODEL=${2:?--model GGUF}; shift ;;
    --threads) THREADS=${2:?--threads N}; shift ;;
    --) shift; WICK_ARGS=("$@"); break ;;
    *) echo "serve_bench.sh: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done
case $TYPE in bf16 | q8_0 | q4_k_m) ;; *) echo "serve_bench.sh: --type: unknown type '$TYPE'" >&2; exit 2 ;; esac

WORK=$ROOT/build-peers
OUT=${OUT:-$WORK/out}
RESULTS=$WORK/serve-results
LLAMA_BIN_ENV=${LLAMA_BIN:-}
LLAMA_BIN=$WORK/llama.cpp-cuda/bin
WICK_ENV=${WICK:-}  # WICK=PATH: another build of wick
WICK=${WICK_ENV:-$ROOT/build-gpu/bin/wick}
MODEL=$WORK/models/qwen2.5-0.5b-shape-$TYPE.gguf
DEVICE=cuda
# llama-server's device and slot arguments (64 slots of 512 tokens on the GPU: a request needs ~250).
LLAMA_ARGS=(-ngl 99 -fa on --parallel 64 -c 32768)
CARD=H200
if [ "$CPU" = 1 ]; then
  LLAMA_BIN=${LLAMA_BIN_ENV:-$WORK/llama.cpp-cpu/bin}
  WICK=${WICK_ENV:-$ROOT/build/bin/wick}
  MODEL=$CPU_MODEL
  DEVICE=cpu
  CARD="CPU, $THREADS threads"
  [ "$ADAPTERS_SET" = 0 ] && ADAPTERS=0
  [ "$DEADLINE" = 570 ] && DEADLINE=1000000
  [ "$RUN_LLAMA" = 1 ] && [ ! -x "$LLAMA_BIN/llama-server" ] &&
    { echo "serve_bench.sh: no $LLAMA_BIN/llama-server (see --cpu in the header)" >&2; exit 2; }
  [ -x "$WICK" ] || { echo "serve_bench.sh: no wick at $WICK (scripts/build.sh, or WICK=PATH)" >&2; exit 2; }
  [ -f "$MODEL" ] || { echo "serve_bench.sh: no model $MODEL (scripts/fetch-models.sh models)" >&2; exit 2; }
fi
ADAPTER_DIR=$WORK/adapters
PORT=18080
URL=http://127.0.0.1:$PORT
rm -rf "$RESULTS"
mkdir -p "$OUT" "$RESULTS"
export PYTHONUNBUFFERED=1
export LD_LIBRARY_PATH="$ROOT/.deps/root/usr/lib/x86_64-linux-gnu:$ROOT/.deps/root/usr/lib/x86_64-linux-gnu/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec 3>&1
say() { echo "== [$((SECONDS - START)) s] $*" | tee -a "$RESULTS/serve_bench.log" >&3; }
left() { echo $((DEADLINE - (SECONDS - START))); }
skipped=()
server_pid=""
finish() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [ -f "$RESULTS/summary.md" ] && cp "$RESULTS/summary.md" "$OUT/serve_summary.md"
  tar -czf "$OUT/serve_bench.tar.gz" -C "$RESULTS" .
}
trap finish EXIT

if { [ "$RUN_LLAMA" = 1 ] && [ ! -x "$LLAMA_BIN/llama-server" ]; } || [ ! -x "$WICK" ] || [ ! -f "$MODEL" ]; then
  say "builds or $MODEL missing: bench/peers/decode_bench.sh --build-only"
  commit_args=()
  [ -n "$COMMIT" ] && commit_args=(--commit "$COMMIT")
  OUT=$RESULTS bash bench/peers/decode_bench.sh --build-only --types "$TYPE" "${commit_args[@]}" ||
    { say "FATAL: the build failed (decode_bench.tar.gz in the results)"; exit 4; }
fi
if [ "$ADAPTERS" -gt 0 ] && [ "$RUN_WICK" = 1 ] && [ ! -f "$ADAPTER_DIR/adapter$((ADAPTERS - 1))/adapter_config.json" ]; then
  say "make $ADAPTERS adapters"
  python3 bench/peers/make_adapters.py --base "$WORK/models/hf" --out "$ADAPTER_DIR" --count "$ADAPTERS" \
    >"$RESULTS/make_adapters.log" 2>&1 || { tail -20 "$RESULTS/make_adapters.log"; say "FATAL: make_adapters failed"; exit 4; }
fi

# start_server NAME COMMAND...: starts it in the background and waits for GET /health to answer 200.
start_server() {
  local name=$1
  shift
  "$@" >"$RESULTS/$name.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 240); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      tail -20 "$RESULTS/$name.log"
      say "$name exited before it was ready"
      server_pid=""
      return 1
    fi
    python3 - "$URL/health" <<'EOF' 2>/dev/null && { say "$name ready"; return 0; }
import sys, urllib.request
sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
EOF
    sleep 0.5
  done
  say "$name did not become ready in 120 s"
  return 1
}

stop_server() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  server_pid=""
}

# load NAME CLIENTS [serve_load args...]: one load level, skipped when too little time is left
# (it allows 60 s for a level of 64 clients: llama-server did 1,092 tok/s there, 32,768 tokens).
# Each level's prompts have their own seed (1000 + CLIENTS; the same for both servers): with one
# seed for all, client i sent the same prompts at every level, and llama-server answered them from
# the prompts its slots kept from the level before.
load() {
  local name=$1 clients=$2
  shift 2
  local need=$((10 + clients * REQUESTS * MAX_TOKENS / 1000)) remaining
  remaining=$(left)
  if [ "$remaining" -lt "$need" ]; then
    skipped+=("$name")
    say "skip $name: $remaining s left"
    return
  fi
  timeout "$((remaining - 5))" python3 bench/peers/serve_load.py --url "$URL" --clients "$clients" \
    --requests-per-client "$REQUESTS" --max-tokens "$MAX_TOKENS" --seed "$((1000 + clients))" --label "$name" \
    --json-out "$RESULTS/$name.json" "$@" 2>&1 |
    tee -a "$RESULTS/serve_bench.log" >&3
}

# warm CLIENTS [serve_load args...]: one untimed request per client, so that neither server is timed
# while it compiles or captures what its first steps need (wick captures a CUDA graph per step size).
# Its prompts (seed 1) are none of the timed loads': llama-server would find them in its cache.
warm() {
  local clients=$1
  shift
  timeout 120 python3 bench/peers/serve_load.py --url "$URL" --clients "$clients" --requests-per-client 1 \
    --seed 1 --max-tokens "$MAX_TOKENS" --label warm-up --json-out "$RESULTS/warm-up.json" "$@" >>"$RESULTS/warm-up.log" 2>&1
}
max_clients=$(echo "$CLIENTS,$ADAPTER_CLIENTS" | tr ',' '\n' | sort -n | tail -1)

if [ "$CPU" = 1 ]; then
  lscpu >"$RESULTS/cpu.txt" 2>&1
  # One slot per client, 512 tokens each; the same threads as wick.
  LLAMA_ARGS=(-t "$THREADS" -tb "$THREADS" --parallel "$max_clients" -c "$((max_clients * 512))")
  WICK_ARGS=(--threads "$THREADS" "${WICK_ARGS[@]}")
else
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$RESULTS/gpu.txt" 2>&1
fi
cp "$WORK/models/manifest.json" "$RESULTS/" 2>/dev/null
say "serve_bench: $MODEL, clients $CLIENTS, $REQUESTS requests each, deadline $DEADLINE s"
if [ "$RUN_LLAMA" = 1 ]; then
  if start_server llama-server "$LLAMA_BIN/llama-server" -m "$MODEL" "${LLAMA_ARGS[@]}" \
    --host 127.0.0.1 --port "$PORT"; then
    warm "$max_clients"
    for c in ${CLIENTS//,/ }; do load "llama-server-c$c" "$c"; done
  fi
  stop_server
fi
if [ "$RUN_WICK" = 1 ]; then
  adapter_args=()
  names=()
  for ((i = 0; i < ADAPTERS; i++)); do
    adapter_args+=(--adapter "adapter$i=$ADAPTER_DIR/adapter$i")
    names+=("adapter$i")
  done
  # Its own port: the peer's may still be held by the closing connections of its last run.
  PORT=$((PORT + 1))
  URL=http://127.0.0.1:$PORT
  if start_server wick-serve "$WICK" serve --model "$MODEL" --device "$DEVICE" --host 127.0.0.1 --port "$PORT" \
    "${adapter_args[@]}" "${WICK_ARGS[@]}"; then
    # The base model's id: the first one /v1/models lists that names no adapter.
    base=$(python3 - "$URL/v1/models" "${names[@]}" <<'EOF'
import json, sys, urllib.request
ids = [m["id"] for m in json.load(urllib.request.urlopen(sys.argv[1], timeout=10))["data"]]
print(next(i for i in ids if not any(i == n or i.endswith(":" + n) for n in sys.argv[2:])))
EOF
)
    say "wick serve lists the base model as '$base'"
    warm "$max_clients" --models "$base"
    [ "$ADAPTERS" -gt 0 ] && warm "$ADAPTER_CLIENTS" --models "$(IFS=,; echo "${names[*]}")"
    for c in ${CLIENTS//,/ }; do load "wick-c$c" "$c" --models "$base"; done
    if [ "$ADAPTERS" -gt 0 ]; then
      load "wick-adapters-c$ADAPTER_CLIENTS" "$ADAPTER_CLIENTS" --models "$(IFS=,; echo "${names[*]}")"
      # The same load without adapters, if the plain runs did not have it.
      [ -f "$RESULTS/wick-c$ADAPTER_CLIENTS.json" ] || load "wick-c$ADAPTER_CLIENTS" "$ADAPTER_CLIENTS" --models "$base"
      for ((r = 2; r <= ADAPTER_ROUNDS; r++)); do
        load "wick-c$ADAPTER_CLIENTS-r$r" "$ADAPTER_CLIENTS" --models "$base"
        load "wick-adapters-c$ADAPTER_CLIENTS-r$r" "$ADAPTER_CLIENTS" --models "$(IFS=,; echo "${names[*]}")"
      done
    fi
  fi
  stop_server
fi
echo "================ serve_bench summary ($(basename "$MODEL"), $CARD)"
python3 bench/peers/serve_summary.py "$RESULTS"
[ ${#skipped[@]} -gt 0 ] && echo "skipped for time: ${skipped[*]}"
say "done"
