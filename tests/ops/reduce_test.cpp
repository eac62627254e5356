// Reductions on every device over single, multiple and all dims, with and without keepdim, at odd
// sizes (one warp, one block, two passes), of views and broadcasts, against float64 loops; NaN and
// ties; gradients (incl. ties of max/min) against finite differences and in 16-bit dtypes.
#include <cmath>
#include <limits>

#include "support/testing.h"

namespace wick {
namespace {

using namespace testing;

enum class Kind { Sum, Mean, Max, Min, LogSumExp, ArgMax, ArgMin };

const char* kind_name(Kind k) {
  const char* names[] = {"sum", "mean", "max", "min", "logsumexp", "argmax", "argmin"};
  return names[int(k)];
}

// Reduces x (row-major, `shape`) over `dims`; returns the values and the output shape.
// argmax/argmin give the first extreme, or the first NaN (torch's semantics); max/min propagate NaN.
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
  // The output slot of each element, from its index along the dims that are kept.
  std::vector<int64_t> kept_stride(nd, 0);
  for (int64_t d = nd - 1, stride = 1; d >= 0; --d) {
    kept_stride[d] = reduced(int(d)) ? 0 : stride;
    stride *= kept[d];
  }
  std::vector<Values> groups(numel(kept));
  for (int64_t i = 0; i < numel(shape); ++i) {
    int64_t o = 0, rest = i;
    for (int d = nd - 1; d >= 0; --d) {
      o += rest % shape[d] * kept_stride[d];
      rest /= shape[d];
    }
    groups[o].push_back(x[i]);
  }
  Values out;
  for (const Values& g : groups) {
    auto first_nan = std::find_if(g.begin(), g.end(), [](double v) { return std::isnan(v); });
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
        r = first_nan != g.end() ? NAN : *std::max_element(g.begin(), g.end());
        break;
      case Kind::Min:
        r = first_nan != g.end() ? NAN : *std::min_element(g.begin(), g.end());
        break;
      case Kind::ArgMax:
        r = double((first_nan != g.end() ? first_nan : std::max_element(g.begin(), g.end())) - g.begin());
        break;
      case Kind::ArgMin:
        r = double((first_nan != g.end() ? first_nan : std::min_element(g.begin(), g.end())) - g.begin());
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

// The tolerance of a reduction of `x`: max/min and the arg forms are exact; sums are allowed the
// accumulation error of their largest group's magnitude; logsumexp that of a sum of terms <= 1.
Tol reduce_tol(Kind kind, Dtype dt, const Values& x, const Shape& shape, const std::vector<int>& dims) {
  if (kind == Kind::Max || kind == Kind::Min || kind == Kind::ArgMax || kind == Kind::ArgMin) return Tol{0, 0};
  if (kind == Kind::LogSumExp) {
    // 16-bit logsumexp rounds intermediates.
    return dt == Dtype::BF16 || dt == Dtype::F16 ? Tol{0.05, 0.02} : sum_tol(dt, 1.0);
  }
  Values a;
  for (double v : x) a.push_back(std::abs(v));
  Values m = reduce_ref(a, shape, dims, false, kind).first;
  return sum_tol(dt, m.empty() ? 0 : *std::max_element(m.begin(), m.end()));
}

WICK_DEVICE_SUITE(Reduce);

WICK_DEVICE_TEST(Reduce, MatchesFloat64) {
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
          // 16-bit results are rounded once at the end.
          Tol tol = reduce_tol(kind, dt, x.v, shape, dims);
          expect_close(y, ref, out_shape, tol, what);
          expect_close(apply(kind, noncontiguous(x.v, shape, dt, 0), dims, keepdim), ref, out_shape, tol,
                       what + " permuted");
          expect_close(apply(kind, noncontiguous(x.v, shape, dt, 1), dims, keepdim), ref, out_shape, tol,
                       what + " strided");
        }
}

// Reduced lengths from 1 to 5000 (one warp, one block, several blocks) over each dim of [3, n, 5].
WICK_DEVICE_TEST(Reduce, OddSizesAlongEveryDim) {
  for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16, Dtype::F64})
    for (int64_t n : {1, 7, 33, 129, 1000, 5000}) {
      const Shape shape{3, n, 5};
      Rand x = rand(shape, dt);
      std::string at = str_cat(dtype_name(dt), " n=", n);
      for (const std::vector<int>& dims : std::vector<std::vector<int>>{{0}, {1}, {2}, {0, 2}, {1, 2}, {0, 1, 2}})
        for (Kind kind : {Kind::Sum, Kind::Mean, Kind::Max}) {
          bool keepdim = kind == Kind::Mean;
          auto [ref, so] = reduce_ref(x.v, shape, dims, keepdim, kind);
          expect_close(apply(kind, x.t, dims, keepdim), ref, so, reduce_tol(kind, dt, x.v, shape, dims),
                       str_cat(kind_name(kind), " ", at, " dims ", dims.size()));
        }
      // min over the transpose [n, 3, 5], and argmin over the transpose [3, 5, n].
      Tensor t = transpose(x.t, 0, 1), xt = transpose(x.t, 1, 2);
      Values tv(x.v.size()), xtv(x.v.size());
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < n; ++j)
          for (int64_t k = 0; k < 5; ++k) {
            tv[(j * 3 + i) * 5 + k] = x.v[(i * n + j) * 5 + k];
            xtv[(i * 5 + k) * n + j] = x.v[(i * n + j) * 5 + k];
          }
      for (const std::vector<int>& dims : std::vector<std::vector<int>>{{0}, {1}, {0, 2}}) {
        auto [ref, so] = reduce_ref(tv, {n, 3, 5}, dims, false, Kind::Min);
        expect_close(min(t, dims), ref, so, Tol{0, 0}, str_cat("min of a transpose ", at));
      }
      for (int d : {0, 1, 2}) {
        auto [ref, so] = reduce_ref(x.v, shape, {d}, false, Kind::ArgMax);
        expect_close(argmax(x.t, d), ref, so, Tol{0, 0}, str_cat("argmax ", at, " dim ", d));
        auto [ref2, so2] = reduce_ref(xtv, {3, 5, n}, {d}, true, Kind::ArgMin);
        expect_close(argmin(xt, d, true), ref2, so2, Tol{0, 0}, str_cat("argmin of a transpose ", at, " dim ", d));
      }
      auto [ref, so] = reduce_ref(x.v, shape, {1}, false, Kind::LogSumExp);
      expect_close(logsumexp(x.t, {1}), ref, so, reduce_tol(Kind::LogSumExp, dt, x.v, shape, {1}),
                   str_cat("logsumexp ", at));
    }
}

