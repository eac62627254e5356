// Reductions over any set of dims, with keepdim; the vjp of Reduce.
#include "wick/core/ops/reduce.h"

#include <algorithm>

#include "wick/core/ops.h"

namespace wick {

namespace {

std::vector<int> normalize_dims(std::vector<int> dims, int ndim, const char* op) {
  for (int& d : dims) d = normalize_dim(d, ndim, op);
  std::sort(dims.begin(), dims.end());
  WICK_CHECK(std::adjacent_find(dims.begin(), dims.end()) == dims.end(), op, ": a dim is repeated");
  return dims;
}

std::vector<int> all_dims(const Tensor& x) {
  std::vector<int> dims(x.ndim());
  for (int i = 0; i < x.ndim(); ++i) dims[i] = i;
  return dims;
}

Shape kept_shape(const Shape& shape, const std::vector<int>& dims) {
  Shape out = shape;
  for (int d : dims) out[d] = 1;
  return out;
}

Shape dropped_shape(const Shape& shape, const std::vector<int>& dims) {
  Shape out;
  for (int i = 0; i < int(shape.size()); ++i)
    if (!std::binary_search(dims.begin(), dims.end(), i)) out.push_back(shape[i]);
  return out;
}

Tensor reduce(const Tensor& x, ReduceKind kind, std::vector<int> dims, bool keepdim, const char* op) {
  dims = normalize_dims(std::move(dims), x.ndim(), op);
  if (x.ndim() == 0) return x;
  if (kind != ReduceKind::Sum)
    for (int d : dims) WICK_CHECK(x.shape()[d] > 0, op, ": cannot reduce an empty dim ", d, " of ", shape_str(x.shape()));
  Tensor in = x;
  // Sums of bool/integer tensors are i64, as in torch (an i32 sum would overflow silently).
  if (kind == ReduceKind::Sum && is_integral(x.dtype())) in = astype(x, Dtype::I64);
  Tensor out = dims.empty() ? in
                            : Tensor::make(kept_shape(x.shape(), dims), in.dtype(), x.device(),
                                           std::make_shared<Reduce>(kind, dims), {in});
  return keepdim ? out : reshape(out, dropped_shape(x.shape(), dims));
}

Tensor arg_reduce(const Tensor& x, bool is_max, int dim, bool keepdim) {
  const char* op = is_max ? "argmax" : "argmin";
  if (x.ndim() == 0) return zeros({}, Dtype::I64, x.device());
  int d = normalize_dim(dim, x.ndim(), op);
  WICK_CHECK(x.shape()[d] > 0, op, ": dim ", d, " of ", shape_str(x.shape()), " is empty");
  Tensor out = Tensor::make(kept_shape(x.shape(), {d}), Dtype::I64, x.device(), std::make_shared<ArgReduce>(is_max, d), {x});
  return keepdim ? out : reshape(out, dropped_shape(x.shape(), {d}));
}

}  // namespace

Tensor sum(const Tensor& x, std::vector<int> dims, bool keepdim) { return reduce(x, ReduceKind::Sum, std::move(dims), keepdim, "sum"); }
Tensor sum(const Tensor& x) { return sum(x, all_dims(x)); }
Tensor max(const Tensor& x, std::vector<int> dims, bool keepdim) { return reduce(x, ReduceKind::Max, std::move(dims), keepdim, "max"); }
Tensor max(const Tensor& x) { return max(x, all_dims(x)); }
Tensor min(const Tensor& x, std::vector<int> dims, bool keepdim) { return reduce(x, ReduceKind::Min, std::move(dims), keepdim, "min"); }
Tensor min(const Tensor& x) { return min(x, all_dims(x)); }

Tensor mean(const Tensor& x, std::vector<int> dims, bool keepdim) {
  int64_t count = 1;
  for (int d : dims) {
    int nd = normalize_dim(d, x.ndim(), "mean");
    if (x.ndim() > 0) count *= x.shape()[nd];
  }
  Tensor in = is_floating(x.dtype()) ? x : astype(x, Dtype::F32);
  return sum(in, dims, keepdim) * (1.0 / double(std::max<int64_t>(count, 1)));
}
Tensor mean(const Tensor& x) { return mean(x, all_dims(x)); }

Tensor argmax(const Tensor& x, int dim, bool keepdim) { return arg_reduce(x, true, dim, keepdim); }
Tensor argmin(const Tensor& x, int dim, bool keepdim) { return arg_reduce(x, false, dim, keepdim); }

Tensor logsumexp(const Tensor& x, std::vector<int> dims, bool keepdim) {
  dims = normalize_dims(std::move(dims), x.ndim(), "logsumexp");
  // Shifting by the (constant) max keeps exp in range; rows that are all -inf stay -inf.
  Tensor m = stop_gradient(max(x, dims, true));
  Tensor finite_m = where(eq(abs(m), full({}, INFINITY, m.dtype(), m.device())), zeros({}, m.dtype(), m.device()), m);
  Tensor out = log(sum(exp(x - finite_m), dims, true)) + finite_m;
  return keepdim ? out : reshape(out, dropped_shape(x.shape(), dims));
}

const char* Reduce::name() const {
  switch (kind_) {
    case ReduceKind::Sum: return "sum";
    case ReduceKind::Max: return "max";
    case ReduceKind::Min: return "min";
  }
  return "reduce";
}

std::vector<Tensor> Reduce::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>&,
                                const Tensor& out) {
  const Tensor& x = in[0];
  if (kind_ == ReduceKind::Sum) return {broadcast_to(g, x.shape())};
  // The gradient is shared evenly between tied extremes (torch.amax semantics).
  Tensor hit = astype(eq(x, out), g.dtype());
  Tensor count = sum(hit, axes_, true);
  return {broadcast_to(g, x.shape()) * hit / count};
}

}  // namespace wick
