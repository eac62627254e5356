// Softmax and log-softmax: the ops, the vjp and the reference compositions.
#include "wick/core/ops/softmax.h"

#include "wick/core/ops.h"
#include "wick/core/ops/common.h"

namespace wick {

using detail::check_floating;

Tensor softmax(const Tensor& x, int dim) {
  check_floating("softmax", x);
  int d = normalize_dim(dim, x.ndim(), "softmax");
  if (x.ndim() > 0 && d != x.ndim() - 1) return transpose(softmax(transpose(x, d, -1), -1), d, -1);
  return Tensor::make(x.shape(), x.dtype(), x.device(), std::make_shared<Softmax>(false), {x});
}

Tensor log_softmax(const Tensor& x, int dim) {
  check_floating("log_softmax", x);
  int d = normalize_dim(dim, x.ndim(), "log_softmax");
  if (x.ndim() > 0 && d != x.ndim() - 1) return transpose(log_softmax(transpose(x, d, -1), -1), d, -1);
  return Tensor::make(x.shape(), x.dtype(), x.device(), std::make_shared<Softmax>(true), {x});
}

std::vector<Tensor> Softmax::vjp(const std::vector<Tensor>&, const Tensor& g, const std::vector<int>&, const Tensor& y) {
  return {Tensor::make(y.shape(), y.dtype(), y.device(), std::make_shared<SoftmaxBackward>(log_), {y, g})};
}

namespace reference {

Tensor softmax(const Tensor& x, int dim) {
  Tensor e = exp(x - stop_gradient(max(x, {dim}, true)));
  return e / sum(e, {dim}, true);
}

Tensor log_softmax(const Tensor& x, int dim) { return x - logsumexp(x, {dim}, true); }

}  // namespace reference

}  // namespace wick