// Few outputs over long rows take the two-pass path (partial sums per block, then combined).
WICK_DEVICE_TEST(Reduce, LongReductionsWithFewOutputs) {
  const Shape shape{3, 400001};
  Rand x = rand(shape, Dtype::F32);
  for (const std::vector<int>& dims : std::vector<std::vector<int>>{{0, 1}, {1}}) {
    auto [ref, so] = reduce_ref(x.v, shape, dims, false, Kind::Sum);
    expect_close(sum(x.t, dims), ref, so, reduce_tol(Kind::Sum, Dtype::F32, x.v, shape, dims), "sum");
  }
  auto [mref, mso] = reduce_ref(x.v, shape, {1}, false, Kind::Max);
  expect_close(max(x.t, {1}), mref, mso, Tol{0, 0}, "max");
  auto [nref, nso] = reduce_ref(x.v, shape, {1}, false, Kind::Min);
  expect_close(min(transpose(x.t, 0, 1), {0}), nref, nso, Tol{0, 0}, "min of a transpose");
  // argmax/argmin over long rows (the chunked path on CUDA): the first of tied extremes, and the
  // first NaN, wherever they fall among the chunks; also over a transpose.
  Values v = x.v;
  v[7] = v[300000] = 100.0;                                       // row 0: tied maxima, far apart
  v[400001 + 390000] = std::numeric_limits<double>::quiet_NaN();  // row 1: a late NaN wins both
  v[2 * 400001 + 250000] = v[2 * 400001 + 123457] = -100.0;       // row 2: tied minima
  Tensor vt = Tensor::from_vector(std::vector<float>(v.begin(), v.end()), shape, x.t.device());
  auto [aref, aso] = reduce_ref(v, shape, {1}, false, Kind::ArgMax);
  expect_close(argmax(vt, 1), aref, aso, Tol{0, 0}, "argmax of long rows");
  auto [iref, iso] = reduce_ref(v, shape, {1}, false, Kind::ArgMin);
  expect_close(argmin(transpose(vt, 0, 1), 0), iref, iso, Tol{0, 0}, "argmin of a transpose's long columns");
  Rand b = rand({1 << 18}, Dtype::BF16);
  auto [bref, bso] = reduce_ref(b.v, {1 << 18}, {0}, false, Kind::Sum);
  expect_close(sum(b.t), bref, bso, reduce_tol(Kind::Sum, Dtype::BF16, b.v, {1 << 18}, {0}), "bf16 sum");
}

