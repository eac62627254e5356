// LoRA updates for a batch whose tokens use different adapters (S-LoRA / Punica's batched
// gather-matrix-vector products): the adapters' A and B matrices are stacked into one tensor each,
// zero-padded to a common rank, and every token reads the pair of its own slot. One launch serves
// a batch mixing any adapters and tokens with none.
//
// The update comes in two halves: the shrink t = x A^T needs only x, so the kernel that makes x can
// compute it too (rms_norm_lora_shrink, swiglu_lora_shrink: the decode step's inputs of q/k/v,
// gate/up and down), and the expand adds scale * t B^T to the product's output.
#pragma once

#include "wick/core/primitive.h"
#include "wick/core/tensor.h"

namespace wick {

// base[N, out] plus, for each token n whose slot s = slots[n] (i32) is >= 0,
//   scales[s] * (x[n] @ a_stack[s]^T) @ b_stack[s]^T
// with x[N, in], a_stack[S, r, in], b_stack[S, out, r] (PEFT layouts, ranks zero-padded to r) and
// scales[S] (f32). Tokens with slot -1 keep base. A slot outside 0..S-1 is an error (on CUDA,
// reported at the next synchronisation). Pass base with std::move to add into its buffer.
// The same as lora_gather_expand(base, lora_gather_shrink(x, slots, a_stack), slots, b_stack, scales).
Tensor lora_gather_add(Tensor base, const Tensor& x, const Tensor& slots, const Tensor& a_stack,
                       const Tensor& b_stack, const Tensor& scales);

// t[N, r] = x[n] @ a_stack[slots[n]]^T per token, summed in f32 (f64 for f64 x) and kept so; rows
// of tokens with slot -1 are zeros.
Tensor lora_gather_shrink(const Tensor& x, const Tensor& slots, const Tensor& a_stack);
// base[N, out] plus scales[s] * t[n] @ b_stack[s]^T for each token n with slot s = slots[n] >= 0;
// t as lora_gather_shrink gives it. Pass base with std::move to add into its buffer.
//
// `parts` (the widths of P consecutive column ranges of base, summing to out) serves a stacked
// projection such as q/k/v, whose shrink stacks the parts' A matrices (t[N, P r]): b_stack is then
// [S, out, r] and part p's columns take t's rank columns p r .. (p + 1) r - 1, where one part would
// need a block-diagonal b_stack [S, out, P r] of mostly zeros.
Tensor lora_gather_expand(Tensor base, const Tensor& t, const Tensor& slots, const Tensor& b_stack,
                          const Tensor& scales, std::vector<int64_t> parts = {});

// The update alone: scales[s] * t[n] @ b_stack[s]^T for each token n with slot s = slots[n] >= 0,
// zeros for the others ([N, out], b_stack's dtype). A product that takes it as its residual
// (linear_add) then adds it in its epilogue: on CUDA the update's kernel runs before the product
// instead of after it, right behind the kernel that made t.
// `parts` as lora_gather_expand's.
Tensor lora_gather_delta(const Tensor& t, const Tensor& slots, const Tensor& b_stack, const Tensor& scales,
                         std::vector<int64_t> parts = {});

// {rms_norm(x, weight, eps), lora_gather_shrink(that, slots, a_stack)} for x[N, H]: one launch on
// CUDA where rms_norm's rows are whole 16-byte vectors (up to 2048 bf16 values), and the normalised
// rows are rms_norm's bit for bit (so rows without an adapter get what a step without adapters gives).
std::vector<Tensor> rms_norm_lora_shrink(const Tensor& x, const Tensor& weight, double eps, const Tensor& slots,
                                         const Tensor& a_stack);

// {swiglu(gate, up), lora_gather_shrink(that, slots, a_stack)} for gate, up [N, F] (the decode
// step's input of down): one launch on CUDA where the rows are dense 16-byte vectors, the activations
// equal swiglu's bit for bit.
std::vector<Tensor> swiglu_lora_shrink(const Tensor& gate, const Tensor& up, const Tensor& slots,
                                       const Tensor& a_stack);

namespace reference {
// The same with take() and batched matmuls: the oracle of the kernels.
Tensor lora_gather_add(const Tensor& base, const Tensor& x, const Tensor& slots, const Tensor& a_stack,
                       const Tensor& b_stack, const Tensor& scales);
}  // namespace reference

// Inputs: x, slots, a_stack. Output t, f32 (f64 for f64 x).
class LoraGatherShrink : public Primitive {
 public:
  const char* name() const override { return "lora_gather_shrink"; }
  static constexpr int kMaxRank = 256;
  WICK_DECLARE_EVAL
};

// Inputs: base, t, slots, b_stack, scales. The output takes over base's buffer when nothing else
// holds it (can_overwrite), else it starts as a copy of base.
class LoraGatherExpand : public Primitive {
 public:
  LoraGatherExpand() = default;
  // The widths of the output parts (lora_gather_expand); empty: one part.
  explicit LoraGatherExpand(std::vector<int64_t> parts) : parts_(std::move(parts)) {}
  const char* name() const override { return "lora_gather_expand"; }
  int in_place_input() const override { return 0; }
  const std::vector<int64_t>& parts() const { return parts_; }
  WICK_DECLARE_EVAL

 private:
  std::vector<int64_t> parts_;
};

// Inputs: t, slots, b_stack, scales. Output: the update of lora_gather_delta.
class LoraGatherDelta : public Primitive {
 public:
  LoraGatherDelta() = default;
  explicit LoraGatherDelta(std::vector<int64_t> parts) : parts_(std::move(parts)) {}
  const char* name() const override { return "lora_gather_delta"; }
  const std::vector<int64_t>& parts() const { return parts_; }
  WICK_DECLARE_EVAL

 private:
  std::vector<int64_t> parts_;
};

// Inputs: x, weight (x's dtype), slots, a_stack. Outputs: h (rms_norm), t (lora_gather_shrink of h).
class RMSNormLoraShrink : public Primitive {
 public:
  explicit RMSNormLoraShrink(double eps) : eps_(eps) {}
  const char* name() const override { return "rms_norm_lora_shrink"; }
  int num_outputs() const override { return 2; }
  WICK_DECLARE_EVAL_OUTPUTS

 private:
  double eps_;
};

// Inputs: gate, up, slots, a_stack. Outputs: act (swiglu), t (lora_gather_shrink of act).
class SwiGLULoraShrink : public Primitive {
 public:
  const char* name() const override { return "swiglu_lora_shrink"; }
  int num_outputs() const override { return 2; }
  WICK_DECLARE_EVAL_OUTPUTS
};

}  // namespace wick
