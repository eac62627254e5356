// Cross-entropy: the op, the vjp and the reference composition.
#include "wick/core/ops/loss.h"

#include <algorithm>

#include "wick/core/ops.h"
#include "wick/core/graph.h"
#include "wick/core/ops/common.h"
#include "wick/core/settings.h"

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

Tensor linear_cross_entropy(const Tensor& x, const Tensor& weight, const Tensor& targets, int64_t ignore_index,
                            Reduction reduction, int64_t rows_per_chunk) {
  check_floating("linear_cross_entropy", x);
  check_index("linear_cross_entropy", targets);
  check_device("linear_cross_entropy", x, weight);
  check_device("linear_cross_entropy", x, targets);
  WICK_CHECK(x.ndim() >= 1 && weight.ndim() == 2 && weight.shape(1) == x.shape(-1),
             "linear_cross_entropy: x [..., D] and weight [V, D] expected, got ", shape_str(x.shape()), " and ",
             shape_str(weight.shape()));
  WICK_CHECK(weight.dtype() == x.dtype(), "linear_cross_entropy: x is ", dtype_name(x.dtype()), " but weight is ",
             dtype_name(weight.dtype()));
  WICK_CHECK(rows_per_chunk >= 0, "linear_cross_entropy: rows_per_chunk must be >= 0, got ", rows_per_chunk);
  Shape batch(x.shape().begin(), x.shape().end() - 1);
  WICK_CHECK(targets.shape() == batch, "linear_cross_entropy: x ", shape_str(x.shape()), " needs targets of shape ",
             shape_str(batch), ", got ", shape_str(targets.shape()));
  Tensor flat_x = reshape(x, {-1, x.shape(-1)});
  Tensor flat_targets = reshape(targets, {-1});
  bool keep_grad = grad_enabled() && x.tracks_grad();
  Tensor losses = Tensor::make({flat_targets.shape(0)}, Dtype::F32, x.device(),
                               std::make_shared<LinearCrossEntropy>(ignore_index, keep_grad, rows_per_chunk),
                               {flat_x, weight, flat_targets});
  if (reduction == Reduction::None) return reshape(losses, batch);
  Tensor total = sum(losses);
  if (reduction == Reduction::Sum) return total;
  Tensor count = astype(sum(ne(flat_targets, scalar(double(ignore_index), flat_targets.dtype(), targets.device()))), Dtype::F32);
  return total / count;
}

int64_t LinearCrossEntropy::chunk_rows(int64_t n, int64_t vocab, int64_t value_bytes, int64_t budget) const {
  int64_t rows = rows_per_chunk_ > 0 ? rows_per_chunk_ : budget / std::max<int64_t>(1, vocab * value_bytes);
  return std::clamp<int64_t>(rows, 1, std::max<int64_t>(n, 1));
}

std::vector<Tensor> LinearCrossEntropy::vjp(const std::vector<Tensor>& in, const Tensor& g,
                                            const std::vector<int>& argnums, const Tensor& out) {
  const Tensor &x = in[0], &weight = in[1], &targets = in[2];
  // In lazy mode the forward may not have run yet: dx_unit_ comes from its evaluation.
  if (keep_grad_ && !out.is_evaluated()) eval({out});
  Tensor dloss = astype(g, Dtype::F32);
  std::vector<Tensor> grads;
  for (int arg : argnums) {
    if (arg == 0) {
      WICK_CHECK(dx_unit_.defined(), "linear_cross_entropy: the gradient of x was not kept by the forward (x did not "
                 "trace a gradient when the op was made)");
      grads.push_back(astype(dx_unit_ * unsqueeze(dloss, 1), x.dtype()));
    } else if (arg == 1) {
      // d weight = sum over chunks of (d logits of the chunk)^T @ x of the chunk, taking each
      // chunk's logits again.
      int64_t n = x.shape(0), v = weight.shape(0);
      int64_t rows = chunk_rows(n, v, int64_t(dtype_size(x.dtype())), int64_t(256) << 20);
      Tensor dw;
      for (int64_t r0 = 0; r0 < n; r0 += rows) {
        int64_t len = std::min(rows, n - r0);
        Tensor xc = narrow(x, 0, r0, len);
        Tensor logits = matmul(xc, transpose(weight, 0, 1));
        Tensor dlogits = Tensor::make(logits.shape(), logits.dtype(), logits.device(),
                                      std::make_shared<CrossEntropyBackward>(ignore_index_),
                                      {logits, narrow(targets, 0, r0, len), narrow(dloss, 0, r0, len)});
        Tensor part = matmul(transpose(dlogits, 0, 1), xc);
        dw = dw.defined() ? add(dw, part) : part;
      }
      grads.push_back(dw.defined() ? dw : zeros_like(weight));
    } else {
      grads.push_back(Tensor());
    }
  }
  dx_unit_ = Tensor();  // one backward per forward, as with any saved tensor
  return grads;
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
