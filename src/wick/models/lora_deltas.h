// Low-rank updates applied to a model's linear layers at run time (LoRA): the model adds
// scale * (x A^T) B^T to the output of each linear module that has an entry here.
#pragma once

#include <string>
#include <unordered_map>

#include "wick/core/tensor.h"

namespace wick::models {

struct LoraDelta {
  Tensor a;  // [r, in]
  Tensor b;  // [out, r]
  double scale = 1.0;
};

// Keyed by the module's Hugging Face name, e.g. "model.layers.0.self_attn.q_proj".
using LoraDeltas = std::unordered_map<std::string, LoraDelta>;

}  // namespace wick::models
