"""PyTorch peer of bench/engine_bench.cpp: the same seed micro-workloads (PERFORMANCE.md, A),
timed the same way (each iteration ends with a device synchronisation; median of many runs).

Usage: python3 bench/peers/engine_peer.py --device cuda --out peer.json
"""
import argparse
import json
import statistics
import time

import torch


def timeit(fn, device, min_time=0.3, warmup=10):
    for _ in range(warmup):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    samples = []
    start = time.perf_counter()
    while time.perf_counter() - start < min_time or len(samples) < 20:
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        samples.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(samples)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", default="peer.json")
    args = ap.parse_args()
    dev = args.device
    torch.backends.cuda.matmul.allow_tf32 = False
    g = torch.Generator(device="cpu").manual_seed(0)

    def randn(*shape, std=1.0):
        return (torch.randn(*shape, generator=g) * std).to(dev)

    results = {}
    a, b = randn(1024), randn(1024)
    results["add_1024"] = timeit(lambda: a + b, dev)
    for n in (64, 128):
        x, y = randn(n, n), randn(n, n)
        results[f"matmul_{n}"] = timeit(lambda: x @ y, dev)
    x = randn(1, 128, 512)
    la, lb = randn(8, 512, std=0.05), randn(512, 8, std=0.05)
    results["lora_delta_1x128x512_r8/unfused"] = timeit(lambda: (x @ la.T) @ lb.T * 2.0, dev)
    for n, r in ((512, 8), (1024, 8), (2048, 8), (512, 16)):
        xx, w = randn(4, 16, n), randn(n, n, std=0.02)
        ra, rb = randn(r, n, std=0.02), randn(n, r, std=0.02)
        results[f"lora_layer_fwd_4x16/{n}_r{r}"] = timeit(lambda: xx @ w.T + (xx @ ra.T) @ rb.T * 2.0, dev)
    for tokens, name in ((16, "lora_layer_fwdbwd_4x16/512_r8"), (64, "lora_layer_train_4x64/512_r8")):
        xx, w, t = randn(4, tokens, 512), randn(512, 512, std=0.02), randn(4, tokens, 512)
        ra = randn(8, 512, std=0.02).requires_grad_()
        rb = randn(512, 8, std=0.02).requires_grad_()

        def step():
            loss = ((xx @ w.T + (xx @ ra.T) @ rb.T * 2.0 - t) ** 2).mean()
            torch.autograd.grad(loss, [ra, rb])

        results[name] = timeit(step, dev)
    keys = [torch.zeros(1, 2, 1024, 64, device=dev) for _ in range(24)]
    vals = [torch.zeros(1, 2, 1024, 64, device=dev) for _ in range(24)]
    k1, v1 = randn(1, 2, 1, 64), randn(1, 2, 1, 64)
    pos = [0]

    def kv():
        p = pos[0]
        for layer in range(24):
            keys[layer][:, :, p:p + 1] = k1
            vals[layer][:, :, p:p + 1] = v1
        pos[0] = (p + 1) % 1024

    results["kv_append_qwen05b_24layers"] = timeit(kv, dev)
    p = randn(512, 512).requires_grad_()
    p.grad = randn(512, 512)
    opt = torch.optim.AdamW([p], lr=1e-3, weight_decay=0.01, foreach=False)
    results["adamw_512x512"] = timeit(opt.step, dev)
    # Sampling from device logits, host to host (the chosen id reaches Python).
    def sampler(logits, kind, arg):
        if kind == "greedy":
            return lambda: torch.argmax(logits).item()
        if kind == "top_k":
            def f():
                v, i = torch.topk(logits, arg)
                return i[torch.multinomial(torch.softmax(v, -1), 1)].item()
            return f
        if kind == "top_p":
            def f():
                s, i = torch.sort(logits, descending=True)
                p = torch.softmax(s, -1)
                keep = torch.cumsum(p, -1) - p < arg
                p = torch.where(keep, p, torch.zeros_like(p))
                return i[torch.multinomial(p / p.sum(), 1)].item()
            return f
        return lambda: torch.multinomial(torch.softmax(logits / arg, -1), 1).item()

    for vocab in (1000, 32000, 100000):
        lg = randn(vocab, std=3.0)
        results[f"sample_greedy_{vocab}"] = timeit(sampler(lg, "greedy", 0), dev)
        results[f"sample_top_p0.9_{vocab}"] = timeit(sampler(lg, "top_p", 0.9), dev)
    lg = randn(32000, std=3.0)
    for k in (10, 40, 50):
        results[f"sample_top_k{k}_32000"] = timeit(sampler(lg, "top_k", k), dev)
    results["sample_top_p0.95_32000"] = timeit(sampler(lg, "top_p", 0.95), dev)
    results["sample_temperature0.7_32000"] = timeit(sampler(lg, "temperature", 0.7), dev)
    with open(args.out, "w") as f:
        json.dump({"device": torch.cuda.get_device_name() if dev == "cuda" else "cpu",
                   "torch": torch.__version__, "us": results}, f, indent=1)
    for k, v in results.items():
        print(f"{k:40s} {v:10.1f} us")


if __name__ == "__main__":
    main()
