// Training losses.
#pragma once

#include "wick/core/tensor.h"

namespace wick::train {

// Causal language-model loss as transformers computes it: position t predicts label t+1, labels
// equal to -100 are ignored, the mean is over all remaining targets of the batch (f32).
Tensor causal_lm_loss(const Tensor& logits, const Tensor& labels);

}  // namespace wick::train
