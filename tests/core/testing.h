// Shared helpers of the engine tests: random inputs with their exact float64 values, index
// arithmetic for writing float64 references as plain loops, tolerance checks that scale with the
// dtype, and a central-finite-difference gradient checker.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "wick/core/autograd.h"
#include "wick/core/graph.h"
#include "wick/core/ops.h"

namespace wick::testing {

using Values = std::vector<double>;

inline std::mt19937_64& rng() {
  static std::mt19937_64 gen(1234);
  return gen;
}

inline Values random_values(int64_t n, double lo = -2, double hi = 2) {
  std::uniform_real_distribution<double> dist(lo, hi);
  Values v(size_t(std::max<int64_t>(n, 0)));
  for (double& x : v) x = dist(rng());
  return v;
}

inline std::vector<int64_t> random_indices(int64_t n, int64_t limit) {
  std::uniform_int_distribution<int64_t> dist(0, limit - 1);
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t& x : v) x = dist(rng());
  return v;
}

// A tensor of `dtype` holding `v` (rounded to the dtype by astype).
inline Tensor make(const Values& v, const Shape& shape, Dtype dtype = Dtype::F64) {
  return astype(Tensor::from_vector(v, shape), dtype);
}

inline Values values(const Tensor& t) { return t.to_vector<double>(); }

// A random tensor and the exact float64 values it holds (after rounding to its dtype).
struct Rand {
  Tensor t;
  Values v;
};
inline Rand rand(const Shape& shape, Dtype dtype = Dtype::F64, double lo = -2, double hi = 2) {
  Tensor t = make(random_values(numel(shape), lo, hi), shape, dtype);
  return {t, values(t)};
}

// The same values as `v` (laid out as `shape`) in a non-contiguous view: a permuted tensor when
// `kind` is 0, every other element of a wider buffer when `kind` is 1.
inline Tensor noncontiguous(const Values& v, const Shape& shape, Dtype dtype = Dtype::F64, int kind = 0) {
  int nd = int(shape.size());
  if (kind == 0 && nd >= 2) {
    // Store the transpose of the last two dims, then view it back.
    Shape ts = shape;
    std::swap(ts[nd - 1], ts[nd - 2]);
    Values tv(v.size());
    int64_t r = shape[nd - 2], c = shape[nd - 1], batch = r * c != 0 ? int64_t(v.size()) / (r * c) : 0;
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t i = 0; i < r; ++i)
        for (int64_t j = 0; j < c; ++j) tv[b * r * c + j * r + i] = v[b * r * c + i * c + j];
    Tensor t = transpose(make(tv, ts, dtype), -1, -2);
    EXPECT_FALSE(t.is_contiguous() && r > 1 && c > 1);
    return t;
  }
  Shape wide = shape;
  wide.push_back(2);
  Values wv(v.size() * 2, -777.0);
  for (size_t i = 0; i < v.size(); ++i) wv[2 * i] = v[i];
  return squeeze(slice(make(wv, wide, dtype), nd, 0, 1), nd);
}

// ---------------------------------------------------------------- index arithmetic
inline std::vector<int64_t> unravel(int64_t i, const Shape& shape) {
  std::vector<int64_t> idx(shape.size());
  for (int d = int(shape.size()) - 1; d >= 0; --d) {
    idx[d] = shape[d] ? i % shape[d] : 0;
    i = shape[d] ? i / shape[d] : 0;
  }
  return idx;
}
// Flat index into a row-major `shape` of the element at `idx` of a (possibly larger-rank) shape
// that `shape` broadcasts to (NumPy rules: align right, size-1 dims repeat).
inline int64_t ravel_broadcast(const std::vector<int64_t>& idx, const Shape& shape) {
  size_t off = idx.size() - shape.size();
  int64_t flat = 0;
  for (size_t d = 0; d < shape.size(); ++d) flat = flat * shape[d] + (shape[d] == 1 ? 0 : idx[off + d]);
  return flat;
}

// ---------------------------------------------------------------- tolerances
struct Tol {
  double atol, rtol;
};
inline Tol tol_for(Dtype dtype) {
  switch (dtype) {
    case Dtype::F64:
      return {1e-12, 1e-10};
    case Dtype::F32:
      return {1e-6, 1e-5};
    case Dtype::F16:
      return {1e-3, 1e-2};
    case Dtype::BF16:
      return {1e-2, 1e-2};
    default:
      return {0, 0};
  }
}

