#!/usr/bin/env bash
# A GGUF's quantized blocks on the GPU, in one device call: makes a random Qwen2.5-0.5B-shape model
# as a Q8_0 GGUF with llama.cpp's own converter (Python only, from the carried source), builds wick,
# then compares on CUDA the logits of the file's blocks (--quantized-base file: the blocks are read
# where they lie in the file's mapping and copied to the GPU) with those of the same file
# dequantized at load, and the CUDA logits of the blocks with the CPU's; and runs `wick generate`
# on CUDA over the blocks. Prints a summary last.
#   bash scripts/gpu-gguf-blocks.sh     (device tool: carry [".peers", ".deps"])
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${OUT:-$ROOT/build-gpu/gguf-blocks}
WORK=$ROOT/build-peers
mkdir -p "$OUT" "$WORK"
export LD_LIBRARY_PATH="$ROOT/.deps/root/usr/lib/x86_64-linux-gnu:$ROOT/.deps/root/usr/lib/x86_64-linux-gnu/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
START=$SECONDS
say() { echo "== [$((SECONDS - START)) s] $*"; }

bash bench/peers/llama_cpp.sh unpack .peers/llama.cpp.tar.xz "$WORK/llama.cpp" >"$OUT/unpack.log" 2>&1 ||
  { say "FATAL: unpack failed"; exit 3; }
(python3 bench/peers/make_gguf.py --out "$WORK/models" --llama-cpp "$WORK/llama.cpp" --types bf16 >"$OUT/make_gguf.log" 2>&1 &&
  PYTHONPATH="$WORK/llama.cpp/gguf-py" python3 "$WORK/llama.cpp/convert_hf_to_gguf.py" "$WORK/models/hf" \
    --outtype q8_0 --outfile "$WORK/models/q8_0.gguf" >"$OUT/convert.log" 2>&1) &
gguf=$!
bash scripts/gpu-build.sh "$OUT/build" wick >"$OUT/build.out" 2>&1
rc=$?
say "wick built (rc $rc)"
[ $rc -ne 0 ] && { grep -E "error" "$OUT/build/build.log" | head -30; exit $rc; }
wait $gguf || { tail -20 "$OUT/make_gguf.log" "$OUT/convert.log"; say "FATAL: the Q8_0 GGUF was not made"; exit 4; }
model=$WORK/models/q8_0.gguf
say "Q8_0 GGUF made ($(du -h "$model" | cut -f1))"
echo '{"input_ids": [[1, 9690, 314, 253, 10826, 42, 7, 300, 1500, 20]]}' >"$OUT/ids.json"
wick=build-gpu/bin/wick
logits() { timeout 120 $wick logits --model "$model" --ids-json "$OUT/ids.json" "$@"; }
logits --device cuda --quantized-base file >"$OUT/cuda-blocks.json" 2>"$OUT/cuda-blocks.err"; r1=$?
logits --device cuda >"$OUT/cuda-dense.json" 2>"$OUT/cuda-dense.err"; r2=$?
logits --device cpu --quantized-base file >"$OUT/cpu-blocks.json" 2>"$OUT/cpu-blocks.err"; r3=$?
say "logits rc: cuda blocks $r1, cuda dense $r2, cpu blocks $r3"
timeout 120 $wick generate --model "$model" --device cuda --prompt "Hello" --max-tokens 16 --temperature 0 \
  >"$OUT/generate.txt" 2>"$OUT/generate.err"; r4=$?
say "generate on cuda rc $r4: $(tail -1 "$OUT/generate.err")"
python3 - "$OUT" <<'EOF'
import json, sys
out = sys.argv[1]
def load(name):
    return json.load(open(f"{out}/{name}.json"))["logits"][0]
a, b, c = load("cuda-blocks"), load("cuda-dense"), load("cpu-blocks")
def diff(x, y):
    m = max(abs(p - q) for rx, ry in zip(x, y) for p, q in zip(rx, ry))
    scale = max(abs(q) for ry in y for q in ry)
    return m, scale
for name, (x, y) in {"cuda blocks vs cuda dense": (a, b), "cuda blocks vs cpu blocks": (a, c)}.items():
    m, s = diff(x, y)
    top = sum(max(range(len(rx)), key=rx.__getitem__) == max(range(len(ry)), key=ry.__getitem__) for rx, ry in zip(x, y))
    print(f"{name}: max |diff| {m:.4g} (largest logit {s:.4g}), same argmax at {top} of {len(x)} positions")
EOF
[ $r1 -eq 0 ] && [ $r2 -eq 0 ] && [ $r3 -eq 0 ] && [ $r4 -eq 0 ]
