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
  // Position t predicts label t + 1: the labels move left by one and the last position gets -100
  // (as transformers pads them), so the logits are used as they are — no narrowed copy, no f32
  // upcast (cross_entropy computes in f32 from any floating dtype), and the gradient is written
  // straight into a tensor of the logits' shape and dtype.
  Tensor last = full({labels.shape(0), 1}, -100, labels.dtype(), labels.device());
  Tensor target = concat({narrow(labels, 1, 1, t - 1), last}, 1);
  return cross_entropy(logits, target, -100, reduction);
}
}  // namespace

Tensor causal_lm_loss(const Tensor& logits, const Tensor& labels) { return shifted_loss(logits, labels, Reduction::Mean); }
Tensor causal_lm_loss_sum(const Tensor& logits, const Tensor& labels) { return shifted_loss(logits, labels, Reduction::Sum); }

int64_t count_targets(const Tensor& labels) {
  Tensor target = narrow(labels, 1, 1, labels.shape(1) - 1);
  return sum(ne(target, scalar(-100, target.dtype(), target.device()))).item<int64_t>();
}

}  // namespace wick::train
