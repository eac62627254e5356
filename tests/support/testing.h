// Shared helpers of the engine and op tests: the devices a test body runs on (the CPU always, the
// first GPU in builds with CUDA), random inputs with their exact float64 values, index arithmetic for
// float64 references written as plain loops, one tolerance type scaled by dtype, and a
// central-finite-difference gradient checker that runs on the inputs' device.
//
// A body written once runs on every device:
//   WICK_DEVICE_SUITE(Norm);
//   WICK_DEVICE_TEST(Norm, RmsNormMatchesFloat64) { Rand x = rand({2, 33}, Dtype::F32); ... }
// gives Norm.RmsNormMatchesFloat64/cpu and Norm.RmsNormMatchesFloat64/cuda; inside it, rand, make,
// noncontiguous and ints put their tensors on the test's device(), and expect_close also checks that
// the result stayed there. The CUDA instance skips when no GPU is present.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "wick/core/autograd.h"
#include "wick/core/backend_hooks.h"
#include "wick/core/graph.h"
#include "wick/core/ops.h"

namespace wick::testing {

using Values = std::vector<double>;

// ---------------------------------------------------------------- random inputs
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

// A tensor of `dtype` on `device` holding `v` (rounded to the dtype by astype on the CPU).
inline Tensor make(const Values& v, const Shape& shape, Dtype dtype = Dtype::F64, Device device = Device::cpu()) {
  return to_device(astype(Tensor::from_vector(v, shape, Device::cpu()), dtype), device);
}

// An integer tensor (indices, targets, positions) of `dtype` on `device`.
inline Tensor ints(const std::vector<int64_t>& v, const Shape& shape, Dtype dtype = Dtype::I64,
                   Device device = Device::cpu()) {
  return to_device(astype(Tensor::from_vector(v, shape, Device::cpu()), dtype), device);
}

inline Values values(const Tensor& t) { return t.to_vector<double>(); }

// A random tensor and the exact float64 values it holds (after rounding to its dtype).
struct Rand {
  Tensor t;
  Values v;
};
inline Rand rand(const Shape& shape, Dtype dtype = Dtype::F64, double lo = -2, double hi = 2,
                 Device device = Device::cpu()) {
  Tensor t = make(random_values(numel(shape), lo, hi), shape, dtype, device);
  return {t, values(t)};
}

// The same values as `v` (laid out as `shape`) in a non-contiguous view: a permuted tensor when
// `kind` is 0, every other element of a wider buffer when `kind` is 1.
inline Tensor noncontiguous(const Values& v, const Shape& shape, Dtype dtype = Dtype::F64, int kind = 0,
                            Device device = Device::cpu()) {
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
    Tensor t = transpose(make(tv, ts, dtype, device), -1, -2);
    EXPECT_FALSE(t.is_contiguous() && r > 1 && c > 1);
    return t;
  }
  Shape wide = shape;
  wide.push_back(2);
  Values wv(v.size() * 2, -777.0);
  for (size_t i = 0; i < v.size(); ++i) wv[2 * i] = v[i];
  return squeeze(slice(make(wv, wide, dtype, device), nd, 0, 1), nd);
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
// An element passes when |actual - expected| <= atol + rtol * |expected|.
struct Tol {
  double atol, rtol;
};
// For a result rounded once to `dtype` from exact math (a few ulp for f32 transcendental functions).
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
// Sums accumulate in f64 for f64 data and in f32 otherwise; in a different order on each backend.
// Each rounding of a partial sum errs by up to the accumulator's epsilon times the terms' magnitude
// (the sum of their absolute values), whatever the result's own size: `roundings` of them are allowed.
inline Tol sum_tol(Dtype dtype, double magnitude, double roundings = 16) {
  Tol t = tol_for(dtype);
  double eps = dtype == Dtype::F64 ? 0x1p-52 : 0x1p-23;
  return {t.atol + roundings * eps * magnitude, t.rtol};
}
inline Tol scaled(Tol t, double factor) { return {t.atol * factor, t.rtol * factor}; }

// Asserts shape and values of `actual` against the float64 reference, |a-b| <= atol + rtol*|ref|;
// NaN and infinities must match exactly.
inline void expect_close(const Tensor& actual, const Values& expected, const Shape& shape, Tol tol,
                         const std::string& what = "") {
  ASSERT_EQ(shape_str(actual.shape()), shape_str(shape)) << what;
  Values a = values(actual);
  ASSERT_EQ(a.size(), expected.size()) << what;
  int64_t bad = 0, first = -1;
  for (size_t i = 0; i < a.size(); ++i) {
    double e = expected[i];
    bool ok;
    if (std::isnan(e))
      ok = std::isnan(a[i]);
    else if (std::isinf(e))
      ok = a[i] == e;
    else
      ok = std::abs(a[i] - e) <= tol.atol + tol.rtol * std::abs(e);
    if (!ok && bad++ == 0) first = int64_t(i);
  }
  if (bad)
    ADD_FAILURE() << what << ": " << bad << " of " << a.size() << " elements differ (" << dtype_name(actual.dtype())
                  << " " << shape_str(shape) << " on " << actual.device().str() << "); element " << first << " is "
                  << a[first] << ", expected " << expected[first] << " (atol " << tol.atol << ", rtol " << tol.rtol
                  << ")";
}
inline void expect_close(const Tensor& actual, const Values& expected, const Shape& shape,
                         const std::string& what = "") {
  expect_close(actual, expected, shape, tol_for(actual.dtype()), what);
}
// Two tensors of the same shape, compared as float64 values (on whatever devices they are).
inline void expect_tensors_close(const Tensor& actual, const Tensor& expected, Tol tol, const std::string& what = "") {
  expect_close(actual, values(expected), expected.shape(), tol, what);
}

// ---------------------------------------------------------------- gradients
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// Checks the gradient of sum(fn(inputs) * w), w random, with respect to every input (float64
// tensors, on any device) against central finite differences with step h, evaluated on the same device.
inline void check_grads(const Fn& fn, const std::vector<Tensor>& inputs, const std::string& what = "",
                        Tol tol = {1e-7, 1e-6}, double h = 1e-6) {
  Tensor y0;
  {
    NoGradGuard no_grad;
    y0 = fn(inputs);
  }
  Tensor w = make(random_values(y0.numel(), -1, 1), y0.shape(), Dtype::F64, y0.device());
  auto objective = [&](const std::vector<Tensor>& xs) { return sum(astype(fn(xs), Dtype::F64) * w); };
  auto [value, grads] = value_and_grad(objective, inputs);
  ASSERT_EQ(grads.size(), inputs.size()) << what;
  NoGradGuard no_grad;
  for (size_t i = 0; i < inputs.size(); ++i) {
    ASSERT_EQ(shape_str(grads[i].shape()), shape_str(inputs[i].shape())) << what << ": gradient " << i;
    EXPECT_EQ(grads[i].device(), inputs[i].device()) << what << ": gradient " << i;
    Values x = values(inputs[i]);
    Values fd(x.size());
    for (size_t j = 0; j < x.size(); ++j) {
      std::vector<Tensor> xs = inputs;
      Values xp = x;
      xp[j] = x[j] + h;
      xs[i] = make(xp, inputs[i].shape(), inputs[i].dtype(), inputs[i].device());
      double fp = objective(xs).item<double>();
      xp[j] = x[j] - h;
      xs[i] = make(xp, inputs[i].shape(), inputs[i].dtype(), inputs[i].device());
      double fm = objective(xs).item<double>();
      fd[j] = (fp - fm) / (2 * h);
    }
    expect_close(grads[i], fd, inputs[i].shape(), tol, what + ": gradient of input " + std::to_string(i));
  }
}

// For inputs too large to perturb one element at a time (float64 tensors, on any device): the
// gradient of sum(fn(inputs) * w) projected on a random direction d of each input, <g, d>, against
// the central difference of the objective along d; within rel * sum |g_i d_i|.
inline void check_directional_grads(const Fn& fn, const std::vector<Tensor>& inputs, const std::string& what = "",
                                    double rel = 1e-6, double h = 1e-5) {
  Tensor y0;
  {
    NoGradGuard no_grad;
    y0 = fn(inputs);
  }
  Tensor w = make(random_values(y0.numel(), -1, 1), y0.shape(), Dtype::F64, y0.device());
  auto objective = [&](const std::vector<Tensor>& xs) { return sum(astype(fn(xs), Dtype::F64) * w); };
  auto grads = grad(objective, inputs);
  NoGradGuard no_grad;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Values d = random_values(inputs[i].numel(), -1, 1), g = values(grads[i]), x = values(inputs[i]);
    double gd = 0, scale = 0;
    for (size_t j = 0; j < d.size(); ++j) {
      gd += g[j] * d[j];
      scale += std::abs(g[j] * d[j]);
    }
    auto along = [&](double step) {
      Values xs = x;
      for (size_t j = 0; j < xs.size(); ++j) xs[j] += step * d[j];
      std::vector<Tensor> in = inputs;
      in[i] = make(xs, inputs[i].shape(), inputs[i].dtype(), inputs[i].device());
      return objective(in).item<double>();
    };
    double fd = (along(h) - along(-h)) / (2 * h);
    EXPECT_LE(std::abs(fd - gd), rel * scale + 1e-9) << what << ": gradient of input " << i << " along a random "
                                                     << "direction is " << gd << ", finite differences give " << fd;
  }
}

