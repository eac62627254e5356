#!/usr/bin/env python3
"""Random LoRA adapters in PEFT's format for the model of bench/peers/make_gguf.py, for the
mixed-adapter serving load of bench/peers/serve_bench.sh. PEFT itself writes them (random A and B,
init_lora_weights=False, so each adapter changes the output), one folder per adapter.

Runs on the GPU box (python3 there has torch, transformers and peft):

  python3 bench/peers/make_adapters.py --base build-peers/models/hf --out build-peers/adapters
      [--count 8] [--rank 16] [--targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj] [--seed 0]

Writes OUT/adapter0 ... OUT/adapter{count-1}.
"""

import argparse
import sys
from pathlib import Path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, required=True, help="the transformers folder make_gguf.py wrote (DIR/hf)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.count < 1 or args.rank < 1:
        ap.error("--count and --rank must be at least 1")
    if not (args.base / "config.json").is_file():
        sys.exit(f"make_adapters: {args.base}/config.json is missing (run bench/peers/make_gguf.py first)")

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    targets = [t for t in args.targets.split(",") if t]
    for i in range(args.count):
        # A fresh base each time: get_peft_model wraps the modules of the model it is given.
        base = AutoModelForCausalLM.from_pretrained(args.base, dtype=torch.bfloat16)
        torch.manual_seed(args.seed * 1000 + i)
        config = LoraConfig(r=args.rank, lora_alpha=2 * args.rank, target_modules=targets, init_lora_weights=False,
                            task_type="CAUSAL_LM")
        folder = args.out / f"adapter{i}"
        get_peft_model(base, config).save_pretrained(folder)
        print(f"make_adapters: {folder} (rank {args.rank}, {', '.join(targets)})", flush=True)


if __name__ == "__main__":
    main()
