// Training losses.
#pragma once

#include "wick/core/tensor.h"

namespace wick::train {

// Causal language-model loss as transformers computes it: position t predicts label t+1, labels
// equal to -100 are ignored, the mean is over all remaining targets of the batch (f32).
Tensor causal_lm_loss(const Tensor& logits, const Tensor& labels);
// The sum of the token losses instead of their mean (gradient accumulation divides by the target
// count of the whole accumulated batch).
Tensor causal_lm_loss_sum(const Tensor& logits, const Tensor& labels);
// Targets a batch of labels holds (labels after the first position that are not -100).
int64_t count_targets(const Tensor& labels);

}  // namespace wick::train
