// Causal LM cross-entropy with shifted labels.
#include "wick/train/loss.h"

#include "wick/core/ops.h"

namespace wick::train {

namespace {
// Position t predicts label t + 1: the labels move left by one and the last position gets -100 (as
// transformers pads them), so the logits (or hidden states) are used as they are — no narrowed
// copy, no f32 upcast (the losses compute in f32 from any floating dtype), and the gradient is
// written straight into a tensor of their shape and dtype.
Tensor shifted_targets(const Tensor& x, const Tensor& labels, const char* what) {
  WICK_CHECK(x.ndim() == 3 && labels.ndim() == 2 && x.shape(0) == labels.shape(0) && x.shape(1) == labels.shape(1),
             "causal_lm_loss: ", what, " [batch, seq, ...] and labels [batch, seq] expected, got ", shape_str(x.shape()),
             " and ", shape_str(labels.shape()));
  int64_t t = x.shape(1);
  WICK_CHECK(t >= 2, "causal_lm_loss: sequences of at least 2 tokens are needed, got ", t);
  Tensor last = full({labels.shape(0), 1}, -100, labels.dtype(), labels.device());
  return concat({narrow(labels, 1, 1, t - 1), last}, 1);
}

Tensor shifted_loss(const Tensor& logits, const Tensor& labels, Reduction reduction) {
  return cross_entropy(logits, shifted_targets(logits, labels, "logits"), -100, reduction);
}
}  // namespace

Tensor causal_lm_loss(const Tensor& logits, const Tensor& labels) { return shifted_loss(logits, labels, Reduction::Mean); }
Tensor causal_lm_loss_sum(const Tensor& logits, const Tensor& labels) { return shifted_loss(logits, labels, Reduction::Sum); }

Tensor causal_lm_loss_sum(const Tensor& hidden, const Tensor& lm_head, const Tensor& labels) {
  return linear_cross_entropy(hidden, lm_head, shifted_targets(hidden, labels, "hidden states"), -100, Reduction::Sum);
}

int64_t count_targets(const Tensor& labels) {
  Tensor target = narrow(labels, 1, 1, labels.shape(1) - 1);
  return sum(ne(target, scalar(-100, target.dtype(), target.device()))).item<int64_t>();
}

}  // namespace wick::train
