// Low-rank updates applied to a model's linear layers at run time (LoRA): the model adds
// scale * (dropout(x) A^T) B^T to the output of each linear module that has an entry here.
#pragma once

#include <string>
#include <unordered_map>

#include "wick/core/ops.h"
#include "wick/core/tensor.h"

namespace wick::models {

struct LoraDelta {
  Tensor a;  // [r, in]
  Tensor b;  // [out, r]
  double scale = 1.0;
  // Training only (PEFT's lora_dropout): when > 0, the input of A is dropout(x, dropout,
  // dropout_key) while the base weight sees x unchanged. Evaluation and generation leave it 0.
  double dropout = 0.0;
  RandomKey dropout_key;
};

// Keyed by the module's Hugging Face name, e.g. "model.layers.0.self_attn.q_proj".
using LoraDeltas = std::unordered_map<std::string, LoraDelta>;

}  // namespace wick::models
