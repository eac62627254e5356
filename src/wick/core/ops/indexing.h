// Indexing: gathers (take, index_select, embedding), index_add and slice_update, and their
// primitives (Concat, whose kernels live beside them, is the primitive of concat in core/ops.h).
#pragma once

#include "wick/core/primitive.h"
#include "wick/core/tensor.h"

namespace wick {

// numpy take: x.shape[:dim] + index.shape + x.shape[dim+1:].
Tensor take(const Tensor& x, const Tensor& index, int dim);
// torch.index_select (index 1-D).
Tensor index_select(const Tensor& x, int dim, const Tensor& index);
// Rows of weight[V, H] for ids of any shape: ids.shape + [H].
Tensor embedding(const Tensor& weight, const Tensor& ids);
// x with src added at index along dim (torch.index_add with a 1-D index).
Tensor index_add(const Tensor& x, int dim, const Tensor& index, const Tensor& src);
// dst with the block of src's shape at `start` (one offset per dim) replaced by src. Pass dst
// with std::move to let it reuse dst's memory (KV-cache writes without a copy).
Tensor slice_update(Tensor dst, const Tensor& src, const Shape& start);
// A tensor of `shape` (blocks' dtype), zero except block i at starts[i] (one offset per dim); the
// blocks must not overlap. E.g. a block-diagonal matrix (torch.block_diag with gaps). Its
// gradient hands each block its part of the output's gradient, as a view.
Tensor place_blocks(const Shape& shape, const std::vector<Tensor>& blocks, const std::vector<Shape>& starts);

// out = x.shape[:axis] + index.shape + x.shape[axis+1:], gathering x along axis (numpy take).
class Gather : public Primitive {
 public:
  explicit Gather(int axis) : axis_(axis) {}
  const char* name() const override { return "gather"; }
  int axis() const { return axis_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  int axis_;
};

// out = base with src added at index along axis (the transpose of Gather: src has Gather's output
// shape for this base and index; repeated indices add up).
class ScatterAdd : public Primitive {
 public:
  explicit ScatterAdd(int axis) : axis_(axis) {}
  const char* name() const override { return "scatter_add"; }
  int axis() const { return axis_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  int axis_;
};

// out = dst with the elements dst[start + i * step] (per dim) replaced by src[i]. Reuses dst's
// memory when nothing else holds it (KV-cache writes), else copies dst first.
class SliceUpdate : public Primitive {
 public:
  SliceUpdate(Shape start, Shape step) : start_(std::move(start)), step_(std::move(step)) {}
  const char* name() const override { return "slice_update"; }
  const Shape& start() const { return start_; }
  const Shape& step() const { return step_; }
  int in_place_input() const override { return 0; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  Shape start_, step_;
};

// out = zeros with input i at starts[i] (place_blocks).
class PlaceBlocks : public Primitive {
 public:
  explicit PlaceBlocks(std::vector<Shape> starts) : starts_(std::move(starts)) {}
  const char* name() const override { return "place_blocks"; }
  const std::vector<Shape>& starts() const { return starts_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  std::vector<Shape> starts_;
};

// Inputs joined along `axis` into fresh memory; or, where they already lie side by side in one
// buffer as the output would hold them (gradients of split parts written so, e.g. by SwiGLU's
// backward), a view of that buffer (view_of_inputs, which the backends try first).
class Concat : public Primitive {
 public:
  explicit Concat(int axis) : axis_(axis) {}
  const char* name() const override { return "concat"; }
  int axis() const { return axis_; }
  bool view_of_inputs(const std::vector<Tensor>& in, const Tensor& out) const;
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  int axis_;
};

}  // namespace wick
