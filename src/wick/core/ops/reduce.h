// The primitives of the reductions: Reduce (sum, max, min) and ArgReduce. The ops (sum, mean, max,
// min, logsumexp, argmax, argmin) are declared in core/ops.h, for the reason given in elementwise.h.
#pragma once

#include <vector>

#include "wick/core/primitive.h"
#include "wick/core/tensor.h"

namespace wick {

// Reduce over `axes` (sorted, unique); the output keeps the reduced dims with size 1.
enum class ReduceKind { Sum, Max, Min };
class Reduce : public Primitive {
 public:
  Reduce(ReduceKind kind, std::vector<int> axes) : kind_(kind), axes_(std::move(axes)) {}
  const char* name() const override;
  ReduceKind kind() const { return kind_; }
  const std::vector<int>& axes() const { return axes_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  // max and min share the gradient among the elements equal to their output.
  bool vjp_reads_output() const override { return kind_ != ReduceKind::Sum; }
 private:
  ReduceKind kind_;
  std::vector<int> axes_;
};

// Index (i64) of the first maximum / minimum along `axis`; the output keeps that dim with size 1.
class ArgReduce : public Primitive {
 public:
  ArgReduce(bool is_max, int axis) : is_max_(is_max), axis_(axis) {}
  const char* name() const override { return is_max_ ? "argmax" : "argmin"; }
  bool is_max() const { return is_max_; }
  int axis() const { return axis_; }
  WICK_DECLARE_EVAL
 private:
  bool is_max_;
  int axis_;
};

}  // namespace wick
