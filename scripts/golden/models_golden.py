"""Writes the model-parity fixtures of tests/data/models/ with the reference libraries
(transformers, peft, torch): tiny random-initialised models of each architecture wick supports,
their inputs, logits, greedy continuations, mean-pooled embeddings, and a PEFT LoRA adapter with
its gradients and 5 AdamW steps.

Regenerate (any machine with torch, transformers, peft; CPU is enough):
    python3 scripts/golden/models_golden.py tests/data/models
Everything is seeded; float32 on the CPU.
"""
import os
import sys

import torch
from safetensors.torch import save_file


def save_tensors(tensors, path):
    # Independent contiguous copies: safetensors refuses tensors that share memory.
    save_file({k: v.detach().clone().contiguous() for k, v in tensors.items()}, path)


def causal_lm_fixture(root, name, config, seed):
    from transformers import AutoModelForCausalLM

    out = os.path.join(root, name)
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config).float().eval()
    # Random init of transformers is small; spread the weights so logits are not all alike.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    model.save_pretrained(out, safe_serialization=True)
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, config.vocab_size, (2, 11), generator=g)
    with torch.no_grad():
        logits = model(input_ids=ids).logits
        prompt = ids[:1, :7]
        gen = model.generate(prompt, max_new_tokens=24, do_sample=False, min_new_tokens=24,
                             pad_token_id=0, eos_token_id=None)
    save_tensors({"input_ids": ids.to(torch.int64).contiguous(), "logits": logits.contiguous(),
               "prompt_ids": prompt.to(torch.int64).contiguous(),
               "greedy_ids": gen[:, prompt.shape[1]:].to(torch.int64).contiguous()},
              os.path.join(out, "expected.safetensors"))
    return model, ids


def encoder_fixture(root, name, model_cls, config, seed):
    out = os.path.join(root, name)
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(seed)
    model = model_cls(config).eval()
    model.save_pretrained(out, safe_serialization=True)
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(5, config.vocab_size, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 4:] = 0
    with torch.no_grad():
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    m = mask.unsqueeze(-1).float()
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    normed = torch.nn.functional.normalize(pooled, p=2, dim=1)
    save_tensors({"input_ids": ids.to(torch.int64).contiguous(), "attention_mask": mask.to(torch.int64).contiguous(),
               "last_hidden_state": hidden.contiguous(), "embeddings": normed.contiguous()},
              os.path.join(out, "expected.safetensors"))


def peft_fixture(root, base_dir, seed):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    out = os.path.join(root, "qwen2_lora")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(base_dir).float()
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                     "gate_proj", "up_proj", "down_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(base, cfg)
    with torch.no_grad():  # non-zero B so the adapter changes the logits
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn_like(p) * 0.05)
    model.save_pretrained(os.path.join(out, "adapter"))
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, base.config.vocab_size, (2, 10), generator=g)
    labels = ids.clone()
    labels[0, :4] = -100
    labels[1, 7:] = -100
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    model.train()
    loss = model(input_ids=ids, labels=labels).loss
    loss.backward()
    grads = {n.replace(".default", ""): p.grad.detach().clone().contiguous()
             for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3, weight_decay=0.01)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        step_loss = model(input_ids=ids, labels=labels).loss
        losses.append(step_loss.item())
        step_loss.backward()
        opt.step()
    tensors = {"input_ids": ids.to(torch.int64).contiguous(), "labels": labels.to(torch.int64).contiguous(),
               "logits": logits.contiguous(), "loss": loss.detach().reshape(1),
               "adamw_losses": torch.tensor(losses, dtype=torch.float64)}
    tensors.update({"grad." + k: v for k, v in grads.items()})
    save_tensors(tensors, os.path.join(out, "expected.safetensors"))


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "tests/data/models"
    os.makedirs(root, exist_ok=True)
    from transformers import BertConfig, BertModel, LlamaConfig, MPNetConfig, MPNetModel, Qwen2Config

    torch.set_grad_enabled(True)
    qwen = Qwen2Config(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                       rope_theta=10000.0, tie_word_embeddings=True, rms_norm_eps=1e-6)
    causal_lm_fixture(root, "qwen2_tied", qwen, 1)
    llama3 = LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         rope_theta=500000.0, tie_word_embeddings=True, rms_norm_eps=1e-5,
                         rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                       "high_freq_factor": 4.0, "original_max_position_embeddings": 16})
    causal_lm_fixture(root, "llama_gqa_llama3rope", llama3, 2)
    llama = LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
                        tie_word_embeddings=False, rms_norm_eps=1e-6)
    causal_lm_fixture(root, "llama_untied", llama, 3)
    bert = BertConfig(vocab_size=300, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=128, max_position_embeddings=64, type_vocab_size=2)
    encoder_fixture(root, "bert", BertModel, bert, 4)
    mpnet = MPNetConfig(vocab_size=300, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=64, relative_attention_num_buckets=32)
    encoder_fixture(root, "mpnet", MPNetModel, mpnet, 5)
    peft_fixture(root, os.path.join(root, "qwen2_tied"), 6)
    print("fixtures written to", root)


if __name__ == "__main__":
    main()
