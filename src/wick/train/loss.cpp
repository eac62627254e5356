// Causal LM cross-entropy with shifted labels.
#include "wick/train/loss.h"

#include "wick/core/ops.h"

namespace wick::train {

namespace {
Tensor shifted_loss(const Tensor& logits, const Tensor& labels, Reduction reduction) {
  WICK_CHECK(logits.ndim() == 3 && labels.ndim() == 2 && logits.shape(0) == labels.shape(0) &&
                 logits.shape(1) == labels.shape(1),
             "causal_lm_loss: logits [batch, seq, vocab] and labels [batch, seq] expected, got ",
             shape_str(logits.shape()), " and ", shape_str(labels.shape()));
  int64_t t = logits.shape(1);
  WICK_CHECK(t >= 2, "causal_lm_loss: sequences of at least 2 tokens are needed, got ", t);
  Tensor pred = narrow(astype(logits, Dtype::F32), 1, 0, t - 1);
  Tensor target = narrow(labels, 1, 1, t - 1);
  return cross_entropy(pred, target, -100, reduction);
}
}  // namespace

Tensor causal_lm_loss(const Tensor& logits, const Tensor& labels) { return shifted_loss(logits, labels, Reduction::Mean); }
Tensor causal_lm_loss_sum(const Tensor& logits, const Tensor& labels) { return shifted_loss(logits, labels, Reduction::Sum); }

int64_t count_targets(const Tensor& labels) {
  Tensor target = narrow(labels, 1, 1, labels.shape(1) - 1);
  return sum(ne(target, scalar(-100, target.dtype(), target.device()))).item<int64_t>();
}

}  // namespace wick::train
