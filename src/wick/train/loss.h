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
// The same sum from the final hidden states [batch, seq, hidden] and the LM head's weight
// [vocab, hidden], without the logits: linear_cross_entropy takes them a chunk of rows at a time.
Tensor causal_lm_loss_sum(const Tensor& hidden, const Tensor& lm_head, const Tensor& labels);
// Targets a batch of labels holds (labels after the first position that are not -100).
int64_t count_targets(const Tensor& labels);

}  // namespace wick::train
