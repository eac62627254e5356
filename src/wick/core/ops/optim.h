// Optimizer updates as primitives: one AdamW step over many tensors in one node (one kernel launch
// per group of tensors on a GPU) instead of a chain of elementwise ops per tensor.
#pragma once

#include <vector>

#include "wick/core/primitive.h"
#include "wick/core/tensor.h"

namespace wick {

struct AdamWHyper {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
};

struct AdamWTensors {
  std::vector<Tensor> params, m, v;
};

// One step of PyTorch's AdamW (decoupled weight decay first, bias-corrected moments) for each
// params[i] with gradient grads[i] (converted to the params' dtype), moments m[i], v[i] and step
// count steps[i] (this step's, >= 1): returns the new params, m and v. The params share one
// floating dtype and device; m and v are of the params' dtype and every tensor of a set has one
// shape. The update computes in f32 (f64 for f64 params) and rounds once.
AdamWTensors adamw_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                          const std::vector<Tensor>& m, const std::vector<Tensor>& v,
                          const std::vector<int64_t>& steps, const AdamWHyper& hyper);

namespace reference {
// The same step as a composition of elementwise ops per tensor, in the params' dtype.
AdamWTensors adamw_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                          const std::vector<Tensor>& m, const std::vector<Tensor>& v,
                          const std::vector<int64_t>& steps, const AdamWHyper& hyper);
}  // namespace reference

// Inputs: the n params, then n grads, n first and n second moments (all of one dtype and device,
// contiguous or not); outputs: n new params, n first and n second moments.
class AdamWUpdate : public Primitive {
 public:
  AdamWUpdate(AdamWHyper hyper, std::vector<int64_t> steps) : hyper_(hyper), steps_(std::move(steps)) {}
  const char* name() const override { return "adamw_update"; }
  int num_outputs() const override { return int(3 * steps_.size()); }
  const AdamWHyper& hyper() const { return hyper_; }
  // Tensor i's step factors: lr / (1 - beta1^t) and 1 / sqrt(1 - beta2^t).
  double rate_over_c1(size_t i) const;
  double inv_sqrt_c2(size_t i) const;
  WICK_DECLARE_EVAL_OUTPUTS
 private:
  AdamWHyper hyper_;
  std::vector<int64_t> steps_;
};

}  // namespace wick
