// LayerNorm and RMSNorm: the ops, the vjps and the reference compositions.
#include "wick/core/ops/norm.h"

#include "wick/core/ops.h"
#include "wick/core/ops/common.h"

namespace wick {

using detail::check_device;
using detail::check_floating;
using detail::pick;

Tensor layer_norm(const Tensor& x, const std::optional<Tensor>& weight, const std::optional<Tensor>& bias, double eps) {
  check_floating("layer_norm", x);
  WICK_CHECK(x.ndim() >= 1, "layer_norm: input must have at least 1 dim");
  int64_t h = x.shape(-1);
  std::vector<Tensor> inputs{x};
  for (const auto* p : {&weight, &bias}) {
    if (!*p) continue;
    WICK_CHECK((*p)->shape() == Shape{h}, "layer_norm: weight/bias must be [", h, "] for input ",
               shape_str(x.shape()), ", got ", shape_str((*p)->shape()));
    check_device("layer_norm", x, **p);
    inputs.push_back(astype(**p, x.dtype()));
  }
  return Tensor::make(x.shape(), x.dtype(), x.device(),
                      std::make_shared<LayerNorm>(eps, weight.has_value(), bias.has_value()), inputs);
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  check_floating("rms_norm", x);
  WICK_CHECK(x.ndim() >= 1, "rms_norm: input must have at least 1 dim");
  WICK_CHECK(weight.shape() == Shape{x.shape(-1)}, "rms_norm: weight must be [", x.shape(-1),
             "] for input ", shape_str(x.shape()), ", got ", shape_str(weight.shape()));
  check_device("rms_norm", x, weight);
  return Tensor::make(x.shape(), x.dtype(), x.device(), std::make_shared<RMSNorm>(eps), {x, astype(weight, x.dtype())});
}

namespace {
// Sums a per-row quantity [..., H] down to [H].
Tensor sum_rows(const Tensor& x) { return sum(reshape(x, {-1, x.shape(-1)}), {0}); }
}  // namespace

std::vector<Tensor> LayerNorm::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                   const Tensor&) {
  const Tensor& x = in[0];
  std::vector<Tensor> all(in.size());
  for (int i : argnums) {
    if (i == 0) {
      std::vector<Tensor> inputs{x};
      if (has_weight_) inputs.push_back(in[1]);
      inputs.push_back(g);
      all[0] = Tensor::make(x.shape(), x.dtype(), x.device(), std::make_shared<NormBackward>(false, eps_, has_weight_), inputs);
    }
  }
  bool want_params = std::any_of(argnums.begin(), argnums.end(), [](int i) { return i > 0; });
  if (want_params) {
    // Weight and bias gradients are sums over rows; x-hat is recomputed from x.
    Tensor mu = mean(x, {-1}, true);
    Tensor centered = x - mu;
    Tensor xhat = centered * rsqrt(mean(centered * centered, {-1}, true) + eps_);
    if (has_weight_) all[1] = sum_rows(g * xhat);
    if (has_bias_) all[has_weight_ ? 2 : 1] = sum_rows(g);
  }
  return pick(argnums, all);
}

std::vector<Tensor> RMSNorm::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                 const Tensor&) {
  const Tensor& x = in[0];
  std::vector<Tensor> all(2);
  for (int i : argnums) {
    if (i == 0)
      all[0] = Tensor::make(x.shape(), x.dtype(), x.device(), std::make_shared<NormBackward>(true, eps_, true), {x, in[1], g});
    if (i == 1) all[1] = sum_rows(g * x * rsqrt(mean(x * x, {-1}, true) + eps_));
  }
  return pick(argnums, all);
}

namespace reference {

Tensor layer_norm(const Tensor& x, const std::optional<Tensor>& weight, const std::optional<Tensor>& bias, double eps) {
  Tensor mu = mean(x, {-1}, true);
  Tensor centered = x - mu;
  Tensor var = mean(centered * centered, {-1}, true);
  Tensor y = centered * rsqrt(var + eps);
  if (weight) y = y * *weight;
  if (bias) y = y + *bias;
  return y;
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  return x * rsqrt(mean(x * x, {-1}, true) + eps) * weight;
}

}  // namespace reference

}  // namespace wick
