"""Markdown table of bench/fused_bench.cpp's JSON report: each fused kernel against the
composition of basic ops it replaces (composed time / fused time: above 1, the fusion wins).

Usage: python3 bench/fused_table.py fused.json [--device cuda|cpu]
"""
import argparse
import json
import re


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    times = {}
    for b in json.load(open(args.report))["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        parts = re.sub(r"/real_time$", "", b.get("run_name", b["name"])).split("/")
        if args.device not in parts:
            continue
        op, mode, kind = parts[0], parts[1], parts[2]
        t = b["real_time"] * {"ns": 1e-3, "us": 1.0, "ms": 1e3}[b.get("time_unit", "us")]
        times.setdefault((op, mode), {})[kind] = t
    print(f"| op ({args.device}) | pass | fused µs | composed µs | composed/fused |")
    print("|---|---|---:|---:|---:|")
    for (op, mode), t in sorted(times.items()):
        if "fused" in t and "composed" in t:
            print(f"| {op} | {mode} | {t['fused']:.1f} | {t['composed']:.1f} | {t['composed'] / t['fused']:.2f}x |")


if __name__ == "__main__":
    main()
