#!/usr/bin/env python3
"""Per-kernel GPU time from an Nsight Compute CSV (`ncu --csv --page raw --metrics gpu__time_duration.sum`):
one row per kernel name with its launches, total and mean time, largest total first.
  python3 scripts/ncu_kernel_table.py NCU.csv [--top N] [--steps S]
--steps S divides the totals by S (e.g. the profiled steps) to give time per step."""
import argparse
import collections
import csv
import re
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--steps", type=float, default=1.0)
    args = ap.parse_args()
    with open(args.csv, newline="") as f:
        lines = [l for l in f if l.startswith('"')]  # ncu prints its own log lines before the table
    rows = list(csv.DictReader(lines))
    if not rows:
        sys.exit("no kernel rows in " + args.csv)
    total = collections.defaultdict(float)
    count = collections.Counter()
    for r in rows:
        value = r.get("gpu__time_duration.sum", "")
        try:
            ns = float(value.replace(",", ""))
        except ValueError:
            continue  # the units row
        name = re.sub(r"\(.*", "", r.get("Kernel Name", "?"))[:70]
        total[name] += ns
        count[name] += 1
    unit = next((r["gpu__time_duration.sum"] for r in rows if not re.match(r"^[\d.,]+$", r.get("gpu__time_duration.sum", "0"))), "ns")
    grand = sum(total.values())
    print(f"{'kernel':70} {'launches':>8} {'total/step':>12} {'mean':>9} {'share':>6}   (times in {unit})")
    for name, t in sorted(total.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"{name:70} {count[name]:8d} {t / args.steps:12.1f} {t / count[name]:9.1f} {100 * t / grand:5.1f}%")
    print(f"{'all':70} {sum(count.values()):8d} {grand / args.steps:12.1f}")


if __name__ == "__main__":
    main()
