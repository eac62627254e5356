// Vector-Jacobian products of the primitives declared in primitives.h (those of an op family are
// in core/ops/<family>.cpp), written with ordinary ops so they run on any device (and are
// themselves differentiable where the ops are).
#include <algorithm>
#include <cmath>

#include "wick/core/ops.h"
#include "wick/core/primitives.h"

namespace wick {

std::vector<Tensor> Primitive::vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) {
  fail(name(), ": no gradient is defined for this op");
}

std::vector<Tensor> Primitive::vjp_outputs(const std::vector<Tensor>& inputs, const std::vector<Tensor>& cotangents,
                                           const std::vector<int>& argnums, const std::vector<Tensor>& outputs) {
  WICK_CHECK(outputs.size() == 1, name(), ": no gradient is defined for this op of ", outputs.size(), " outputs");
  return vjp(inputs, cotangents[0], argnums, outputs[0]);
}

std::vector<Tensor> AsType::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>&, const Tensor&) {
  return {astype(g, in[0].dtype())};
}

std::vector<Tensor> ToDevice::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>&, const Tensor&) {
  return {to_device(g, in[0].device())};
}

std::vector<Tensor> Reshape::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>&, const Tensor&) {
  return {reshape(g, in[0].shape())};
}

std::vector<Tensor> Permute::vjp(const std::vector<Tensor>&, const Tensor& g, const std::vector<int>&, const Tensor&) {
  std::vector<int> inverse(perm_.size());
  for (size_t i = 0; i < perm_.size(); ++i) inverse[perm_[i]] = int(i);
  return {permute(g, inverse)};
}

std::vector<Tensor> Slice::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>&, const Tensor&) {
  Tensor base = zeros(in[0].shape(), g.dtype(), g.device());
  return {Tensor::make(base.shape(), g.dtype(), g.device(), std::make_shared<SliceUpdate>(start_, step_), {base, g})};
}

std::vector<Tensor> Split::vjp_outputs(const std::vector<Tensor>& in, const std::vector<Tensor>& gs,
                                       const std::vector<int>&, const std::vector<Tensor>&) {
  // One join (a view where a backward wrote the gradients side by side, see Concat); zeros for a
  // part without a gradient.
  const Tensor& x = in[0];
  std::vector<Tensor> parts;
  for (size_t i = 0; i < gs.size(); ++i) {
    Shape shape = x.shape();  // (an output nobody holds any more is undefined)
    shape[axis_] = sizes_[i];
    parts.push_back(gs[i].defined() ? gs[i] : zeros(shape, x.dtype(), x.device()));
  }
  return {concat(parts, axis_)};
}

std::vector<Tensor> BroadcastTo::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>&,
                                     const Tensor&) {
  const Shape& from = in[0].shape();
  const Shape& to = g.shape();
  size_t lead = to.size() - from.size();
  std::vector<int> dims;
  for (size_t i = 0; i < to.size(); ++i)
    if (i < lead || (from[i - lead] == 1 && to[i] != 1)) dims.push_back(int(i));
  return {reshape(sum(g, dims, true), from)};
}

}  // namespace wick
