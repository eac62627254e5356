// softmax and log_softmax on every device: any dim, views, row lengths from 1 to 4099 (one warp,
// one block), large and -inf logits, against float64 loops and their wick::reference compositions;
// gradients against finite differences and, in lower precisions, against the float64 gradients.
#include <cmath>

#include "support/testing.h"

namespace wick {
namespace {

using namespace testing;

const Dtype kDtypes[] = {Dtype::F64, Dtype::F32, Dtype::BF16, Dtype::F16};

// Applies f to every row along `dim` of x (row-major `shape`), writing the row results in place.
template <class F>
Values rowwise(const Values& x, const Shape& shape, int dim, F f) {
  int nd = int(shape.size());
  dim = dim < 0 ? dim + nd : dim;
  int64_t n = shape[dim], inner = 1;
  for (int d = dim + 1; d < nd; ++d) inner *= shape[d];
  int64_t outer = numel(shape) / std::max<int64_t>(n * inner, 1);
  Values out(x.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < inner; ++j) {
      Values row(n);
      for (int64_t i = 0; i < n; ++i) row[i] = x[(o * n + i) * inner + j];
      Values r = f(row);
      for (int64_t i = 0; i < n; ++i) out[(o * n + i) * inner + j] = r[i];
    }
  return out;
}

Values softmax_row(const Values& r, bool log) {
  double m = *std::max_element(r.begin(), r.end()), s = 0;
  for (double v : r) s += std::exp(v - m);
  Values out;
  for (double v : r) out.push_back(log ? v - m - std::log(s) : std::exp(v - m) / s);
  return out;
}

using SoftmaxFn = Tensor (*)(const Tensor&, int);
SoftmaxFn op_of(bool log) { return log ? static_cast<SoftmaxFn>(log_softmax) : static_cast<SoftmaxFn>(softmax); }
SoftmaxFn reference_of(bool log) { return log ? reference::log_softmax : reference::softmax; }
// The reference composition rounds its intermediates in 16-bit dtypes.
Tol composed_tol(Dtype dt) { return dt == Dtype::F64 || dt == Dtype::F32 ? tol_for(dt) : Tol{0.05, 0.03}; }

WICK_DEVICE_SUITE(Softmax);

WICK_DEVICE_TEST(Softmax, AnyDimMatchesFloat64) {
  const Shape shape{3, 4, 5};
  for (Dtype dt : kDtypes)
    for (int dim : {0, 1, 2, -1})
      for (bool log : {false, true}) {
        Rand x = rand(shape, dt, -4, 4);
        Values ref = rowwise(x.v, shape, dim, [&](const Values& r) { return softmax_row(r, log); });
        std::string what = str_cat(log ? "log_softmax " : "softmax ", dtype_name(dt), " dim ", dim);
        Tensor y = op_of(log)(x.t, dim);
        EXPECT_EQ(y.dtype(), dt);
        expect_close(y, ref, shape, what);
        expect_close(op_of(log)(noncontiguous(x.v, shape, dt), dim), ref, shape, what + " of a view");
        expect_close(reference_of(log)(x.t, dim), ref, shape, composed_tol(dt), what + " reference composition");
      }
}

// Rows of 1 to 4099 elements: one warp per row up to 1024, one block beyond.
WICK_DEVICE_TEST(Softmax, RowLengthsFromOneWarpToSeveral) {
  for (Dtype dt : kDtypes)
    for (int64_t n : {1, 7, 33, 129, 1000, 1025, 4099}) {
      const Shape shape{5, n};
      Rand x = rand(shape, dt, -6, 6);
      for (bool log : {false, true}) {
        std::string what = str_cat(log ? "log_softmax " : "softmax ", dtype_name(dt), " n=", n);
        Values ref = rowwise(x.v, shape, -1, [&](const Values& r) { return softmax_row(r, log); });
        expect_close(op_of(log)(x.t, -1), ref, shape, what);
        expect_close(reference_of(log)(x.t, -1), ref, shape, composed_tol(dt), what + " reference composition");
      }
      Values ref0 = rowwise(x.v, shape, 0, [&](const Values& r) { return softmax_row(r, false); });
      expect_close(softmax(x.t, 0), ref0, shape, str_cat("softmax dim 0 ", dtype_name(dt), " n=", n));
    }
}

WICK_DEVICE_TEST(Softmax, LargeAndInfiniteLogits) {
  Tensor x = make({1000, 1001, -INFINITY, 0}, {1, 4}, Dtype::F32);
  double e = std::exp(-1.0);
  expect_close(softmax(x), {e / (1 + e + std::exp(-1001.0)), 1 / (1 + e), 0, std::exp(-1001.0)}, {1, 4});
  expect_close(log_softmax(x), {-1 - std::log1p(e), -std::log1p(e), -INFINITY, -1001 - std::log1p(e)}, {1, 4});
  // A row of -inf only has no distribution: NaN, as in torch.
  for (Dtype dt : kDtypes)
    expect_close(softmax(full({2, 9}, -INFINITY, dt, device())), Values(18, NAN), {2, 9}, dtype_name(dt));
}

WICK_DEVICE_TEST(Softmax, Gradients) {
  Rand x = rand({2, 3, 5});
  for (int dim : {0, 1, -1}) {
    check_grads([&](const std::vector<Tensor>& in) { return softmax(in[0], dim); }, {x.t}, str_cat("softmax ", dim));
    check_grads([&](const std::vector<Tensor>& in) { return log_softmax(in[0], dim); }, {x.t},
                str_cat("log_softmax ", dim));
  }
}

WICK_DEVICE_TEST(Softmax, GradientsInLowerPrecision) {
  const std::pair<Shape, Fn> cases[] = {
      {{3, 5}, [](auto& in) { return softmax(in[0], 0) + log_softmax(in[0]); }},
      {{4, 7, 129}, [](auto& in) { return softmax(in[0]); }},
      {{4, 7, 129}, [](auto& in) { return log_softmax(in[0]); }},
  };
  for (const auto& [shape, fn] : cases) {
    std::vector<Tensor> x64{rand(shape).t};
    for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16})
      check_grads_in(dt, fn, x64, dt == Dtype::F32 ? 1e-5 : dt == Dtype::F16 ? 1e-2 : 5e-2, shape_str(shape));
  }
}

}  // namespace
}  // namespace wick
