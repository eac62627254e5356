"""Goldens of transformers' logits processors for wick's sampler tests: random logits and token
histories run through RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
TopKLogitsWarper, TopPLogitsWarper and MinPLogitsWarper (in generate's order), then softmax.

Regenerate: python3 -m pip install torch transformers
            python3 scripts/golden/sampling_golden.py tests/data/sampling_golden.json
"""
import json
import sys

import torch
from transformers.generation.logits_process import (LogitsProcessorList, MinPLogitsWarper,
                                                    RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                                                    TopKLogitsWarper, TopPLogitsWarper)

CASES = [
    {"repetition_penalty": 1.3}, {"temperature": 0.7}, {"top_k": 5}, {"top_p": 0.9}, {"min_p": 0.1},
    {"repetition_penalty": 1.2, "temperature": 0.8, "top_k": 40, "top_p": 0.95},
    {"repetition_penalty": 0.8, "temperature": 1.5, "top_p": 0.5, "min_p": 0.05},
]


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else "tests/data/sampling_golden.json"
    g = torch.Generator().manual_seed(0)
    out = []
    for i, opts in enumerate(CASES):
        vocab = 50 + 37 * i
        logits = (torch.randn(1, vocab, generator=g, dtype=torch.float64) * 3).float()
        history = torch.randint(0, vocab, (1, 12), generator=g)
        procs = LogitsProcessorList()
        if "repetition_penalty" in opts:
            procs.append(RepetitionPenaltyLogitsProcessor(opts["repetition_penalty"]))
        if "temperature" in opts:
            procs.append(TemperatureLogitsWarper(opts["temperature"]))
        if "top_k" in opts:
            procs.append(TopKLogitsWarper(opts["top_k"]))
        if "top_p" in opts:
            procs.append(TopPLogitsWarper(opts["top_p"]))
        if "min_p" in opts:
            procs.append(MinPLogitsWarper(opts["min_p"]))
        scores = procs(history, logits.clone())
        probs = torch.softmax(scores.double(), -1)[0]
        out.append({"options": opts, "logits": logits[0].tolist(), "history": history[0].tolist(),
                    "probabilities": probs.tolist()})
    with open(out_path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
