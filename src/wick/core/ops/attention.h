// Scaled dot-product attention (grouped-query heads, causal or masked), with its fused backward.
// Attention over a paged KV cache is core/ops/paged_attention.h.
#pragma once

#include <optional>

#include "wick/core/primitive.h"
#include "wick/core/tensor.h"

namespace wick {

// q[B, Hq, Tq, D], k/v[B, Hkv, Tk, D]; mask bool (true = attend) or additive float, broadcastable
// to [B, Hq, Tq, Tk]; causal is aligned to the end (see Attention below). scale defaults to 1/sqrt(D).
// A query that sees no key (all masked) gives 0.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const std::optional<Tensor>& mask = std::nullopt, bool causal = false,
                                    std::optional<double> scale = std::nullopt);

namespace reference {
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const std::optional<Tensor>& mask, bool causal, std::optional<double> scale);
}  // namespace reference

// Scaled dot-product attention. Inputs: q[B, Hq, Tq, D], k[B, Hkv, Tk, D], v[B, Hkv, Tk, Dv] and
// optionally an additive f32 mask broadcastable to [B, Hq, Tq, Tk] (-inf where masked).
// Hq is a multiple of Hkv (grouped-query attention: query head h reads kv head h / (Hq/Hkv)).
// Causal masking is aligned to the end: query i sees keys j <= i + (Tk - Tq), as with a KV cache.
class Attention : public Primitive {
 public:
  // With `keep_lse` (a gradient will be taken), a backend whose backward reads the rows'
  // logsumexp keeps it from the forward (lse()), so the backward need not run the forward again.
  Attention(double scale, bool causal, bool has_mask, bool keep_lse = false)
      : scale_(scale), causal_(causal), has_mask_(has_mask), keep_lse_(keep_lse) {}
  const char* name() const override { return "attention"; }
  double scale() const { return scale_; }
  bool causal() const { return causal_; }
  bool has_mask() const { return has_mask_; }
  bool keep_lse() const { return keep_lse_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
 private:
  double scale_;
  bool causal_, has_mask_, keep_lse_;
  Tensor lse_;  // f32 [B * Hq * Tq], set by the evaluation when keep_lse_ and the backend keeps it
};

// Gradient of Attention with respect to q, k and v: three outputs of their shapes and dtype
// (inputs: q, k, v, [mask], out, d_out). `lse`, when defined, is the forward's kept logsumexp.
class AttentionBackward : public Primitive {
 public:
  AttentionBackward(double scale, bool causal, bool has_mask, Tensor lse = Tensor())
      : scale_(scale), causal_(causal), has_mask_(has_mask), lse_(std::move(lse)) {}
  const char* name() const override { return "attention_backward"; }
  int num_outputs() const override { return 3; }
  double scale() const { return scale_; }
  bool causal() const { return causal_; }
  bool has_mask() const { return has_mask_; }
  WICK_DECLARE_EVAL_OUTPUTS
 private:
  double scale_;
  bool causal_, has_mask_;
  Tensor lse_;
};

}  // namespace wick
