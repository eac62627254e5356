#!/usr/bin/env bash
# Issue check: a real LoRA fine-tune of SmolLM2-135M-Instruct on the CPU for STEPS (default 60)
# steps; the same run killed with SIGKILL after its checkpoint at step KILL_AT (default 20) and
# continued with --resume must log the uninterrupted run's loss at every step, and training and
# validation loss must fall. Needs build/bin/wick and models/ (scripts/fetch-models.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-60}
KILL_AT=${KILL_AT:-20}
wick=build/bin/wick
model=models/SmolLM2-135M-Instruct.Q4_1.gguf
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
args=(--model "$model" --data data/demo/pirate_train.jsonl --validation data/demo/pirate_validation.jsonl
      --steps "$STEPS" --batch-size 4 --lr 1e-4 --rank 8 --targets all-linear --eval-every 10
      --checkpoint-every "$KILL_AT" --seed 3 --device cpu)
$wick train --out "$out/full" "${args[@]}" 2>/dev/null
$wick train --out "$out/killed" "${args[@]}" >/dev/null 2>&1 &
pid=$!
until [ -d "$out/killed/checkpoint-$KILL_AT" ]; do sleep 0.2; done
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
echo "killed after checkpoint-$KILL_AT (checkpoints present: $(ls "$out/killed" | grep -c checkpoint-))"
$wick train --resume --out "$out/killed" "${args[@]}" 2>/dev/null
python3 - "$out/full/metrics.jsonl" "$out/killed/metrics.jsonl" <<'PY'
import json, sys
full = [json.loads(l) for l in open(sys.argv[1])]
resumed = [json.loads(l) for l in open(sys.argv[2])]
assert len(full) == len(resumed), (len(full), len(resumed))
same = sum(a["loss"] == b["loss"] for a, b in zip(full, resumed))
val = [r["val_loss"] for r in full if "val_loss" in r]
print(f"steps {len(full)}; identical losses after resume: {same}/{len(full)}")
print(f"training loss {full[0]['loss']:.4f} -> {full[-1]['loss']:.4f}; validation loss " + " -> ".join(f"{v:.4f}" for v in val))
ok = same == len(full) and full[-1]["loss"] < full[0]["loss"] and val[-1] < val[0]
print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
