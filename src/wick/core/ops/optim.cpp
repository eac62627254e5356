// AdamW's step: the op, the primitive's step factors and the reference composition.
#include "wick/core/ops/optim.h"

#include <cmath>

#include "wick/core/ops.h"
#include "wick/core/ops/common.h"

namespace wick {

namespace {
void check_sets(const char* op, const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                const std::vector<Tensor>& m, const std::vector<Tensor>& v, const std::vector<int64_t>& steps) {
  size_t n = params.size();
  WICK_CHECK(grads.size() == n && m.size() == n && v.size() == n && steps.size() == n, op, ": ", n, " params but ",
             grads.size(), " grads, ", m.size(), " first moments, ", v.size(), " second moments and ", steps.size(),
             " step counts");
  for (size_t i = 0; i < n; ++i) {
    const Tensor& p = params[i];
    detail::check_floating(op, p);
    WICK_CHECK(p.dtype() == params[0].dtype() && p.device() == params[0].device(), op, ": param ", i, " is ",
               dtype_name(p.dtype()), " on ", p.device().str(), ", param 0 ", dtype_name(params[0].dtype()), " on ",
               params[0].device().str());
    for (const Tensor* t : {&grads[i], &m[i], &v[i]}) {
      WICK_CHECK(t->shape() == p.shape(), op, ": param ", i, " has shape ", shape_str(p.shape()),
                 " but its gradient or moments have ", shape_str(t->shape()));
      detail::check_device(op, p, *t);
    }
    detail::check_floating(op, grads[i]);
    WICK_CHECK(m[i].dtype() == p.dtype() && v[i].dtype() == p.dtype(), op, ": the moments of param ", i,
               " must be ", dtype_name(p.dtype()));
    WICK_CHECK(steps[i] >= 1, op, ": step count ", steps[i], " of param ", i, " must be >= 1");
  }
}
}  // namespace

AdamWTensors adamw_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                          const std::vector<Tensor>& m, const std::vector<Tensor>& v,
                          const std::vector<int64_t>& steps, const AdamWHyper& hyper) {
  check_sets("adamw_update", params, grads, m, v, steps);
  size_t n = params.size();
  if (n == 0) return {};
  std::vector<Tensor> inputs(params);
  for (size_t i = 0; i < n; ++i)
    inputs.push_back(grads[i].dtype() == params[i].dtype() ? grads[i] : astype(grads[i], params[i].dtype()));
  inputs.insert(inputs.end(), m.begin(), m.end());
  inputs.insert(inputs.end(), v.begin(), v.end());
  std::vector<Shape> shapes;
  for (int k = 0; k < 3; ++k)
    for (const Tensor& p : params) shapes.push_back(p.shape());
  std::vector<Tensor> out = Tensor::make_siblings(shapes, std::vector<Dtype>(3 * n, params[0].dtype()),
                                                  params[0].device(), std::make_shared<AdamWUpdate>(hyper, steps),
                                                  std::move(inputs));
  AdamWTensors r;
  r.params.assign(out.begin(), out.begin() + long(n));
  r.m.assign(out.begin() + long(n), out.begin() + long(2 * n));
  r.v.assign(out.begin() + long(2 * n), out.end());
  return r;
}

double AdamWUpdate::rate_over_c1(size_t i) const {
  return hyper_.lr / (1.0 - std::pow(hyper_.beta1, double(steps_[i])));
}
double AdamWUpdate::inv_sqrt_c2(size_t i) const {
  return 1.0 / std::sqrt(1.0 - std::pow(hyper_.beta2, double(steps_[i])));
}

std::vector<Tensor> astype_all(const std::vector<Tensor>& xs, Dtype dtype) {
  if (xs.empty()) return {};
  bool one_group = true, all_there = true;
  for (const Tensor& x : xs) {
    one_group = one_group && x.dtype() == xs[0].dtype() && x.device() == xs[0].device() && is_floating(x.dtype());
    all_there = all_there && x.dtype() == dtype;
  }
  if (all_there) return xs;
  if (!one_group || !is_floating(dtype)) {
    std::vector<Tensor> out;
    for (const Tensor& x : xs) out.push_back(astype(x, dtype));
    return out;
  }
  std::vector<Shape> shapes;
  for (const Tensor& x : xs) shapes.push_back(x.shape());
  return Tensor::make_siblings(shapes, std::vector<Dtype>(xs.size(), dtype), xs[0].device(),
                               std::make_shared<AstypeAll>(xs.size()), xs);
}

std::vector<Tensor> AstypeAll::vjp_outputs(const std::vector<Tensor>& in, const std::vector<Tensor>& cotangents,
                                           const std::vector<int>& argnums, const std::vector<Tensor>&) {
  std::vector<Tensor> reached;
  for (int i : argnums)
    if (cotangents[size_t(i)].defined()) reached.push_back(cotangents[size_t(i)]);
  std::vector<Tensor> back = astype_all(reached, in[0].dtype());
  std::vector<Tensor> all;
  size_t k = 0;
  for (int i : argnums) all.push_back(cotangents[size_t(i)].defined() ? back[k++] : Tensor());
  return all;
}

namespace reference {

AdamWTensors adamw_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                          const std::vector<Tensor>& m, const std::vector<Tensor>& v,
                          const std::vector<int64_t>& steps, const AdamWHyper& h) {
  check_sets("adamw_update", params, grads, m, v, steps);
  AdamWTensors r;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    auto s = [&](double x) { return scalar(x, p.dtype(), p.device()); };
    double c1 = 1.0 - std::pow(h.beta1, double(steps[i])), c2 = 1.0 - std::pow(h.beta2, double(steps[i]));
    Tensor g = astype(grads[i], p.dtype());
    Tensor mi = m[i] * s(h.beta1) + g * s(1.0 - h.beta1);
    Tensor vi = v[i] * s(h.beta2) + g * g * s(1.0 - h.beta2);
    Tensor denom = sqrt(vi) * s(1.0 / std::sqrt(c2)) + s(h.eps);
    r.params.push_back(p * s(1.0 - h.lr * h.weight_decay) - mi / denom * s(h.lr / c1));
    r.m.push_back(mi);
    r.v.push_back(vi);
  }
  return r;
}

}  // namespace reference

}  // namespace wick
