// The primitives of the elementwise ops: Unary<Fn>, Binary<Fn> and Where. The ops themselves
// (exp, max, ... and the operators) are declared in core/ops.h: declared here, with the primitives
// that every kernel file sees, they would hide the C math functions of the same names in the
// kernels of namespace wick.
#pragma once

#include "wick/core/elementwise_fns.h"
#include "wick/core/primitive.h"
#include "wick/core/tensor.h"

namespace wick {

template <class Fn>
class Unary : public Primitive {
 public:
  const char* name() const override { return Fn::name; }
  FusedOp fused_op() const override { return {FusedOp::Unary, uint8_t(fn::unary_id<Fn>::value)}; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>& inputs, const Tensor& cotangent,
                          const std::vector<int>& argnums, const Tensor& out) override;
  bool vjp_reads_output() const override;  // per function, beside its vjp (ops/elementwise.cpp)
};

// Arithmetic (output dtype = input dtype) and comparisons (output bool); inputs share one shape.
template <class Fn>
class Binary : public Primitive {
 public:
  const char* name() const override { return Fn::name; }
  FusedOp fused_op() const override {
    if constexpr (requires { fn::arith_id<Fn>::value; }) return {FusedOp::Arith, uint8_t(fn::arith_id<Fn>::value)};
    return {};  // comparisons produce bool and end a fused chain
  }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>& inputs, const Tensor& cotangent,
                          const std::vector<int>& argnums, const Tensor& out) override;
  bool vjp_reads_output() const override;  // per function, beside its vjp (ops/elementwise.cpp)
};

// where(cond, a, b); cond is bool.
class Where : public Primitive {
 public:
  const char* name() const override { return "where"; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
};

}  // namespace wick
