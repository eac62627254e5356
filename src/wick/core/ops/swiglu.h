// SwiGLU, silu(gate) * up, with its fused backward.
#pragma once

#include "wick/core/primitive.h"
#include "wick/core/tensor.h"

namespace wick {

Tensor swiglu(const Tensor& gate, const Tensor& up);

namespace reference {
Tensor swiglu(const Tensor& gate, const Tensor& up);
}  // namespace reference

// Gradients of SwiGLU: two outputs, d gate and d up; inputs gate, up, d_out (one shape). Each has
// its own buffer, unless gate and up are the two halves of one (split along the last dim): then
// so are d gate and d up, and split's vjp joins them without a copy (allocate_outputs).
class SwiGLUBackward : public Primitive {
 public:
  const char* name() const override { return "swiglu_backward"; }
  int num_outputs() const override { return 2; }
  static void allocate_outputs(const std::vector<Tensor>& in, const std::vector<Tensor>& outs);
  WICK_DECLARE_EVAL_OUTPUTS
};

// silu(a) * b.
class SwiGLU : public Primitive {
 public:
  const char* name() const override { return "swiglu"; }
  FusedOp fused_op() const override { return {FusedOp::SwiGLU, 0}; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
};

}  // namespace wick
