// Views (reshape, permute, slice, broadcast) and joins (concat, stack, split).
#include <algorithm>

#include "wick/core/ops.h"
#include "wick/core/primitives.h"

namespace wick {

namespace {
// The dim of an op that indexes into it (0-dim tensors have none).
int indexed_dim(const Tensor& x, int64_t dim, const char* op) {
  WICK_CHECK(x.ndim() > 0, op, ": expected a tensor with at least 1 dim, got a 0-dim tensor");
  return normalize_dim(dim, x.ndim(), op);
}
}  // namespace

Tensor reshape(const Tensor& x, Shape shape) {
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      WICK_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(shape));
      infer = int(i);
    } else {
      WICK_CHECK(shape[i] >= 0, "reshape: bad size in ", shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    WICK_CHECK(known != 0 && x.numel() % known == 0, "reshape: cannot reshape ", shape_str(x.shape()), " into ",
               shape_str(shape));
    shape[infer] = x.numel() / known;
  }
  WICK_CHECK(numel(shape) == x.numel(), "reshape: cannot reshape ", shape_str(x.shape()), " (", x.numel(),
             " elements) into ", shape_str(shape));
  if (shape == x.shape()) return x;
  return Tensor::make(shape, x.dtype(), x.device(), std::make_shared<Reshape>(), {x});
}

Tensor flatten(const Tensor& x, int start_dim, int end_dim) {
  if (x.ndim() == 0) return reshape(x, {1});
  int s = normalize_dim(start_dim, x.ndim(), "flatten");
  int e = normalize_dim(end_dim, x.ndim(), "flatten");
  WICK_CHECK(s <= e, "flatten: start_dim ", start_dim, " is after end_dim ", end_dim);
  Shape shape(x.shape().begin(), x.shape().begin() + s);
  int64_t n = 1;
  for (int i = s; i <= e; ++i) n *= x.shape()[i];
  shape.push_back(n);
  shape.insert(shape.end(), x.shape().begin() + e + 1, x.shape().end());
  return reshape(x, shape);
}

Tensor permute(const Tensor& x, std::vector<int> dims) {
  WICK_CHECK(int(dims.size()) == x.ndim(), "permute: got ", dims.size(), " dims for a tensor of ", x.ndim(), " dims");
  std::vector<bool> used(dims.size(), false);
  Shape shape(dims.size());
  bool identity = true;
  for (size_t i = 0; i < dims.size(); ++i) {
    dims[i] = normalize_dim(dims[i], x.ndim(), "permute");
    WICK_CHECK(!used[dims[i]], "permute: dim ", dims[i], " repeated");
    used[dims[i]] = true;
    shape[i] = x.shape()[dims[i]];
    identity = identity && dims[i] == int(i);
  }
  if (identity) return x;
  return Tensor::make(shape, x.dtype(), x.device(), std::make_shared<Permute>(dims), {x});
}

Tensor transpose(const Tensor& x, int dim0, int dim1) {
  if (x.ndim() == 0) {
    normalize_dim(dim0, 0, "transpose");
    normalize_dim(dim1, 0, "transpose");
    return x;
  }
  std::vector<int> perm(x.ndim());
  for (int i = 0; i < x.ndim(); ++i) perm[i] = i;
  std::swap(perm[normalize_dim(dim0, x.ndim(), "transpose")], perm[normalize_dim(dim1, x.ndim(), "transpose")]);
  return permute(x, perm);
}

Tensor slice(const Tensor& x, int dim, int64_t start, int64_t stop, int64_t step) {
  int d = indexed_dim(x, dim, "slice");
  WICK_CHECK(step > 0, "slice: step must be positive, got ", step);
  int64_t size = x.shape()[d];
  auto clamp = [&](int64_t i) { return std::clamp<int64_t>(i < 0 ? i + size : i, 0, size); };
  start = clamp(start);
  stop = clamp(stop);
  int64_t len = stop > start ? (stop - start + step - 1) / step : 0;
  if (start == 0 && len == size && step == 1) return x;
  Shape starts(x.ndim(), 0), steps(x.ndim(), 1), shape = x.shape();
  starts[d] = start;
  steps[d] = step;
  shape[d] = len;
  return Tensor::make(shape, x.dtype(), x.device(), std::make_shared<Slice>(starts, steps), {x});
}

