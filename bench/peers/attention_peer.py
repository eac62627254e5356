#!/usr/bin/env python3
"""PyTorch's scaled_dot_product_attention at the training workload's shape (PERFORMANCE.md D:
Qwen2.5-0.5B, 8 x 512 tokens, 14 query heads over 2 kv heads of 64, causal, bf16), forward and
forward + backward, timed as bench/cuda_kernels_bench.cpp times wick's (each iteration ends with a
device synchronisation). Prints one JSON line per case with milliseconds and FLOP/s counted the same
way (causal: half the scores; forward 2 products, forward + backward 7).

Usage: python3 bench/peers/attention_peer.py [--iters N]
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F

B, HQ, HKV, T, D = 8, 14, 2, 512, 64


def timed(fn, iters):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    best = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best.append(time.perf_counter() - t0)
    best.sort()
    return best[len(best) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=50)
    args = ap.parse_args()
    dev = torch.device("cuda")
    q = torch.randn(B, HQ, T, D, device=dev, dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(B, HKV, T, D, device=dev, dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(B, HKV, T, D, device=dev, dtype=torch.bfloat16, requires_grad=True)

    def fwd():
        with torch.no_grad():
            F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)

    def fwd_bwd():
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        y.float().sum().backward()

    unit = 2.0 * B * HQ * T * T * D / 2
    for name, fn, products in (("forward", fwd, 2), ("forward_backward", fwd_bwd, 7)):
        s = timed(fn, args.iters)
        print(json.dumps({"peer": "torch.sdpa", "torch": torch.__version__, "case": name, "ms": round(s * 1e3, 3),
                          "TFLOP/s": round(products * unit / s / 1e12, 1)}))


if __name__ == "__main__":
    main()
