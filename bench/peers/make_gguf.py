#!/usr/bin/env python3
"""The model files both engines of bench/peers/decode_bench.sh run: one random model of
Qwen2.5-0.5B's shape (transformers, seeded, bf16) with the real Qwen2.5 tokenizer, converted by
llama.cpp's own convert_hf_to_gguf.py to BF16 GGUF and quantized by llama-quantize to Q8_0 and
Q4_K_M. Prints each file's size and sha256 and writes them to OUT/manifest.json.

Runs on the GPU box (python3 there has torch and transformers; nothing else is needed):

  python3 bench/peers/make_gguf.py --out DIR --llama-cpp SRC [--llama-quantize BIN]
      [--types bf16,q8_0,q4_k_m] [--seed 0] [--tokenizer-dir tests/data/tokenizers/qwen2.5]

SRC is the tree bench/peers/llama_cpp.sh unpacks (convert_hf_to_gguf.py, conversion/, gguf-py/);
BIN is its build's bin/llama-quantize, needed for the quantized types. A BF16 file already in DIR
from the same seed is reused (manifest.json says which seed made it), so the BF16 file can be made
while llama.cpp still builds and the quantized ones once llama-quantize exists:

  make_gguf.py --out D --llama-cpp S --types bf16
  make_gguf.py --out D --llama-cpp S --llama-quantize B/bin/llama-quantize --types q8_0,q4_k_m

Files: DIR/hf/ (the transformers folder), DIR/qwen2.5-0.5b-shape-{bf16,q8_0,q4_k_m}.gguf.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STEM = "qwen2.5-0.5b-shape"
QUANTIZED = {"q8_0": "Q8_0", "q4_k_m": "Q4_K_M"}  # our name -> llama-quantize's type name

# Qwen2.5-0.5B-Instruct's config.json, less the weights.
SHAPE = dict(
    vocab_size=151936,
    hidden_size=896,
    intermediate_size=4864,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    max_position_embeddings=32768,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    bos_token_id=151643,
    eos_token_id=151645,
    use_sliding_window=False,
)


def log(msg):
    print(f"make_gguf: {msg}", flush=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def make_hf_folder(folder, seed, tokenizer_dir):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    for name in ("tokenizer.json", "tokenizer_config.json"):
        if not (tokenizer_dir / name).is_file():
            sys.exit(f"make_gguf: {tokenizer_dir / name} is missing (give --tokenizer-dir)")
    config = Qwen2Config(**SHAPE)
    # transformers 5 keeps RoPE settings in rope_parameters; older versions read rope_theta.
    if hasattr(config, "rope_parameters"):
        params = dict(config.rope_parameters or {})
        params.setdefault("rope_type", "default")
        params["rope_theta"] = SHAPE["rope_theta"]
        config.rope_parameters = params
    torch.manual_seed(seed)
    # Initialised on the CPU, so a seed gives the same weights on any machine with this torch.
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.eval()
    if folder.exists():
        shutil.rmtree(folder)
    model.save_pretrained(folder)  # safetensors (transformers 5 writes nothing else)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tokenizer_dir / name, folder / name)
    saved = json.loads((folder / "config.json").read_text())
    theta = saved.get("rope_theta") or (saved.get("rope_parameters") or {}).get("rope_theta")
    if theta != SHAPE["rope_theta"]:
        sys.exit(f"make_gguf: transformers wrote rope_theta {theta}, not {SHAPE['rope_theta']} ({folder}/config.json)")
    n = sum(p.numel() for p in model.parameters())
    log(f"random Qwen2.5-0.5B-shape model ({n / 1e6:.1f} M parameters, seed {seed}) in {folder}")


def run_logged(cmd, log_path, env=None):
    """Runs cmd with its output in log_path; on failure shows the log's end and stops."""
    with open(log_path, "w") as f:
        done = subprocess.run([str(c) for c in cmd], stdout=f, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        sys.stderr.write("".join(open(log_path).readlines()[-30:]))
        sys.exit(f"make_gguf: {Path(cmd[1] if cmd[0] == sys.executable else cmd[0]).name} failed "
                 f"(exit {done.returncode}; log {log_path})")


def convert(llama_cpp, folder, outfile):
    script = llama_cpp / "convert_hf_to_gguf.py"
    if not script.is_file():
        sys.exit(f"make_gguf: {script} is missing (unpack the tree with bench/peers/llama_cpp.sh)")
    env = dict(os.environ, PYTHONPATH=str(llama_cpp / "gguf-py"))
    run_logged([sys.executable, script, folder, "--outtype", "bf16", "--outfile", outfile],
               outfile.with_suffix(".log"), env)


def quantize(binary, source, outfile, ggml_type):
    if binary is None or not Path(binary).is_file():
        sys.exit(f"make_gguf: {ggml_type} needs --llama-quantize (llama.cpp's bin/llama-quantize), got {binary}")
    run_logged([binary, source, outfile, ggml_type], outfile.with_suffix(".log"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder for the HF model and the GGUF files")
    ap.add_argument("--llama-cpp", type=Path, required=True, help="llama.cpp source tree (convert_hf_to_gguf.py)")
    ap.add_argument("--llama-quantize", type=Path, help="llama.cpp's llama-quantize, for q8_0 and q4_k_m")
    ap.add_argument("--types", default="bf16,q8_0,q4_k_m", help="files to make: bf16, q8_0, q4_k_m")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    ap.add_argument("--tokenizer-dir", type=Path, default=REPO / "tests/data/tokenizers/qwen2.5",
                    help="folder with Qwen2.5's tokenizer.json and tokenizer_config.json")
    args = ap.parse_args()
    types = [t.strip() for t in args.types.split(",") if t.strip()]
    for t in types:
        if t != "bf16" and t not in QUANTIZED:
            sys.exit(f"make_gguf: --types: unknown type '{t}' (bf16, q8_0, q4_k_m)")

    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    if manifest.get("seed") != args.seed or manifest.get("shape") != SHAPE:
        manifest = {"seed": args.seed, "shape": SHAPE, "files": {}}
    bf16 = args.out / f"{STEM}-bf16.gguf"
    if bf16.name in manifest["files"] and bf16.is_file():
        log(f"reusing {bf16} (seed {args.seed})")
    else:
        t0 = time.time()
        make_hf_folder(args.out / "hf", args.seed, args.tokenizer_dir)
        convert(args.llama_cpp, args.out / "hf", bf16)
        manifest["files"] = {bf16.name: {"type": "bf16", "bytes": bf16.stat().st_size, "sha256": sha256(bf16)}}
        log(f"{bf16.name} in {time.time() - t0:.0f} s")
    for t in types:
        if t == "bf16":
            continue
        target = args.out / f"{STEM}-{t}.gguf"
        t0 = time.time()
        quantize(args.llama_quantize, bf16, target, QUANTIZED[t])
        manifest["files"][target.name] = {"type": t, "bytes": target.stat().st_size, "sha256": sha256(target)}
        log(f"{target.name} in {time.time() - t0:.0f} s")
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    for name, f in manifest["files"].items():
        print(f"{f['bytes']:>13,d}  {f['sha256']}  {args.out / name}")


if __name__ == "__main__":
    main()
