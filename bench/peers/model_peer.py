"""Peer of bench/model_bench.cpp: transformers on the same card with random weights of the same
shapes — Qwen2.5-0.5B `generate` (greedy, prompt 128, 128 new tokens, batch 1 and 8), prefill of
128 and 512 tokens, and all-MiniLM-L6-v2 embeddings (mean pooling + L2 norm, fp32).

Usage: python3 bench/peers/model_peer.py [--device cuda] [--dtype bf16]   (prints one JSON object)
"""
import argparse
import json
import time

import torch
from transformers import BertConfig, BertModel, Qwen2Config, Qwen2ForCausalLM


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bf16")
    args = ap.parse_args()
    dev = args.device
    dtype = {"bf16": torch.bfloat16, "f32": torch.float32}[args.dtype]
    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                      num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                      rope_theta=1000000.0, tie_word_embeddings=True)
    model = Qwen2ForCausalLM(cfg).to(dtype).to(dev).eval()
    out = {"device": torch.cuda.get_device_name() if dev == "cuda" else "cpu", "dtype": args.dtype,
           "torch": torch.__version__}

    def decode(batch):
        ids = torch.randint(0, 150000, (batch, 128), device=dev)
        kw = dict(do_sample=False, max_new_tokens=128, min_new_tokens=128, eos_token_id=None, pad_token_id=0)
        with torch.no_grad():
            model.generate(ids, **dict(kw, max_new_tokens=4, min_new_tokens=4))
            sync(dev)
            t0 = time.perf_counter()
            model.generate(ids, **dict(kw, max_new_tokens=1, min_new_tokens=1))
            sync(dev)
            prefill = time.perf_counter() - t0
            t0 = time.perf_counter()
            model.generate(ids, **kw)
            sync(dev)
            total = time.perf_counter() - t0
        return batch * 127 / (total - prefill)

    out["decode_b1_tok_s"] = decode(1)
    out["decode_b8_tok_s"] = decode(8)
    for n in (128, 512):
        ids = torch.randint(0, 150000, (1, n), device=dev)
        with torch.no_grad():
            for _ in range(3):
                model(ids)
            sync(dev)
            t0 = time.perf_counter()
            for _ in range(10):
                model(ids)
            sync(dev)
        out[f"prefill_{n}_ms"] = (time.perf_counter() - t0) / 10 * 1e3
    bert = BertModel(BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                                intermediate_size=1536)).to(dev).eval()

    def embed(batch):
        ids = torch.randint(1000, 30000, (batch, 16), device=dev)
        mask = torch.ones_like(ids)

        def once():
            with torch.no_grad():
                h = bert(input_ids=ids, attention_mask=mask).last_hidden_state
                m = mask.unsqueeze(-1).float()
                e = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=1)
                return e.cpu()

        for _ in range(3):
            once()
        t0 = time.perf_counter()
        for _ in range(20):
            once()
        return batch * 20 / (time.perf_counter() - t0)

    out["embed_100x16_docs_s"] = embed(100)
    out["embed_1x16_ms"] = 1e3 / embed(1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
