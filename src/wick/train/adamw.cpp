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
  std::vector<Tensor> outputs;
  for (size_t i = 0; i < params.size(); ++i) {
    WICK_CHECK(grads[i].shape() == params[i].shape(), "adamw: gradient ", i, " has shape ", shape_str(grads[i].shape()),
               " for a parameter of shape ", shape_str(params[i].shape()));
    int64_t t = ++steps_[i];
    Tensor g = astype(grads[i], params[i].dtype());
    Tensor p = params[i] * (1.0 - rate * o.weight_decay);
    m_[i] = m_[i] * o.beta1 + g * (1.0 - o.beta1);
    v_[i] = v_[i] * o.beta2 + g * g * (1.0 - o.beta2);
    double c1 = 1.0 - std::pow(o.beta1, double(t)), c2 = 1.0 - std::pow(o.beta2, double(t));
    Tensor denom = sqrt(v_[i]) * (1.0 / std::sqrt(c2)) + o.eps;
    params[i] = p - m_[i] / denom * (rate / c1);
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
