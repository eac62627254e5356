// Indexing ops and the vjps of their primitives.
#include "wick/core/ops/indexing.h"

#include "wick/core/ops.h"
#include "wick/core/ops/common.h"
#include "wick/core/primitives.h"

namespace wick {

using detail::check_device;
using detail::check_index;
using detail::pick;

Tensor take(const Tensor& x, const Tensor& index, int dim) {
  check_device("take", x, index);
  check_index("take", index);
  WICK_CHECK(x.ndim() > 0, "take: expected a tensor with at least 1 dim, got a 0-dim tensor");
  int d = normalize_dim(dim, x.ndim(), "take");
  Shape shape(x.shape().begin(), x.shape().begin() + d);
  shape.insert(shape.end(), index.shape().begin(), index.shape().end());
  shape.insert(shape.end(), x.shape().begin() + d + 1, x.shape().end());
  return Tensor::make(shape, x.dtype(), x.device(), std::make_shared<Gather>(d), {x, index});
}

Tensor index_select(const Tensor& x, int dim, const Tensor& index) {
  WICK_CHECK(index.ndim() == 1, "index_select: index must be 1-D, got ", shape_str(index.shape()));
  return take(x, index, dim);
}

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  WICK_CHECK(weight.ndim() == 2, "embedding: weight must be [vocab, hidden], got ", shape_str(weight.shape()));
  return take(weight, ids, 0);
}

Tensor index_add(const Tensor& x, int dim, const Tensor& index, const Tensor& src) {
  check_device("index_add", x, index);
  check_device("index_add", x, src);
  check_index("index_add", index);
  WICK_CHECK(x.ndim() > 0, "index_add: expected a tensor with at least 1 dim, got a 0-dim tensor");
  int d = normalize_dim(dim, x.ndim(), "index_add");
  WICK_CHECK(index.ndim() == 1, "index_add: index must be 1-D, got ", shape_str(index.shape()));
  Shape expected = x.shape();
  expected[d] = index.shape(0);
  WICK_CHECK(src.shape() == expected, "index_add: src must have shape ", shape_str(expected), ", got ",
             shape_str(src.shape()));
  return Tensor::make(x.shape(), x.dtype(), x.device(), std::make_shared<ScatterAdd>(d),
                      {x, index, astype(src, x.dtype())});
}

Tensor slice_update(Tensor dst, const Tensor& src, const Shape& start) {
  check_device("slice_update", dst, src);
  WICK_CHECK(src.ndim() == dst.ndim() && int(start.size()) == dst.ndim(), "slice_update: dst ",
             shape_str(dst.shape()), ", src ", shape_str(src.shape()), " and start ", shape_str(start),
             " must have the same rank");
  for (int i = 0; i < dst.ndim(); ++i)
    WICK_CHECK(start[i] >= 0 && start[i] + src.shape(i) <= dst.shape(i), "slice_update: src ", shape_str(src.shape()),
               " at ", shape_str(start), " does not fit in dst ", shape_str(dst.shape()));
  Shape shape = dst.shape();
  Dtype dtype = dst.dtype();
  Device device = dst.device();
  std::vector<Tensor> inputs;
  inputs.push_back(std::move(dst));
  inputs.push_back(astype(src, dtype));
  return Tensor::make(shape, dtype, device, std::make_shared<SliceUpdate>(start, Shape(start.size(), 1)), std::move(inputs));
}

