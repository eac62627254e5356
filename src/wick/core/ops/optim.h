// The ops a training step runs over all its parameters at once, as primitives of one node each
// (one kernel launch per group of tensors on a GPU instead of one or more per tensor): the AdamW
// step, and the cast of the parameters to the compute dtype.
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

// Each of xs as `dtype`, like astype one by one (the same values), as one node: the f32 parameters
// of an adapter cast to the model's compute dtype for a step. Its gradient casts the cotangents
// back to the inputs' dtype in one node too. The inputs share one floating dtype and device (else
// each is cast alone); returns xs as they are when they already have `dtype`.
std::vector<Tensor> astype_all(const std::vector<Tensor>& xs, Dtype dtype);

// Inputs: n tensors of one floating dtype and device (contiguous or not); outputs: the n tensors
// cast to the outputs' dtype.
class AstypeAll : public Primitive {
 public:
  explicit AstypeAll(size_t n) : n_(n) {}
  const char* name() const override { return "astype_all"; }
  int num_outputs() const override { return int(n_); }
  WICK_DECLARE_EVAL_OUTPUTS
  std::vector<Tensor> vjp_outputs(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<int>&,
                                  const std::vector<Tensor>&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  size_t n_;
};

}  // namespace wick
