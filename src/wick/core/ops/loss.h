// Cross-entropy of logits against integer targets (ignore_index, reductions), with its fused backward;
// and the fused linear cross-entropy of a language model's head, which never holds the logits whole.
#pragma once

#include "wick/core/primitive.h"
#include "wick/core/tensor.h"

namespace wick {

enum class Reduction { None, Mean, Sum };
// logits[..., V], targets[...] integer; targets equal to ignore_index are skipped; Mean divides by
// the number of non-ignored targets.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100,
                     Reduction reduction = Reduction::Mean);

// cross_entropy(x @ weight^T, targets) without the logits: x[..., D], weight[V, D] (the same
// floating dtype), targets[...] integer. The logits are made, used and dropped a chunk of rows at a
// time (`rows_per_chunk`, 0 = chosen from V to keep a chunk near 256 MiB on a GPU, 64 MiB on the
// CPU), so neither the logits [N, V] nor their gradient ever exist whole. When a gradient is traced
// through x, the forward also takes x's gradient per unit loss, chunk by chunk (the softmax minus
// the target's one-hot, times weight), and the backward only scales it: one product fewer than the
// logits' forward and backward. Gradients of `weight`, when traced, take the logits again.
Tensor linear_cross_entropy(const Tensor& x, const Tensor& weight, const Tensor& targets, int64_t ignore_index = -100,
                            Reduction reduction = Reduction::Mean, int64_t rows_per_chunk = 0);

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

// Per-row cross-entropy of x[N, D] @ weight[V, D]^T against targets[N], f32 output [N] (0 for
// ignored rows), in chunks of rows. With `keep_grad`, the evaluation also writes
// dx_unit[N, D] (x's dtype): row r holds d loss[r] / d x[r], which the vjp scales by the cotangent.
// That tensor is held by the primitive (so by the node) until the backward lets go of it.
class LinearCrossEntropy : public Primitive {
 public:
  LinearCrossEntropy(int64_t ignore_index, bool keep_grad, int64_t rows_per_chunk)
      : ignore_index_(ignore_index), keep_grad_(keep_grad), rows_per_chunk_(rows_per_chunk) {}
  const char* name() const override { return "linear_cross_entropy"; }
  int64_t ignore_index() const { return ignore_index_; }
  bool keep_grad() const { return keep_grad_; }
  // Rows per chunk: rows_per_chunk when set, else as many as keep a chunk of logits (`vocab`
  // values of `value_bytes` each) within `budget` bytes; between 1 and n.
  int64_t chunk_rows(int64_t n, int64_t vocab, int64_t value_bytes, int64_t budget) const;
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  int64_t ignore_index_;
  bool keep_grad_;
  int64_t rows_per_chunk_;
  Tensor dx_unit_;  // set by the evaluation when keep_grad_
};

}  // namespace wick