// Gradients of sum(fn(inputs) * w) computed in a lower precision `dtype` against the float64
// gradients of the same rounded inputs (themselves checked against finite differences):
// they keep the input dtype and max|g - g64| <= rel * max|g64| per input (16-bit vjps round every
// intermediate, so the bound is on the gradient as a whole). A gradient that cancels to (nearly)
// zero is a difference of terms of order one, rounded: there the bound is rel * 1e-2.
inline void check_grads_in(Dtype dtype, const Fn& fn, const std::vector<Tensor>& inputs64, double rel,
                           const std::string& what = "") {
  Tensor y = fn(inputs64);
  Tensor w = make(random_values(y.numel()), y.shape(), Dtype::F64, y.device());
  auto objective = [&](const std::vector<Tensor>& in) { return sum(astype(fn(in), Dtype::F64) * w); };
  std::vector<Tensor> xs, xs64;
  for (const Tensor& x : inputs64) {
    xs.push_back(astype(x, dtype));
    xs64.push_back(astype(xs.back(), Dtype::F64));
  }
  auto ref = grad(objective, xs64);
  auto g = grad(objective, xs);
  for (size_t i = 0; i < xs.size(); ++i) {
    std::string label = str_cat(what, " ", dtype_name(dtype), " gradient ", i);
    EXPECT_EQ(g[i].dtype(), dtype) << label;
    Values gv = values(g[i]), rv = values(ref[i]);
    double scale = 0, err = 0;
    for (size_t j = 0; j < rv.size(); ++j) {
      scale = std::max(scale, std::abs(rv[j]));
      err = std::max(err, std::abs(gv[j] - rv[j]));
    }
    EXPECT_LE(err, rel * std::max(scale, 1e-2)) << label << " (max |g| " << scale << ")";
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

// ---------------------------------------------------------------- devices
// The CPU, and the first GPU when the build has the CUDA backend (its tests skip without a GPU).
inline std::vector<Device> test_devices() {
  std::vector<Device> devices{Device::cpu()};
#if defined(WICK_HAVE_CUDA)
  devices.push_back(Device::cuda(0));
#endif
  return devices;
}
inline std::string device_param_name(const ::testing::TestParamInfo<Device>& info) {
  return info.param.is_cuda() ? "cuda" : "cpu";
}

// The fixture of device-parameterised tests: its helpers make their tensors on device().
class DeviceTest : public ::testing::TestWithParam<Device> {
 protected:
  void SetUp() override {
    if (device().is_cuda() && !cuda::available()) GTEST_SKIP() << "no CUDA GPU";
  }
  Device device() const { return GetParam(); }
  bool on_cuda() const { return device().is_cuda(); }

  Tensor make(const Values& v, const Shape& shape, Dtype dtype = Dtype::F64) const {
    return testing::make(v, shape, dtype, device());
  }
  Tensor ints(const std::vector<int64_t>& v, const Shape& shape, Dtype dtype = Dtype::I64) const {
    return testing::ints(v, shape, dtype, device());
  }
  Rand rand(const Shape& shape, Dtype dtype = Dtype::F64, double lo = -2, double hi = 2) const {
    return testing::rand(shape, dtype, lo, hi, device());
  }
  Tensor noncontiguous(const Values& v, const Shape& shape, Dtype dtype = Dtype::F64, int kind = 0) const {
    return testing::noncontiguous(v, shape, dtype, kind, device());
  }
  Tensor here(const Tensor& x) const { return to_device(x, device()); }

  // As testing::expect_close, and the result must be on the test's device.
  void expect_close(const Tensor& actual, const Values& expected, const Shape& shape, Tol tol,
                    const std::string& what = "") const {
    EXPECT_EQ(actual.device().str(), device().str()) << what << ": the result left the device";
    testing::expect_close(actual, expected, shape, tol, what);
  }
  void expect_close(const Tensor& actual, const Values& expected, const Shape& shape,
                    const std::string& what = "") const {
    expect_close(actual, expected, shape, tol_for(actual.dtype()), what);
  }
};

}  // namespace wick::testing

namespace wick {
// How gtest prints a device parameter.
inline void PrintTo(const Device& device, std::ostream* os) { *os << device.str(); }
}  // namespace wick

// A suite of device-parameterised tests (see the top of this file).
#define WICK_DEVICE_SUITE(Suite)                                                          \
  class Suite : public ::wick::testing::DeviceTest {};                                    \
  INSTANTIATE_TEST_SUITE_P(, Suite, ::testing::ValuesIn(::wick::testing::test_devices()), \
                           ::wick::testing::device_param_name)
#define WICK_DEVICE_TEST(Suite, Name) TEST_P(Suite, Name)

// For the tests that only a GPU can run (allocator, streams, CUDA settings).
#define WICK_REQUIRE_GPU()                                         \
  do {                                                             \
    if (!::wick::cuda::available()) GTEST_SKIP() << "no CUDA GPU"; \
  } while (0)