WICK_DEVICE_TEST(Reduce, AllDimsAndOddSizes) {
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
      expect_close(y, ref, {}, reduce_tol(kind, Dtype::F32, x.v, shape, all),
                   str_cat(kind_name(kind), " all of ", shape_str(shape)));
    }
  }
}

WICK_DEVICE_TEST(Reduce, BroadcastInputs) {
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

WICK_DEVICE_TEST(Reduce, ArgMaxArgMin) {
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

WICK_DEVICE_TEST(Reduce, NaNAndTies) {
  Values v = {1, 3, 3, 2, NAN, 3, -1, -1, 0};
  Tensor x = make(v, {3, 3}, Dtype::F32);
  for (Kind kind : {Kind::Max, Kind::Min, Kind::ArgMax, Kind::ArgMin})
    for (int dim : {0, 1}) {
      auto [ref, so] = reduce_ref(v, {3, 3}, {dim}, false, kind);
      expect_close(apply(kind, x, {dim}, false), ref, so, Tol{0, 0}, str_cat(kind_name(kind), " dim ", dim));
    }
}

WICK_DEVICE_TEST(Reduce, IntegerAndBoolSums) {
  Tensor b = make({1, 0, 1, 1, 0, 1}, {2, 3}, Dtype::Bool);
  Tensor s = sum(b);
  EXPECT_EQ(s.dtype(), Dtype::I64);
  EXPECT_EQ(s.item<int64_t>(), 4);
  expect_close(sum(b, {0}), {2, 0, 2}, {3}, Tol{0, 0});
  Tensor i = make({1, -2, 3, 4, 5, -6}, {2, 3}, Dtype::I32);
  EXPECT_EQ(sum(i, {1}).dtype(), Dtype::I64);
  expect_close(sum(i, {1}), {2, 3}, {2}, Tol{0, 0});
  Tensor big = full({3}, 2e9, Dtype::I32, device());
  EXPECT_EQ(sum(big).item<int64_t>(), int64_t(6e9));  // beyond i32
  EXPECT_EQ(max(i, {1}).dtype(), Dtype::I32);
  expect_close(max(i, {0}), {4, 5, 3}, {3}, Tol{0, 0});
  Tensor m = mean(i, {1});
  EXPECT_TRUE(is_floating(m.dtype()));
  expect_close(m, {2.0 / 3, 1}, {2});
  // Long i64 rows: exact sums and the first maximum.
  Values lv = random_values(4 * 1000, -300, 300);
  for (double& x : lv) x = std::trunc(x);
  Tensor l = make(lv, {4, 1000}, Dtype::I64);
  for (Kind kind : {Kind::Sum, Kind::ArgMax}) {
    auto [ref, so] = reduce_ref(lv, {4, 1000}, {1}, false, kind);
    expect_close(apply(kind, l, {1}, false), ref, so, Tol{0, 0}, str_cat(kind_name(kind), " of i64 rows"));
  }
}

WICK_DEVICE_TEST(Reduce, LogSumExpLargeAndInfinite) {
  Tensor x = make({1000, 1000, -INFINITY, -INFINITY, 0, -INFINITY}, {3, 2}, Dtype::F32);
  expect_close(logsumexp(x, {1}), {1000 + std::log(2.0), -INFINITY, 0}, {3});
  Tensor nan = make({1, NAN, 2, 3}, {2, 2});
  expect_close(max(nan, {1}), {NAN, 3}, {2});
  expect_close(min(nan, {1}), {NAN, 2}, {2});
}

WICK_DEVICE_TEST(Reduce, Gradients) {
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

WICK_DEVICE_TEST(Reduce, GradientsInLowerPrecision) {
  const std::pair<const char*, Fn> cases[] = {
      {"sum + max + logsumexp", [](auto& in) { return sum(in[0], {1}) + max(in[0], {1}) + logsumexp(in[0], {1}); }},
      {"sum of squares + max", [](auto& in) { return sum(in[0] * in[0], {1}) + max(in[0], {1}); }},
  };
  for (const auto& [name, fn] : cases) {
    std::vector<Tensor> x64{rand({7, 33}).t};
    for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16})
      check_grads_in(dt, fn, x64, dt == Dtype::F32 ? 1e-5 : dt == Dtype::F16 ? 1e-2 : 5e-2, name);
  }
}

}  // namespace
}  // namespace wick
