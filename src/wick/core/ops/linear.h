// Projections with their additions fused: y = x @ W^T (+ bias) (+ residual). A decoder's step adds
// a bias to its q/k/v product and the residual stream to its o and down products; on CUDA, for the
// few rows of a decode step, those additions run in the skinny product's epilogue (one kernel
// instead of up to three), the sum rounded once to x's dtype. Elsewhere the ops compose: linear,
// then the adds, each rounded (the two differ by those roundings in bf16 and f16).
#pragma once

#include <optional>

#include "wick/core/primitive.h"
#include "wick/core/quantized.h"
#include "wick/core/tensor.h"

namespace wick {

// x[N, in], weight [out, in] dense (x's dtype) or GGML blocks, bias [out], residual [N, out] (x's dtype).
// A residual passed with std::move and held nowhere else is summed in place on CUDA (its memory
// becomes y's: no copy before a product that takes it as its C operand).
Tensor linear_add(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias,
                  std::optional<Tensor> residual);
Tensor linear_add(const Tensor& x, const QuantizedMatrix& weight, const std::optional<Tensor>& bias,
                  std::optional<Tensor> residual);

// Inputs: x, weight (dense [out, in], or the blocks of a QuantizedMatrix), then bias and residual
// when present. Built only for CUDA tensors (linear_add composes the ops elsewhere).
class LinearAdd : public Primitive {
 public:
  LinearAdd(ggml::GgmlType type, int64_t rows, int64_t cols, bool bias, bool residual)
      : type_(type), rows_(rows), cols_(cols), bias_(bias), residual_(residual) {}
  const char* name() const override { return "linear_add"; }
  ggml::GgmlType type() const { return type_; }
  bool has_bias() const { return bias_; }
  bool has_residual() const { return residual_; }
  // y takes over the residual's memory when nothing else holds it (the sum written where the
  // residual was: a decode step's residual stream, or an adapter's update computed first).
  int in_place_input() const override { return residual_ ? (bias_ ? 3 : 2) : -1; }
  WICK_DECLARE_EVAL

 private:
  ggml::GgmlType type_;
  int64_t rows_, cols_;
  bool bias_, residual_;
};

}  // namespace wick
