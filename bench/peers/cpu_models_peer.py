"""CPU peer of `model_bench --gguf` / `--minilm` (PERFORMANCE.md F): transformers on the same
SmolLM2-135M-Instruct GGUF (dequantized to f32) — greedy decode tokens/s at batch 1 after a
32-token prompt, 64 new tokens — and sentence-transformers' all-MiniLM-L6-v2 docs/s at 100 x 16 and 1 x 16.

Usage: python3 bench/peers/cpu_models_peer.py models   (prints one JSON object)
"""
import json
import os
import sys
import time

import torch


def main():
    models = sys.argv[1] if len(sys.argv) > 1 else "models"
    from transformers import AutoModelForCausalLM

    lm = AutoModelForCausalLM.from_pretrained(models, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
                                              dtype=torch.float32).eval()
    ids = torch.randint(0, 49000, (1, 32))
    kw = dict(do_sample=False, eos_token_id=None, pad_token_id=0)
    with torch.no_grad():
        lm.generate(ids, max_new_tokens=4, min_new_tokens=4, **kw)
        t0 = time.perf_counter()
        lm.generate(ids, max_new_tokens=1, min_new_tokens=1, **kw)
        prefill = time.perf_counter() - t0
        t0 = time.perf_counter()
        lm.generate(ids, max_new_tokens=64, min_new_tokens=64, **kw)
        total = time.perf_counter() - t0
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "decode_b1_tok_s": 63 / (total - prefill)}
    from transformers import BertModel

    bert = BertModel.from_pretrained(os.path.join(models, "all-MiniLM-L6-v2")).eval()

    def docs_per_second(batch, reps):
        ids = torch.randint(1000, 30000, (batch, 16))
        mask = torch.ones_like(ids)

        def once():
            with torch.no_grad():
                h = bert(input_ids=ids, attention_mask=mask).last_hidden_state
                m = mask.unsqueeze(-1).float()
                return torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=1)

        for _ in range(3):
            once()
        t0 = time.perf_counter()
        for _ in range(reps):
            once()
        return batch * reps / (time.perf_counter() - t0)

    out["embed_100x16_docs_s"] = docs_per_second(100, 20)
    out["embed_1x16_docs_s"] = docs_per_second(1, 200)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
