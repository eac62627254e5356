"""Interoperability of wick's adapters with the reference libraries: an adapter trained by
`wick train` loads in PEFT and gives wick's logits, and the folder written by `wick merge` loads
in transformers and gives the same logits as wick with the adapter. With a GGUF base (which PEFT
cannot load), the folder merged from it must load in transformers with its tokenizer: the same
token ids as wick's tokenizer of the GGUF, and the logits of wick with the adapter over the GGUF.

Usage (needs torch, transformers, peft; builds nothing):
    python3 scripts/check-peft-interop.py build/bin/wick [tests/data/models/qwen2_tied | MODEL.gguf]
Prints one line per check and exits non-zero if any fails.
"""
import json
import os
import subprocess
import sys
import tempfile

import torch


def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wick_logits(wick, model, ids_path, adapter=None):
    cmd = [wick, "logits", "--model", model, "--ids-json", ids_path, "--device", "cpu", "--dtype", "f32"]
    if adapter:
        cmd += ["--adapter", adapter]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout
    return torch.tensor(json.loads(out)["logits"], dtype=torch.float64)


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def check_gguf_merge(wick, gguf, merged, ids, ids_path, ours):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    texts = ["What is the capital of France?", "  Spaces,\ttabs and émojis 🙂 — mixed 123 text.\n"]
    wick_ids = subprocess.run([wick, "tokenize", "--tokenizer", gguf], input="\n".join(json.dumps(t) for t in texts),
                              check=True, stdout=subprocess.PIPE, text=True).stdout.split("\n")
    wick_ids = [json.loads(line) for line in wick_ids if line.strip()]
    tokenizer = AutoTokenizer.from_pretrained(merged)
    theirs_ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    plain = wick_logits(wick, gguf, ids_path)
    with torch.no_grad():
        merged_model = AutoModelForCausalLM.from_pretrained(merged).float().eval()
        merged_logits = merged_model(input_ids=ids).logits.double()
    checks = [
        ("the adapter changes the logits (wick vs the GGUF base)", rel(ours, plain), lambda e: e > 1e-3),
        ("transformers' tokenizer of the merged folder vs wick's of the GGUF",
         0.0 if wick_ids == theirs_ids else 1.0, lambda e: e == 0),
        ("wick + adapter over the GGUF vs transformers on the folder merged from it", rel(ours, merged_logits),
         lambda e: e <= 1e-4),
    ]
    ok = True
    for name, err, good in checks:
        passed = good(err)
        ok = ok and passed
        print(f"{'PASS' if passed else 'FAIL'}  {name}: {err:.3g}")
    return ok


def main():
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    wick = sys.argv[1]
    base_dir = sys.argv[2] if len(sys.argv) > 2 else "tests/data/models/qwen2_tied"
    work = tempfile.mkdtemp(prefix="wick_peft_")
    g = torch.Generator().manual_seed(0)
    with open(os.path.join(work, "data.jsonl"), "w") as f:
        for _ in range(12):
            unit = torch.randint(0, 256, (5,), generator=g).tolist()
            f.write(json.dumps({"input_ids": unit * 3}) + "\n")
    ids = torch.randint(0, 256, (2, 9), generator=g)
    ids_path = os.path.join(work, "ids.json")
    with open(ids_path, "w") as f:
        json.dump({"input_ids": ids.tolist()}, f)
    adapter = os.path.join(work, "adapter")
    run(wick, "train", "--model", base_dir, "--data", os.path.join(work, "data.jsonl"), "--out", adapter, "--steps", "20",
        "--rank", "4", "--alpha", "8", "--targets", "all-linear", "--lr", "5e-3", "--device", "cpu", "--dtype", "f32")
    merged = os.path.join(work, "merged")
    run(wick, "merge", "--model", base_dir, "--adapter", adapter, "--out", merged, "--dtype", "f32")

    ours = wick_logits(wick, base_dir, ids_path, adapter)
    if base_dir.endswith(".gguf"):
        sys.exit(0 if check_gguf_merge(wick, base_dir, merged, ids, ids_path, ours) else 1)
    base = AutoModelForCausalLM.from_pretrained(base_dir).float().eval()
    with torch.no_grad():
        plain = base(input_ids=ids).logits.double()
        peft = PeftModel.from_pretrained(base, adapter).eval()
        theirs = peft(input_ids=ids).logits.double()
        merged_model = AutoModelForCausalLM.from_pretrained(merged).float().eval()
        merged_logits = merged_model(input_ids=ids).logits.double()
    ok = True
    checks = [
        ("the adapter changes the logits (wick vs base)", rel(ours, plain), lambda e: e > 1e-3),
        ("wick + adapter vs PEFT + adapter", rel(ours, theirs), lambda e: e <= 1e-4),
        ("wick + adapter vs transformers on wick's merged folder", rel(ours, merged_logits), lambda e: e <= 1e-4),
        ("wick on its merged folder vs wick + adapter", rel(wick_logits(wick, merged, ids_path), ours), lambda e: e <= 1e-4),
    ]
    for name, err, good in checks:
        passed = good(err)
        ok = ok and passed
        print(f"{'PASS' if passed else 'FAIL'}  {name}: max |diff| / max |ref| = {err:.3g}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
