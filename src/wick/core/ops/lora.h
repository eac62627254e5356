// The LoRA update of one adapter, fused: lora_delta and lora_add. (A batch mixing adapters is
// core/ops/lora_gather.h.)
#pragma once

#include "wick/core/primitive.h"
#include "wick/core/tensor.h"

namespace wick {

// The LoRA update scale * (x @ A^T) @ B^T for x[..., in], A[r, in], B[out, r] (PEFT layout), fused
// into one kernel on the GPU.
Tensor lora_delta(const Tensor& x, const Tensor& a, const Tensor& b, double scale);
// base + lora_delta(x, a, b, scale), base[..., out]. Pass base with std::move: when nothing else
// holds it and no gradient reads it (can_overwrite: e.g. it came from a matmul or its bias add)
// the sum is written into base's own buffer, so an adapted projection keeps one [..., out] tensor
// instead of three. (A batched matmul's output arrives through a reshape: pass rows [M, in].)
Tensor lora_add(Tensor base, const Tensor& x, const Tensor& a, const Tensor& b, double scale);

namespace reference {
// The LoRA update scale * (x @ A^T) @ B^T for x[..., in], A[r, in], B[out, r] (PEFT layout), fused
// into one kernel on the GPU.
Tensor lora_delta(const Tensor& x, const Tensor& a, const Tensor& b, double scale);
Tensor lora_add(const Tensor& base, const Tensor& x, const Tensor& a, const Tensor& b, double scale);
}  // namespace reference

// The LoRA update scale * (x @ A^T) @ B^T in one pass (PEFT layout: A [r, in], B [out, r]);
// inputs x[M, in], A, B, with the rank small enough to keep x @ A^T of a row on chip. With
// `accumulate`, a fourth input base (M * out elements, any shape) is added: out = base + update;
// with `donate` the output takes over base's buffer (nothing else holds it and no gradient reads
// it), so the projection and its update share one tensor.
//
// With `keep_xa` (B's gradient will be taken), a backend that forms x @ A^T in memory keeps it
// (rounded to the data type) for the vjp, which then need not form it again.
class LoraDelta : public Primitive {
 public:
  explicit LoraDelta(double scale, bool accumulate = false, bool donate = false, bool keep_xa = false)
      : scale_(scale), accumulate_(accumulate), donate_(donate), keep_xa_(keep_xa) {}
  const char* name() const override { return accumulate_ ? "lora_add" : "lora_delta"; }
  double scale() const { return scale_; }
  bool accumulate() const { return accumulate_; }
  bool donate() const { return donate_; }
  bool keep_xa() const { return keep_xa_; }
  void keep(Tensor xa) { xa_ = std::move(xa); }  // for the backends: x @ A^T as they formed it
  int in_place_input() const override { return donate_ ? 3 : -1; }
  static constexpr int kMaxRank = 128;
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  double scale_;
  bool accumulate_, donate_, keep_xa_;
  Tensor xa_;  // x @ A^T [M, r], kept by the evaluation when keep_xa_ (one backward per forward)
};

}  // namespace wick
