// Normalisation over the last dim: LayerNorm and RMSNorm, with their fused backward.
#pragma once

#include <optional>

#include "wick/core/primitive.h"
#include "wick/core/tensor.h"

namespace wick {

// Normalises over the last dim.
Tensor layer_norm(const Tensor& x, const std::optional<Tensor>& weight, const std::optional<Tensor>& bias, double eps = 1e-5);
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps = 1e-6);

namespace reference {
Tensor layer_norm(const Tensor& x, const std::optional<Tensor>& weight, const std::optional<Tensor>& bias, double eps);
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps);
}  // namespace reference

// Normalises over the last dim. LayerNorm inputs: x, weight, bias (weight/bias may be absent:
// has_weight/has_bias). RMSNorm inputs: x, weight.
class LayerNorm : public Primitive {
 public:
  LayerNorm(double eps, bool has_weight, bool has_bias) : eps_(eps), has_weight_(has_weight), has_bias_(has_bias) {}
  const char* name() const override { return "layer_norm"; }
  double eps() const { return eps_; }
  bool has_weight() const { return has_weight_; }
  bool has_bias() const { return has_bias_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  double eps_;
  bool has_weight_, has_bias_;
};

class RMSNorm : public Primitive {
 public:
  explicit RMSNorm(double eps) : eps_(eps) {}
  const char* name() const override { return "rms_norm"; }
  double eps() const { return eps_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  double eps_;
};

// The input gradient of LayerNorm (rms = false; inputs x, [weight], d_out) or RMSNorm (rms = true;
// inputs x, weight, d_out) over the last dim, in one pass per row.
class NormBackward : public Primitive {
 public:
  NormBackward(bool rms, double eps, bool has_weight) : rms_(rms), eps_(eps), has_weight_(has_weight) {}
  const char* name() const override { return rms_ ? "rms_norm_backward" : "layer_norm_backward"; }
  bool rms() const { return rms_; }
  double eps() const { return eps_; }
  bool has_weight() const { return has_weight_; }
  WICK_DECLARE_EVAL
 private:
  bool rms_;
  double eps_;
  bool has_weight_;
};

}  // namespace wick
