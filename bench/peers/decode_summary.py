#!/usr/bin/env python3
"""The summary table of bench/peers/decode_bench.sh: llama.cpp against wick on the same GGUF files.

  python3 bench/peers/decode_summary.py OUTDIR [--hbm-tb-s 4.3]

OUTDIR holds, per model type T (bf16, q8_0, q4_k_m): llama-bench-T.json (`llama-bench -o json`),
batched-bench-T.jsonl (`llama-batched-bench --output-format jsonl`), wick-bench-T.json
(`wick bench --json`), and manifest.json from make_gguf.py (file sizes). Writes OUTDIR/summary.md
and OUTDIR/summary.json, and prints the table.

Rows: decode at batch 1 (llama-bench tg128 against wick's tg128 at depth 0), decode of 8 and 32
sequences after 128-token prompts (llama-batched-bench S_TG against wick's tg128 at depth 128),
prefill of 128 and 512 tokens (llama-bench pp against wick's pp). All in tokens/s; ratio is
wick / llama.cpp (above 1: wick is faster). Batch-1 decode rows also give each engine's fraction of
the HBM roofline: reading every weight once per token, at most HBM bandwidth / file size tokens/s.
"""

import argparse
import json
import sys
from pathlib import Path

STEM = "qwen2.5-0.5b-shape"


def load_json(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def load_jsonl(path):
    rows = []
    try:
        for line in path.read_text().splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    pass
    except OSError:
        pass
    return rows


def llama_bench_rate(results, n_prompt, n_gen):
    for r in results or []:
        if r.get("n_prompt") == n_prompt and r.get("n_gen") == n_gen and r.get("n_depth", 0) == 0:
            return r.get("avg_ts")
    return None


def batched_rate(rows, pl):
    for r in rows:
        if r.get("pp") == 128 and r.get("tg") == 128 and r.get("pl") == pl:
            return r.get("speed_tg")
    return None


def wick_rate(result, n_prompt, n_gen, batch, depth):
    for t in (result or {}).get("tests", []):
        if (t["n_prompt"], t["n_gen"], t["batch"], t["n_depth"]) == (n_prompt, n_gen, batch, depth):
            return t["tokens_per_s"]["median"]
    return None


def fmt(x, digits=0):
    return "—" if x is None else f"{x:,.{digits}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--hbm-tb-s", type=float, default=4.3, help="HBM bandwidth for the roofline (TB/s)")
    args = ap.parse_args()
    manifest = load_json(args.outdir / "manifest.json") or {"files": {}}
    rows, storage = [], []
    for t in ("bf16", "q8_0", "q4_k_m"):
        lb = load_json(args.outdir / f"llama-bench-{t}.json")
        bb = load_jsonl(args.outdir / f"batched-bench-{t}.jsonl")
        wb = load_json(args.outdir / f"wick-bench-{t}.json")
        if lb is None and not bb and wb is None:
            continue
        if wb:
            kept = wb.get("quantized_base")
            how = wb.get("weights") or (f"--quantized-base {kept}" if kept else "weights dequantized at load")
            storage.append(f"{t}: {wb.get('dtype')}, {how}")
        file_bytes = manifest["files"].get(f"{STEM}-{t}.gguf", {}).get("bytes")
        roofline = args.hbm_tb_s * 1e12 / file_bytes if file_bytes else None
        workloads = [
            ("decode b1 (tg128)", llama_bench_rate(lb, 0, 128), wick_rate(wb, 0, 128, 1, 0), True),
            ("decode b8 (pp128+tg128)", batched_rate(bb, 8), wick_rate(wb, 0, 128, 8, 128), False),
            ("decode b32 (pp128+tg128)", batched_rate(bb, 32), wick_rate(wb, 0, 128, 32, 128), False),
            ("prefill 128 (pp128)", llama_bench_rate(lb, 128, 0), wick_rate(wb, 128, 0, 1, 0), False),
            ("prefill 512 (pp512)", llama_bench_rate(lb, 512, 0), wick_rate(wb, 512, 0, 1, 0), False),
        ]
        for name, peer, ours, is_b1 in workloads:
            rows.append({
                "type": t, "workload": name, "llama_cpp_tokens_per_s": peer, "wick_tokens_per_s": ours,
                "ratio": ours / peer if peer and ours else None,
                "llama_cpp_roofline_fraction": peer / roofline if is_b1 and peer and roofline else None,
                "wick_roofline_fraction": ours / roofline if is_b1 and ours and roofline else None,
                "file_bytes": file_bytes,
            })
    lines = ["| model | workload | llama.cpp tok/s | wick tok/s | wick / llama.cpp | roofline: llama.cpp "
             "| roofline: wick |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        pct = lambda x: "" if x is None else f"{100 * x:.1f}%"
        lines.append(f"| {r['type']} | {r['workload']} | {fmt(r['llama_cpp_tokens_per_s'])} | "
                     f"{fmt(r['wick_tokens_per_s'])} | {fmt(r['ratio'], 2)}{'x' if r['ratio'] else ''} | "
                     f"{pct(r['llama_cpp_roofline_fraction'])} | {pct(r['wick_roofline_fraction'])} |")
    note = (f"Roofline: {args.hbm_tb_s} TB/s / GGUF file bytes (every weight read once per token); "
            "decode b8/b32 is llama-batched-bench's S_TG against wick's tg128 at depth 128.")
    if storage:
        note += "\nwick ran " + "; ".join(storage) + "."
    table = "\n".join(lines) + "\n\n" + note + "\n"
    (args.outdir / "summary.md").write_text(table)
    (args.outdir / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    sys.stdout.write(table)
    if not rows:
        sys.exit(f"decode_summary: no results in {args.outdir}")


if __name__ == "__main__":
    main()
