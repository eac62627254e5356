// AdamW update, evaluated lazily so each parameter's update is one fused elementwise pass.
#include "wick/train/adamw.h"

#include <cmath>

#include "wick/core/autograd.h"
#include "wick/core/graph.h"
#include "wick/core/ops.h"

namespace wick::train {

void AdamW::step(std::vector<Tensor>& params, const std::vector<Tensor>& grads, double lr) {
  WICK_CHECK(params.size() == grads.size(), "adamw: ", params.size(), " parameters but ", grads.size(), " gradients");
  if (m_.empty()) {
    for (const Tensor& p : params) {
      m_.push_back(zeros_like(p));
      v_.push_back(zeros_like(p));
      steps_.push_back(0);
    }
  }
  WICK_CHECK(m_.size() == params.size(), "adamw: the parameter list changed size");
  const AdamWOptions& o = options_;
  double rate = lr >= 0 ? lr : o.lr;
  NoGradGuard no_grad;
  ExecModeScope lazy(ExecMode::Lazy);
  // The step's constants as device scalars, made once per (dtype, device, step count) and shared by
  // every parameter: a few fills per step instead of several per parameter.
  struct Constants {
    Dtype dtype;
    Device device;
    int64_t t;
    Tensor decay, beta1, one_minus_beta1, beta2, one_minus_beta2, inv_sqrt_c2, eps, rate_over_c1;
  };
  std::vector<Constants> constants;
  auto constants_for = [&](const Tensor& p, int64_t t) -> const Constants& {
    for (const Constants& c : constants)
      if (c.dtype == p.dtype() && c.device == p.device() && c.t == t) return c;
    double c1 = 1.0 - std::pow(o.beta1, double(t)), c2 = 1.0 - std::pow(o.beta2, double(t));
    auto s = [&](double v) { return scalar(v, p.dtype(), p.device()); };
    constants.push_back({p.dtype(), p.device(), t, s(1.0 - rate * o.weight_decay), s(o.beta1), s(1.0 - o.beta1),
                         s(o.beta2), s(1.0 - o.beta2), s(1.0 / std::sqrt(c2)), s(o.eps), s(rate / c1)});
    return constants.back();
  };
  std::vector<Tensor> outputs;
  for (size_t i = 0; i < params.size(); ++i) {
    WICK_CHECK(grads[i].shape() == params[i].shape(), "adamw: gradient ", i, " has shape ", shape_str(grads[i].shape()),
               " for a parameter of shape ", shape_str(params[i].shape()));
    const Constants& c = constants_for(params[i], ++steps_[i]);
    Tensor g = astype(grads[i], params[i].dtype());
    Tensor p = params[i] * c.decay;
    m_[i] = m_[i] * c.beta1 + g * c.one_minus_beta1;
    v_[i] = v_[i] * c.beta2 + g * g * c.one_minus_beta2;
    Tensor denom = sqrt(v_[i]) * c.inv_sqrt_c2 + c.eps;
    params[i] = p - m_[i] / denom * c.rate_over_c1;
    outputs.insert(outputs.end(), {params[i], m_[i], v_[i]});
  }
  eval(outputs);
}

void AdamW::restore(std::vector<Tensor> m, std::vector<Tensor> v, std::vector<int64_t> steps) {
  WICK_CHECK(m.size() == v.size() && m.size() == steps.size(), "adamw: inconsistent optimizer state (", m.size(), " / ",
             v.size(), " / ", steps.size(), ")");
  m_ = std::move(m);
  v_ = std::move(v);
  steps_ = std::move(steps);
}

}  // namespace wick::train
