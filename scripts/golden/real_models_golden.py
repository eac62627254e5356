"""Goldens for the real default models, made by the reference libraries on the files that
scripts/fetch-models.sh fetches:
- all-MiniLM-L6-v2: sentence-transformers embeddings of 24 varied sentences (one longer than the
  model's 256-token limit, so truncation is covered) -> tests/data/models/minilm_st_golden.json
- SmolLM2-135M-Instruct Q4_1 GGUF: transformers loads the GGUF (dequantized to f32, llama.cpp's
  q/k permutation undone by transformers) and greedily generates 32 tokens for two chat prompts
  -> tests/data/models/smollm2_greedy_golden.json (prompt ids and generated ids).

Regenerate (CPU is enough):
    python3 -m pip install torch transformers sentence-transformers gguf accelerate
    scripts/fetch-models.sh models
    python3 scripts/golden/real_models_golden.py models tests/data/models
"""
import json
import os
import sys

import torch

SENTENCES = [
    "A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.",
    "A man is riding a horse.", "A woman is playing violin.", "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.", "A monkey is playing drums.",
    "A cheetah is running behind its prey.", "The new movie is awesome!", "The cat sits outside",
    "I love pasta", "Do you like pizza?", "The weather is lovely today.", "It's so sunny outside!",
    "He drove to the stadium.", "Das ist ein Test auf Deutsch.", "¿Dónde está la biblioteca?",
    "東京は日本の首都です。", "Emoji test 🚀🔥 with symbols: 3.14 ≈ π", "", "   leading and trailing spaces   ",
    "def add(a, b):\n    return a + b",
    " ".join(["A very long sentence about embeddings, truncation and sentence transformers."] * 40),
]


def minilm(models, out):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(os.path.join(models, "all-MiniLM-L6-v2"), device="cpu")
    emb = model.encode(SENTENCES, normalize_embeddings=False, convert_to_numpy=True)
    with open(os.path.join(out, "minilm_st_golden.json"), "w") as f:
        json.dump({"max_seq_length": model.max_seq_length, "sentences": SENTENCES,
                   "embeddings": [[round(float(x), 7) for x in row] for row in emb]}, f)


def smollm2(models, out):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = os.path.join(models, "SmolLM2-135M-Instruct.Q4_1.gguf")
    tok = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path),
                                                 dtype=torch.float32).eval()
    cases = []
    for q in ["What is the capital of France?", "Write a short poem about the sea."]:
        text = tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
        ids = tok(text, add_special_tokens=False, return_tensors="pt").input_ids
        with torch.no_grad():
            gen = model.generate(ids, max_new_tokens=32, do_sample=False, eos_token_id=None, pad_token_id=0,
                                 min_new_tokens=32)
        cases.append({"prompt": q, "prompt_ids": ids[0].tolist(), "greedy_ids": gen[0, ids.shape[1]:].tolist()})
    with open(os.path.join(out, "smollm2_greedy_golden.json"), "w") as f:
        json.dump({"transformers": __import__("transformers").__version__, "cases": cases}, f)


if __name__ == "__main__":
    models = sys.argv[1] if len(sys.argv) > 1 else "models"
    out = sys.argv[2] if len(sys.argv) > 2 else "tests/data/models"
    minilm(models, out)
    smollm2(models, out)
    print("written to", out)
