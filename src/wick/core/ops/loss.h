// Cross-entropy of logits against integer targets (ignore_index, reductions), with its fused backward.
#pragma once

#include "wick/core/primitive.h"
#include "wick/core/tensor.h"

namespace wick {

enum class Reduction { None, Mean, Sum };
// logits[..., V], targets[...] integer; targets equal to ignore_index are skipped; Mean divides by
// the number of non-ignored targets.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100,
                     Reduction reduction = Reduction::Mean);

namespace reference {
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index, Reduction reduction);
}  // namespace reference

// Per-row cross-entropy of logits[N, V] against targets[N] (i32/i64), f32 output [N];
// rows whose target equals ignore_index give 0.
class CrossEntropy : public Primitive {
 public:
  explicit CrossEntropy(int64_t ignore_index) : ignore_index_(ignore_index) {}
  const char* name() const override { return "cross_entropy"; }
  int64_t ignore_index() const { return ignore_index_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  int64_t ignore_index_;
};

// d logits of CrossEntropy: (softmax(logits) - onehot(target)) * d_loss[row]; inputs logits,
// targets, d_loss[N] (f32). Ignored rows give 0.
class CrossEntropyBackward : public Primitive {
 public:
  explicit CrossEntropyBackward(int64_t ignore_index) : ignore_index_(ignore_index) {}
  const char* name() const override { return "cross_entropy_backward"; }
  int64_t ignore_index() const { return ignore_index_; }
  WICK_DECLARE_EVAL
 private:
  int64_t ignore_index_;
};

}  // namespace wick
