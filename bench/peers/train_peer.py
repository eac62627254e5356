"""Peer of `model_bench --train`: PEFT LoRA training of a Qwen2.5-0.5B-shaped model with random
bf16 weights, batch 8 x 512 tokens, rank 16 (alpha 32) on all seven projections, AdamW;
tokens/s and peak GPU memory. Prints one JSON object.

--qlora: the QLoRA form (peer of `model_bench --train --quantize q4_0`): the same random model saved,
then loaded with bitsandbytes 4-bit NF4 weights (bf16 compute); no gradient checkpointing, as in
wick's run. Reports {"skipped": ...} when bitsandbytes is not installed.

--qv: rank 8 (alpha 16) on q_proj and v_proj only (PERFORMANCE.md D(i); peer of `model_bench --train
--qv`).

--liger: Liger's kernels patched into transformers' Qwen2 first (RMSNorm, RoPE, SwiGLU, fused linear
cross-entropy), as a user of PEFT + Liger runs it. Reports {"skipped": ...} when liger-kernel is not
installed.
"""
import json
import sys
import tempfile
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import Qwen2Config, Qwen2ForCausalLM


def main():
    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                      num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                      rope_theta=1000000.0, tie_word_embeddings=True)
    qlora = "--qlora" in sys.argv
    liger = "--liger" in sys.argv
    if liger:
        try:
            from liger_kernel.transformers import apply_liger_kernel_to_qwen2
        except ImportError:
            print(json.dumps({"liger": True, "skipped": "liger-kernel is not installed"}))
            return
        apply_liger_kernel_to_qwen2(rope=True, rms_norm=True, swiglu=True, cross_entropy=False,
                                    fused_linear_cross_entropy=True)
    if qlora:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            print(json.dumps({"qlora": True, "skipped": "bitsandbytes is not installed"}))
            return
        from transformers import BitsAndBytesConfig
        with tempfile.TemporaryDirectory() as tmp:
            Qwen2ForCausalLM(cfg).to(torch.bfloat16).save_pretrained(tmp)
            bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                     bnb_4bit_compute_dtype=torch.bfloat16)
            model = Qwen2ForCausalLM.from_pretrained(tmp, quantization_config=bnb, torch_dtype=torch.bfloat16,
                                                     device_map={"": 0})
    else:
        model = Qwen2ForCausalLM(cfg).to(torch.bfloat16).cuda()
    qv = "--qv" in sys.argv
    if qv:
        lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, task_type="CAUSAL_LM", target_modules=["q_proj", "v_proj"])
    else:
        lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM",
                          target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    model = get_peft_model(model, lora)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(0, 150000, (8, 512), device="cuda")

    def step():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    step()
    step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(5):
        step()
    torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    print(json.dumps({"device": torch.cuda.get_device_name(), "qlora": qlora, "liger": liger,
                      "train_r8_qv_tok_s" if qv else "train_r16_all_linear_tok_s": 8 * 512 * 5 / secs,
                      "peak_gib": torch.cuda.max_memory_allocated() / 2**30}))


if __name__ == "__main__":
    main()
