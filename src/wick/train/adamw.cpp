// AdamW update: one adamw_update node per dtype and device, evaluated at once.
#include "wick/train/adamw.h"

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
  NoGradGuard no_grad;
  ExecModeScope lazy(ExecMode::Lazy);
  for (size_t i = 0; i < params.size(); ++i)
    WICK_CHECK(grads[i].shape() == params[i].shape(), "adamw: gradient ", i, " has shape ", shape_str(grads[i].shape()),
               " for a parameter of shape ", shape_str(params[i].shape()));
  for (int64_t& t : steps_) ++t;
  // One adamw_update node (one kernel launch per group of tensors on a GPU) per dtype and device.
  AdamWHyper hyper{lr >= 0 ? lr : o.lr, o.beta1, o.beta2, o.eps, o.weight_decay};
  std::vector<bool> done(params.size(), false);
  std::vector<Tensor> outputs;
  for (size_t first = 0; first < params.size(); ++first) {
    if (done[first]) continue;
    std::vector<size_t> group;
    for (size_t i = first; i < params.size(); ++i)
      if (!done[i] && params[i].dtype() == params[first].dtype() && params[i].device() == params[first].device()) {
        group.push_back(i);
        done[i] = true;
      }
    std::vector<Tensor> p, g, m, v;
    std::vector<int64_t> t;
    for (size_t i : group) {
      p.push_back(params[i]);
      g.push_back(grads[i]);
      m.push_back(m_[i]);
      v.push_back(v_[i]);
      t.push_back(steps_[i]);
    }
    AdamWTensors r = adamw_update(p, g, m, v, t, hyper);
    for (size_t k = 0; k < group.size(); ++k) {
      params[group[k]] = r.params[k];
      m_[group[k]] = r.m[k];
      v_[group[k]] = r.v[k];
      outputs.insert(outputs.end(), {r.params[k], r.m[k], r.v[k]});
    }
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