// The largest |a-b| / (atol + rtol*|ref|); <= 1 means within tolerance.
inline double max_rel_error(const Values& actual, const Values& expected, Tol tol) {
  double worst = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    double a = actual[i], e = expected[i];
    if (std::isnan(e) || std::isnan(a)) {
      if (std::isnan(e) != std::isnan(a)) return INFINITY;
      continue;
    }
    if (std::isinf(e) || std::isinf(a)) {
      if (a != e) return INFINITY;
      continue;
    }
    worst = std::max(worst, std::abs(a - e) / (tol.atol + tol.rtol * std::abs(e)));
  }
  return worst;
}

// Asserts shape and values of `actual` against the float64 reference, |a-b| <= atol + rtol*|ref|.
inline void expect_close(const Tensor& actual, const Values& expected, const Shape& shape, Tol tol,
                         const std::string& what = "") {
  ASSERT_EQ(shape_str(actual.shape()), shape_str(shape)) << what;
  Values a = values(actual);
  ASSERT_EQ(a.size(), expected.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    double e = expected[i];
    bool ok;
    if (std::isnan(e))
      ok = std::isnan(a[i]);
    else if (std::isinf(e))
      ok = a[i] == e;
    else
      ok = std::abs(a[i] - e) <= tol.atol + tol.rtol * std::abs(e);
    if (!ok) {
      ADD_FAILURE() << what << ": element " << i << " of " << shape_str(shape) << " is " << a[i] << ", expected " << e
                    << " (atol " << tol.atol << ", rtol " << tol.rtol << ")";
      return;
    }
  }
}
inline void expect_close(const Tensor& actual, const Values& expected, const Shape& shape,
                         const std::string& what = "") {
  expect_close(actual, expected, shape, tol_for(actual.dtype()), what);
}
// Two tensors of the same shape, compared as float64 values.
inline void expect_tensors_close(const Tensor& actual, const Tensor& expected, Tol tol, const std::string& what = "") {
  expect_close(actual, values(expected), expected.shape(), tol, what);
}

// ---------------------------------------------------------------- gradients
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// Checks the gradient of sum(fn(inputs) * w), w random, with respect to every input (float64
// tensors) against central finite differences with step h.
inline void check_grads(const Fn& fn, const std::vector<Tensor>& inputs, const std::string& what = "",
                        Tol tol = {1e-7, 1e-6}, double h = 1e-6) {
  Tensor y0;
  {
    NoGradGuard no_grad;
    y0 = fn(inputs);
  }
  Tensor w = make(random_values(y0.numel(), -1, 1), y0.shape());
  auto objective = [&](const std::vector<Tensor>& xs) { return sum(astype(fn(xs), Dtype::F64) * w); };
  auto [value, grads] = value_and_grad(objective, inputs);
  ASSERT_EQ(grads.size(), inputs.size()) << what;
  NoGradGuard no_grad;
  for (size_t i = 0; i < inputs.size(); ++i) {
    ASSERT_EQ(shape_str(grads[i].shape()), shape_str(inputs[i].shape())) << what << ": gradient " << i;
    Values g = values(grads[i]);
    Values x = values(inputs[i]);
    Values fd(x.size());
    for (size_t j = 0; j < x.size(); ++j) {
      std::vector<Tensor> xs = inputs;
      Values xp = x;
      xp[j] = x[j] + h;
      xs[i] = make(xp, inputs[i].shape(), inputs[i].dtype());
      double fp = objective(xs).item<double>();
      xp[j] = x[j] - h;
      xs[i] = make(xp, inputs[i].shape(), inputs[i].dtype());
      double fm = objective(xs).item<double>();
      fd[j] = (fp - fm) / (2 * h);
    }
    expect_close(grads[i], fd, inputs[i].shape(), tol, what + ": gradient of input " + std::to_string(i));
  }
}

// Asserts that `f` throws wick::Error whose message contains every one of `parts`.
inline void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
  } catch (const Error& e) {
    std::string msg = e.what();
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "message '" << msg << "' lacks '" << p << "'";
    return;
  }
  ADD_FAILURE() << "no wick::Error thrown (expected one mentioning '" << (parts.empty() ? "" : parts[0]) << "')";
}

}  // namespace wick::testing
