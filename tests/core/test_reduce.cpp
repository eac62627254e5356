// Reductions over single, multiple and all dims, with and without keepdim, against float64 loops;
// and their gradients (incl. ties of max/min).
#include <cmath>
#include <limits>

#include "testing.h"

namespace wick {
namespace {

using namespace testing;

enum class Kind { Sum, Mean, Max, Min, LogSumExp, ArgMax, ArgMin };

// Reduces x (row-major, `shape`) over `dims`; returns the values and the output shape.
std::pair<Values, Shape> reduce_ref(const Values& x, const Shape& shape, std::vector<int> dims, bool keepdim,
                                    Kind kind) {
  int nd = int(shape.size());
  for (int& d : dims) d = d < 0 ? d + nd : d;
  auto reduced = [&](int d) { return std::find(dims.begin(), dims.end(), d) != dims.end(); };
  Shape kept = shape, out_shape;
  for (int d = 0; d < nd; ++d) {
    if (reduced(d)) kept[d] = 1;
    if (!reduced(d) || keepdim) out_shape.push_back(reduced(d) ? 1 : shape[d]);
  }
  std::vector<Values> groups(numel(kept));
  for (int64_t i = 0; i < numel(shape); ++i) {
    auto idx = unravel(i, shape);
    int64_t o = 0;
    for (int d = 0; d < nd; ++d) o = o * kept[d] + (reduced(d) ? 0 : idx[d]);
    groups[o].push_back(x[i]);
  }
  Values out;
  for (const Values& g : groups) {
    double r = 0;
    switch (kind) {
      case Kind::Sum:
        for (double v : g) r += v;
        break;
      case Kind::Mean:
        for (double v : g) r += v;
        r /= double(g.size());
        break;
      case Kind::Max:
        r = *std::max_element(g.begin(), g.end());
        break;
      case Kind::Min:
        r = *std::min_element(g.begin(), g.end());
        break;
      case Kind::ArgMax:
        r = double(std::max_element(g.begin(), g.end()) - g.begin());
        break;
      case Kind::ArgMin:
        r = double(std::min_element(g.begin(), g.end()) - g.begin());
        break;
      case Kind::LogSumExp: {
        double m = *std::max_element(g.begin(), g.end());
        for (double v : g) r += std::exp(v - m);
        r = std::log(r) + m;
        break;
      }
    }
    out.push_back(r);
  }
  return {out, out_shape};
}

Tensor apply(Kind kind, const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  switch (kind) {
    case Kind::Sum:
      return sum(x, dims, keepdim);
    case Kind::Mean:
      return mean(x, dims, keepdim);
    case Kind::Max:
      return max(x, dims, keepdim);
    case Kind::Min:
      return min(x, dims, keepdim);
    case Kind::LogSumExp:
      return logsumexp(x, dims, keepdim);
    case Kind::ArgMax:
      return argmax(x, dims[0], keepdim);
    case Kind::ArgMin:
      return argmin(x, dims[0], keepdim);
  }
  return Tensor();
}

const char* kind_name(Kind k) {
  const char* names[] = {"sum", "mean", "max", "min", "logsumexp", "argmax", "argmin"};
  return names[int(k)];
}

TEST(Reduce, MatchesFloat64Reference) {
  const Shape shape{3, 5, 4, 2};
  const std::vector<std::vector<int>> dim_sets = {{0}, {1}, {-1}, {2}, {0, 2}, {1, -1}, {3, 0, 1}, {0, 1, 2, 3}};
  for (Kind kind : {Kind::Sum, Kind::Mean, Kind::Max, Kind::Min, Kind::LogSumExp})
    for (Dtype dt : {Dtype::F64, Dtype::F32, Dtype::BF16, Dtype::F16})
      for (const auto& dims : dim_sets)
        for (bool keepdim : {false, true}) {
          Rand x = rand(shape, dt);
          auto [ref, out_shape] = reduce_ref(x.v, shape, dims, keepdim, kind);
          std::string what = str_cat(kind_name(kind), " ", dtype_name(dt), " dims ",
                                     shape_str(Shape(dims.begin(), dims.end())), keepdim ? " keepdim" : "");
          Tensor y = apply(kind, x.t, dims, keepdim);
          EXPECT_EQ(y.dtype(), dt) << what;
          // 16-bit sums of up to 120 terms round once at the end; logsumexp rounds intermediates.
          Tol tol = tol_for(dt);
          if (kind == Kind::LogSumExp && (dt == Dtype::BF16 || dt == Dtype::F16)) tol = {0.05, 0.02};
          expect_close(y, ref, out_shape, tol, what);
          expect_close(apply(kind, noncontiguous(x.v, shape, dt, 0), dims, keepdim), ref, out_shape, tol,
                       what + " permuted");
          expect_close(apply(kind, noncontiguous(x.v, shape, dt, 1), dims, keepdim), ref, out_shape, tol,
                       what + " strided");
        }
}

TEST(Reduce, AllDimsAndOddSizes) {
  for (Shape shape : {Shape{1}, Shape{7}, Shape{33, 3}, Shape{1, 65}, Shape{2, 1, 3}}) {
    Rand x = rand(shape, Dtype::F32);
    std::vector<int> all;
    for (int d = 0; d < int(shape.size()); ++d) all.push_back(d);
    for (Kind kind : {Kind::Sum, Kind::Mean, Kind::Max, Kind::Min}) {
      auto [ref, out_shape] = reduce_ref(x.v, shape, all, false, kind);
      Tensor y = kind == Kind::Sum    ? sum(x.t)
                 : kind == Kind::Mean ? mean(x.t)
                 : kind == Kind::Max  ? max(x.t)
                                      : min(x.t);
      expect_close(y, ref, {}, str_cat(kind_name(kind), " all of ", shape_str(shape)));
    }
  }
}

TEST(Reduce, BroadcastInputs) {
  // Inputs with zero strides (expanded views) reduce like their materialised copies.
  Rand x = rand({3, 1, 5});
  Tensor b = broadcast_to(x.t, {2, 3, 4, 5});
  Values bv;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k)
        for (int l = 0; l < 5; ++l) bv.push_back(x.v[j * 5 + l]);
  const Shape shape{2, 3, 4, 5};
  for (Kind kind : {Kind::Sum, Kind::Max, Kind::LogSumExp})
    for (const std::vector<int>& dims : {std::vector<int>{0}, {2}, {0, 2, 3}, {1, 3}}) {
      auto [ref, out_shape] = reduce_ref(bv, shape, dims, false, kind);
      expect_close(apply(kind, b, dims, false), ref, out_shape, str_cat(kind_name(kind), " of a broadcast"));
    }
  auto [ref, out_shape] = reduce_ref(bv, shape, {3}, true, Kind::ArgMin);
  expect_close(argmin(b, 3, true), ref, out_shape, Tol{0, 0}, "argmin of a broadcast");
}

TEST(Reduce, ArgMaxArgMin) {
  const Shape shape{4, 7, 3};
  for (Dtype dt : {Dtype::F64, Dtype::F32, Dtype::BF16, Dtype::I32})
    for (int dim : {0, 1, 2, -1})
      for (bool keepdim : {false, true})
        for (Kind kind : {Kind::ArgMax, Kind::ArgMin}) {
          // Rounded values make ties: the first index wins.
          Values v = random_values(numel(shape), -3, 3);
          for (double& x : v) x = std::round(x * 2);
          Tensor x = make(v, shape, dt);
          auto [ref, out_shape] = reduce_ref(v, shape, {dim}, keepdim, kind);
          std::string what = str_cat(kind_name(kind), " ", dtype_name(dt), " dim ", dim);
          Tensor y = apply(kind, x, {dim}, keepdim);
          EXPECT_EQ(y.dtype(), Dtype::I64) << what;
          expect_close(y, ref, out_shape, Tol{0, 0}, what);
          expect_close(apply(kind, noncontiguous(v, shape, dt, 0), {dim}, keepdim), ref, out_shape, Tol{0, 0},
                       what + " permuted");
        }
}

TEST(Reduce, IntegerAndBoolSums) {
  Tensor b = make({1, 0, 1, 1, 0, 1}, {2, 3}, Dtype::Bool);
  Tensor s = sum(b);
  EXPECT_EQ(s.dtype(), Dtype::I64);
  EXPECT_EQ(s.item<int64_t>(), 4);
  expect_close(sum(b, {0}), {2, 0, 2}, {3}, Tol{0, 0});
  Tensor i = make({1, -2, 3, 4, 5, -6}, {2, 3}, Dtype::I32);
  EXPECT_EQ(sum(i, {1}).dtype(), Dtype::I64);
  expect_close(sum(i, {1}), {2, 3}, {2}, Tol{0, 0});
  Tensor big = full({3}, 2e9, Dtype::I32);
  EXPECT_EQ(sum(big).item<int64_t>(), int64_t(6e9));  // beyond i32
  EXPECT_EQ(max(i, {1}).dtype(), Dtype::I32);
  expect_close(max(i, {0}), {4, 5, 3}, {3}, Tol{0, 0});
  Tensor m = mean(i, {1});
  EXPECT_TRUE(is_floating(m.dtype()));
  expect_close(m, {2.0 / 3, 1}, {2});
}

TEST(Reduce, LogSumExpLargeAndInfinite) {
  Tensor x = Tensor::from_vector(std::vector<float>{1000, 1000, -INFINITY, -INFINITY, 0, -INFINITY}, {3, 2});
  expect_close(logsumexp(x, {1}), {1000 + std::log(2.0), -INFINITY, 0}, {3});
  Tensor nan = Tensor::from_vector(std::vector<double>{1, NAN, 2, 3}, {2, 2});
  expect_close(max(nan, {1}), {NAN, 3}, {2});
  expect_close(min(nan, {1}), {NAN, 2}, {2});
}

TEST(Reduce, Gradients) {
  Rand x = rand({3, 4, 5});
  for (Kind kind : {Kind::Sum, Kind::Mean, Kind::Max, Kind::Min, Kind::LogSumExp})
    for (const std::vector<int>& dims : {std::vector<int>{1}, {0, 2}, {0, 1, 2}, {-1}})
      for (bool keepdim : {false, true})
        check_grads([&](const std::vector<Tensor>& in) { return apply(kind, in[0], dims, keepdim); }, {x.t},
                    str_cat(kind_name(kind), " dims ", dims.size(), keepdim ? " keepdim" : ""));
  // The gradient of max is shared evenly between tied maxima (torch.amax semantics).
  Tensor t = make({1, 3, 3, 2, 5, 5}, {2, 3});
  auto [value, grads] = value_and_grad([](const std::vector<Tensor>& in) { return sum(max(in[0], {1})); }, {t});
  expect_close(grads[0], {0, 0.5, 0.5, 0, 0.5, 0.5}, {2, 3}, "max ties");
  auto [v2, g2] = value_and_grad([](const std::vector<Tensor>& in) { return sum(min(in[0], {0, 1})); }, {t});
  expect_close(g2[0], {1, 0, 0, 0, 0, 0}, {2, 3}, "min");
  // Gradients through a non-contiguous input.
  check_grads(
      [](const std::vector<Tensor>& in) {
        return logsumexp(transpose(in[0], 0, 2), {0, 1});
      },
      {x.t}, "logsumexp of a transpose");
}

}  // namespace
}  // namespace wick
