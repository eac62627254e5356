// Reverse-mode automatic differentiation as a function transform (like jax.grad / mlx.grad):
// the function is run on traced copies of the chosen inputs, then the recorded graph is walked
// backwards calling each primitive's vjp. Only tensors that depend on a traced input keep their
// graph; gradients of other inputs are never computed. Integer and bool results (argmax, comparisons,
// casts to integers) are piecewise constant and carry no gradient, as in torch. Grad mode
// (NoGradGuard, GradModeScope) is an execution setting (settings.h).
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include "wick/core/settings.h"
#include "wick/core/tensor.h"

namespace wick {

using ScalarFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Returns fn(inputs) (a tensor of one element) and its gradient with respect to each input.
std::pair<Tensor, std::vector<Tensor>> value_and_grad(const ScalarFn& fn, const std::vector<Tensor>& inputs);
std::vector<Tensor> grad(const ScalarFn& fn, const std::vector<Tensor>& inputs);

// The general form: cotangents of `inputs` for outputs = fn(inputs) given output cotangents.
std::pair<std::vector<Tensor>, std::vector<Tensor>> vjp(
    const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs,
    const std::vector<Tensor>& cotangents);

// Activation checkpointing: fn(inputs), keeping none of fn's intermediates for the backward.
// Inside a gradient computation the forward runs without a graph and the backward runs fn again
// (on the same inputs, so it must be deterministic) to take its gradients; elsewhere it is just
// fn(inputs). fn is kept until the backward, so it must own what it captures. Eager mode only.
Tensor checkpoint(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs);

}  // namespace wick
