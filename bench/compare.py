"""Joins a Google Benchmark JSON report of wick with a peer JSON (bench/peers/*.py) into a
markdown table of medians and ratios (peer time / wick time: above 1 means wick is faster).

Usage: python3 bench/compare.py wick.json peer.json [--device cuda|cpu]
"""
import argparse
import json
import re


def wick_medians(path, device):
    """Median real time (µs) per workload; names look like `key/.../DEVICE/ARGS.../real_time`."""
    with open(path) as f:
        report = json.load(f)
    times = {}
    for b in report["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        parts = re.sub(r"/(real_time|manual_time)$", "", b.get("run_name", b["name"])).split("/")
        if device not in parts:
            continue
        key = "/".join(parts[: parts.index(device)])
        t = b["real_time"] * {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b.get("time_unit", "us")]
        if b.get("aggregate_name") == "median" or key not in times:
            times[key] = t
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("wick")
    ap.add_argument("peer")
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    ours = wick_medians(args.wick, args.device)
    with open(args.peer) as f:
        peer = json.load(f)
    print(f"| workload ({args.device}, {peer['device']}) | wick µs | PyTorch {peer['torch']} µs | peer/wick |")
    print("|---|---:|---:|---:|")
    for key, t in sorted(ours.items()):
        base = key.replace("/eager", "").replace("/lazy", "")
        p = peer["us"].get(key, peer["us"].get(base))
        ratio = f"{p / t:.2f}x" if p else "–"
        ps = f"{p:.1f}" if p else "–"
        print(f"| {key} | {t:.1f} | {ps} | {ratio} |")


if __name__ == "__main__":
    main()