Tensor place_blocks(const Shape& shape, const std::vector<Tensor>& blocks, const std::vector<Shape>& starts) {
  WICK_CHECK(!blocks.empty() && blocks.size() == starts.size(), "place_blocks: ", blocks.size(), " blocks and ",
             starts.size(), " starts");
  const Tensor& first = blocks[0];
  for (size_t i = 0; i < blocks.size(); ++i) {
    const Tensor& b = blocks[i];
    check_device("place_blocks", first, b);
    WICK_CHECK(b.dtype() == first.dtype(), "place_blocks: block ", i, " is ", dtype_name(b.dtype()), ", block 0 ",
               dtype_name(first.dtype()));
    WICK_CHECK(b.ndim() == int(shape.size()) && starts[i].size() == shape.size(), "place_blocks: block ", i, " ",
               shape_str(b.shape()), " at ", shape_str(starts[i]), " does not match the rank of ", shape_str(shape));
    for (size_t d = 0; d < shape.size(); ++d)
      WICK_CHECK(starts[i][d] >= 0 && starts[i][d] + b.shape(int64_t(d)) <= shape[d], "place_blocks: block ", i, " ",
                 shape_str(b.shape()), " at ", shape_str(starts[i]), " does not fit in ", shape_str(shape));
    for (size_t j = 0; j < i; ++j) {
      bool apart = false;
      for (size_t d = 0; d < shape.size() && !apart; ++d)
        apart = starts[i][d] >= starts[j][d] + blocks[j].shape(int64_t(d)) ||
                starts[j][d] >= starts[i][d] + b.shape(int64_t(d));
      WICK_CHECK(apart || b.numel() == 0 || blocks[j].numel() == 0, "place_blocks: blocks ", j, " and ", i, " overlap");
    }
  }
  return Tensor::make(shape, first.dtype(), first.device(), std::make_shared<PlaceBlocks>(starts), blocks);
}

std::vector<Tensor> PlaceBlocks::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                     const Tensor&) {
  std::vector<Tensor> all;
  for (size_t i = 0; i < in.size(); ++i) {
    Tensor part = g;
    for (int d = 0; d < g.ndim(); ++d) part = narrow(part, d, starts_[i][size_t(d)], in[i].shape(d));
    all.push_back(part);
  }
  return pick(argnums, all);
}

std::vector<Tensor> Gather::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                const Tensor&) {
  Tensor base = zeros(in[0].shape(), g.dtype(), g.device());
  Tensor dx = Tensor::make(base.shape(), g.dtype(), g.device(), std::make_shared<ScatterAdd>(axis_), {base, in[1], g});
  return pick(argnums, {dx, Tensor()});
}

std::vector<Tensor> ScatterAdd::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                    const Tensor&) {
  Tensor dsrc = Tensor::make(in[2].shape(), g.dtype(), g.device(), std::make_shared<Gather>(axis_), {g, in[1]});
  return pick(argnums, {g, Tensor(), dsrc});
}

std::vector<Tensor> SliceUpdate::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                     const Tensor&) {
  const Tensor& src = in[1];
  Tensor hole = zeros(src.shape(), g.dtype(), g.device());
  Tensor ddst = Tensor::make(g.shape(), g.dtype(), g.device(), std::make_shared<SliceUpdate>(start_, step_), {g, hole});
  Tensor dsrc = Tensor::make(src.shape(), g.dtype(), g.device(), std::make_shared<Slice>(start_, step_), {g});
  return pick(argnums, {ddst, dsrc});
}

bool Concat::view_of_inputs(const std::vector<Tensor>& in, const Tensor& out) const {
  const Tensor& first = in[0];
  if (first.strides() != contiguous_strides(out.shape())) return false;  // the join must be dense
  int64_t start = 0;
  for (const Tensor& x : in) {
    if (x.dtype() != out.dtype() || x.storage() != first.storage() || x.strides() != first.strides() ||
        x.offset() != first.offset() + start * first.strides()[axis_])
      return false;
    start += x.shape(axis_);
  }
  out.set_data(first.storage(), first.strides(), first.offset());
  return true;
}

std::vector<Tensor> Concat::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                const Tensor&) {
  std::vector<Tensor> all;
  int64_t start = 0;
  for (const Tensor& x : in) {
    all.push_back(narrow(g, axis_, start, x.shape(axis_)));
    start += x.shape(axis_);
  }
  return pick(argnums, all);
}

}  // namespace wick