Tensor narrow(const Tensor& x, int dim, int64_t start, int64_t length) {
  int d = indexed_dim(x, dim, "narrow");
  WICK_CHECK(start >= 0 && length >= 0 && start + length <= x.shape()[d], "narrow: [", start, ", ", start + length,
             ") is out of range for dim ", d, " of size ", x.shape()[d]);
  return slice(x, d, start, start + length);
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  for (int64_t d : shape) WICK_CHECK(d >= 0, "broadcast_to: bad size in ", shape_str(shape));
  Shape result = broadcast_shapes(x.shape(), shape, "broadcast_to");
  WICK_CHECK(result == shape, "broadcast_to: cannot broadcast ", shape_str(x.shape()), " to ", shape_str(shape));
  return Tensor::make(shape, x.dtype(), x.device(), std::make_shared<BroadcastTo>(), {x});
}

Tensor expand(const Tensor& x, const Shape& shape) {
  Shape target = shape;
  size_t off = target.size() - std::min(target.size(), size_t(x.ndim()));
  for (size_t i = 0; i < off; ++i)
    WICK_CHECK(target[i] != -1, "expand: -1 is not allowed for the new leading dim ", i, " of ", shape_str(shape));
  for (size_t i = off; i < target.size(); ++i)
    if (target[i] == -1) target[i] = x.shape()[i - off];
  return broadcast_to(x, target);
}

Tensor squeeze(const Tensor& x, int dim) {
  int d = normalize_dim(dim, x.ndim(), "squeeze");
  if (x.ndim() == 0 || x.shape()[d] != 1) return x;  // torch leaves dims of size other than 1 alone
  Shape shape = x.shape();
  shape.erase(shape.begin() + d);
  return reshape(x, shape);
}

Tensor unsqueeze(const Tensor& x, int dim) {
  int d = normalize_dim(dim, x.ndim() + 1, "unsqueeze");
  Shape shape = x.shape();
  shape.insert(shape.begin() + d, 1);
  return reshape(x, shape);
}

Tensor concat(const std::vector<Tensor>& xs, int dim) {
  WICK_CHECK(!xs.empty(), "concat: no tensors given");
  const Tensor& first = xs[0];
  int d = indexed_dim(first, dim, "concat");
  Shape shape = first.shape();
  shape[d] = 0;
  Dtype dtype = first.dtype();
  for (const Tensor& x : xs) dtype = promote_types(dtype, x.dtype());
  std::vector<Tensor> inputs;
  for (const Tensor& x : xs) {
    WICK_CHECK(x.ndim() == first.ndim() && x.device() == first.device(), "concat: cannot join ", x.str(), " with ",
               first.str());
    for (int i = 0; i < x.ndim(); ++i)
      WICK_CHECK(i == d || x.shape()[i] == first.shape()[i], "concat: shapes ", shape_str(first.shape()), " and ",
                 shape_str(x.shape()), " differ outside dim ", d);
    shape[d] += x.shape()[d];
    inputs.push_back(astype(x, dtype));
  }
  if (inputs.size() == 1) return inputs[0];
  return Tensor::make(shape, dtype, first.device(), std::make_shared<Concat>(d), inputs);
}

Tensor stack(const std::vector<Tensor>& xs, int dim) {
  WICK_CHECK(!xs.empty(), "stack: no tensors given");
  int d = normalize_dim(dim, xs[0].ndim() + 1, "stack");
  std::vector<Tensor> expanded;
  for (const Tensor& x : xs) {
    WICK_CHECK(x.shape() == xs[0].shape(), "stack: shapes ", shape_str(xs[0].shape()), " and ", shape_str(x.shape()),
               " differ");
    expanded.push_back(unsqueeze(x, d));
  }
  return concat(expanded, d);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int dim) {
  int d = indexed_dim(x, dim, "split");
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  WICK_CHECK(total == x.shape()[d], "split: sizes add up to ", total, " but dim ", d, " has size ", x.shape()[d]);
  for (int64_t s : sizes) WICK_CHECK(s >= 0, "split: negative size ", s);
  if (sizes.size() == 1) return {x};
  std::vector<Shape> shapes(sizes.size(), x.shape());
  for (size_t i = 0; i < sizes.size(); ++i) shapes[i][d] = sizes[i];
  return Tensor::make_siblings(shapes, std::vector<Dtype>(sizes.size(), x.dtype()), x.device(),
                               std::make_shared<Split>(d, sizes), {x});
}

}  // namespace wick
