// LoRA updates for a batch whose tokens use different adapters (S-LoRA / Punica's batched
// gather-matrix-vector products): the adapters' A and B matrices are stacked into one tensor each,
// zero-padded to a common rank, and every token reads the pair of its own slot. One launch serves
// a batch mixing any adapters and tokens with none.
#pragma once

#include "wick/core/primitive.h"
#include "wick/core/tensor.h"

namespace wick {

// base[N, out] plus, for each token n whose slot s = slots[n] (i32) is >= 0,
//   scales[s] * (x[n] @ a_stack[s]^T) @ b_stack[s]^T
// with x[N, in], a_stack[S, r, in], b_stack[S, out, r] (PEFT layouts, ranks zero-padded to r) and
// scales[S] (f32). Tokens with slot -1 keep base. A slot outside 0..S-1 is an error (on CUDA,
// reported at the next synchronisation). Pass base with std::move to add into its buffer.
Tensor lora_gather_add(Tensor base, const Tensor& x, const Tensor& slots, const Tensor& a_stack,
                       const Tensor& b_stack, const Tensor& scales);

namespace reference {
// The same with take() and batched matmuls: the oracle of the kernels.
Tensor lora_gather_add(const Tensor& base, const Tensor& x, const Tensor& slots, const Tensor& a_stack,
                       const Tensor& b_stack, const Tensor& scales);
}  // namespace reference

// Inputs: base, x, slots, a_stack, b_stack, scales. The output takes over base's buffer when
// nothing else holds it (can_overwrite), else it starts as a copy of base.
class LoraGatherAdd : public Primitive {
 public:
  const char* name() const override { return "lora_gather_add"; }
  int in_place_input() const override { return 0; }
  static constexpr int kMaxRank = 256;
  WICK_DECLARE_EVAL
};

}  // namespace wick
