#!/usr/bin/env python3
"""The summary table of bench/peers/serve_bench.sh from the JSON files serve_load.py wrote.

  python3 bench/peers/serve_summary.py DIR

Reads DIR/llama-server-cN.json, DIR/wick-cN.json and DIR/wick-adapters-cN.json; writes
DIR/summary.md and prints it. Ratio: wick's output tokens/s over llama-server's at the same load.
The adapter row compares wick with adapters spread over the clients to the same load without them
(time ratio = tokens/s without / tokens/s with; issue 15 asks for at most 1.3x). More pairs of that
comparison (--adapter-rounds: DIR/wick-cN-rK.json and DIR/wick-adapters-cN-rK.json) are listed each,
with the median of all the pairs' ratios.
"""

import json
import re
import statistics
import sys
from pathlib import Path


def load(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = Path(sys.argv[1])
    clients = sorted({int(m.group(1)) for p in d.glob("*-c*.json") if (m := re.search(r"-c(\d+)\.json$", p.name))})
    f = lambda x, digits=0: "—" if x is None else f"{x:,.{digits}f}"

    def cells(run):
        if run is None:
            return ["—", "—", "—", "—"]
        return [f(run["output_tokens_per_s"]), f(run["ttft_ms"]["p50"]), f(run["ttft_ms"]["p99"]), str(run["errors"])]

    lines = ["| clients | llama-server tok/s | TTFT p50 ms | TTFT p99 ms | errors | wick tok/s | TTFT p50 ms | "
             "TTFT p99 ms | errors | wick / llama-server |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in clients:
        peer, ours = load(d / f"llama-server-c{c}.json"), load(d / f"wick-c{c}.json")
        if peer is None and ours is None:
            continue
        ratio = (ours["output_tokens_per_s"] / peer["output_tokens_per_s"]
                 if peer and ours and peer["output_tokens_per_s"] and ours["output_tokens_per_s"] else None)
        lines.append(f"| {c} | " + " | ".join(cells(peer) + cells(ours)) + f" | {f(ratio, 2)}{'x' if ratio else ''} |")
    table = "\n".join(lines) + "\n"
    for c in clients:
        mixed, plain = load(d / f"wick-adapters-c{c}.json"), load(d / f"wick-c{c}.json")
        if mixed is None:
            continue
        cost = (plain["output_tokens_per_s"] / mixed["output_tokens_per_s"]
                if plain and plain["output_tokens_per_s"] and mixed["output_tokens_per_s"] else None)
        table += (f"\nwick, {len(mixed['models'])} adapters over {c} clients: {f(mixed['output_tokens_per_s'])} tok/s, "
                  f"TTFT p99 {f(mixed['ttft_ms']['p99'])} ms, errors {mixed['errors']}; time {f(cost, 2)}x the same "
                  f"load without adapters\n")
        ratios = [cost] if cost else []
        for m in sorted(d.glob(f"wick-adapters-c{c}-r*.json"), key=lambda p: int(p.stem.rsplit("-r", 1)[1])):
            k = m.stem.rsplit("-r", 1)[1]
            mixed, plain = load(m), load(d / f"wick-c{c}-r{k}.json")
            if not (mixed and plain and mixed["output_tokens_per_s"] and plain["output_tokens_per_s"]):
                table += f"round {k}: incomplete\n"
                continue
            ratios.append(plain["output_tokens_per_s"] / mixed["output_tokens_per_s"])
            table += (f"round {k}: without {f(plain['output_tokens_per_s'])} tok/s, with {f(mixed['output_tokens_per_s'])} "
                      f"tok/s (TTFT p99 {f(mixed['ttft_ms']['p99'])} ms, errors {mixed['errors']}): {f(ratios[-1], 2)}x\n")
        if len(ratios) > 1:
            table += f"median of {len(ratios)} pairs: {f(statistics.median(ratios), 2)}x (each: {', '.join(f(x, 2) for x in ratios)})\n"
    (d / "summary.md").write_text(table)
    sys.stdout.write(table)


if __name__ == "__main__":
    main()
