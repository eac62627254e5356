// Matrix products: matmul (torch.matmul semantics) and the dense linear layer.
#pragma once

#include <optional>

#include "wick/core/primitive.h"
#include "wick/core/tensor.h"

namespace wick {

// torch.matmul semantics: 1-D operands are promoted and the added dim removed; batch dims broadcast.
Tensor matmul(const Tensor& a, const Tensor& b);
// x @ weight^T + bias, weight [out, in] as in torch.nn.Linear.
Tensor linear(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias = std::nullopt);

// a[..., M, K] @ b[..., K, N] with batch dims already broadcast to one shape by the op.
class Matmul : public Primitive {
 public:
  const char* name() const override { return "matmul"; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
};

}  // namespace wick
