// Cross-entropy: the op, the vjp and the reference composition.
#include "wick/core/ops/loss.h"

#include "wick/core/ops.h"
#include "wick/core/ops/common.h"

namespace wick {

using detail::check_device;
using detail::check_floating;
using detail::check_index;
using detail::pick;

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index, Reduction reduction) {
  check_floating("cross_entropy", logits);
  check_index("cross_entropy", targets);
  check_device("cross_entropy", logits, targets);
  WICK_CHECK(logits.ndim() >= 1, "cross_entropy: logits must have a class dim");
  Shape batch(logits.shape().begin(), logits.shape().end() - 1);
  WICK_CHECK(targets.shape() == batch, "cross_entropy: logits ", shape_str(logits.shape()), " need targets of shape ",
             shape_str(batch), ", got ", shape_str(targets.shape()));
  int64_t v = logits.shape(-1);
  Tensor flat_logits = reshape(logits, {-1, v});
  Tensor flat_targets = reshape(targets, {-1});
  Tensor losses = Tensor::make({flat_targets.shape(0)}, Dtype::F32, logits.device(),
                               std::make_shared<CrossEntropy>(ignore_index), {flat_logits, flat_targets});
  if (reduction == Reduction::None) return reshape(losses, batch);
  Tensor total = sum(losses);
  if (reduction == Reduction::Sum) return total;
  Tensor count = astype(sum(ne(flat_targets, scalar(double(ignore_index), flat_targets.dtype(), targets.device()))), Dtype::F32);
  return total / count;
}

std::vector<Tensor> CrossEntropy::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                      const Tensor&) {
  Tensor dlogits = Tensor::make(in[0].shape(), in[0].dtype(), in[0].device(),
                                std::make_shared<CrossEntropyBackward>(ignore_index_), {in[0], in[1], astype(g, Dtype::F32)});
  return pick(argnums, {dlogits, Tensor()});
}

namespace reference {

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index, Reduction reduction) {
  int64_t v = logits.shape(-1);
  Tensor flat = reshape(logits, {-1, v});
  Tensor t = reshape(targets, {-1, 1});
  Tensor classes = reshape(arange(0, double(v), 1, t.dtype(), logits.device()), {1, v});
  Tensor picked = sum(where(eq(t, classes), flat, zeros({}, flat.dtype(), flat.device())), {-1});
  Tensor valid = ne(reshape(t, {-1}), scalar(double(ignore_index), t.dtype(), t.device()));
  Tensor losses = where(valid, logsumexp(flat, {-1}) - picked, zeros({}, flat.dtype(), flat.device()));
  if (reduction == Reduction::None) return reshape(losses, targets.shape());
  Tensor total = sum(losses);
  if (reduction == Reduction::Sum) return total;
  return total / astype(sum(valid), total.dtype());
}

}  // namespace reference

}  // namespace wick
