// Helpers of the CUDA tests: every op runs on the GPU and on the CPU backend (the reference) with
// the same random inputs, and the results are compared with tolerances scaled by dtype.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "wick/backend/cuda/settings.h"
#include "wick/core/autograd.h"
#include "wick/core/backend_hooks.h"
#include "wick/core/graph.h"
#include "wick/core/ops.h"

namespace wick::test {

#define WICK_REQUIRE_GPU()                                       \
  do {                                                           \
    if (!::wick::cuda::available()) GTEST_SKIP() << "no CUDA GPU"; \
  } while (0)

inline Tensor on_gpu(const Tensor& x) { return to_device(x, Device::cuda(0)); }
inline Tensor on_cpu(const Tensor& x) { return to_device(x, Device::cpu()); }
inline Tensor on_device_like(const Tensor& x, const Tensor& like) { return to_device(x, like.device()); }

struct Tol {
  double rtol, atol;
};
// Gradients compared between the devices: `f32` for f32/f64 runs; 16-bit runs round every
// intermediate of both backends (in different orders), so they get a bound that catches a wrong
// kernel rather than last-bit differences.
inline Tol grad_tol(Dtype dtype, Tol f32) {
  if (dtype == Dtype::BF16) return {1e-1, 1e-1};
  if (dtype == Dtype::F16) return {2e-2, 2e-2};
  return f32;
}
// |got - want| <= atol + rtol * |want|, per element.
inline Tol tol_for(Dtype dtype) {
  switch (dtype) {
    case Dtype::F64: return {1e-10, 1e-10};
    case Dtype::F32: return {2e-5, 2e-5};
    case Dtype::F16: return {5e-3, 5e-3};
    case Dtype::BF16: return {2e-2, 2e-2};
    default: return {0, 0};
  }
}

// Random normal values of `dtype` on the CPU (rounded to the dtype, so both backends see the same data).
inline Tensor randn(const Shape& shape, Dtype dtype = Dtype::F32, double scale = 1.0) {
  return astype(normal(shape, 0, scale, Dtype::F32, Device::cpu()), dtype).eval();
}

// Compares a GPU result with the CPU reference: same shape and dtype, values within tolerance,
// NaN where the reference is NaN.
inline ::testing::AssertionResult close(const Tensor& got, const Tensor& want, Tol tol) {
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << "shape " << shape_str(got.shape()) << " vs " << shape_str(want.shape());
  if (got.dtype() != want.dtype())
    return ::testing::AssertionFailure() << "dtype " << dtype_name(got.dtype()) << " vs " << dtype_name(want.dtype());
  std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  int64_t bad = 0, first = -1;
  double worst = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    bool ok;
    if (std::isnan(w[i])) ok = std::isnan(g[i]);
    else if (std::isinf(w[i])) ok = g[i] == w[i];
    else ok = std::abs(g[i] - w[i]) <= tol.atol + tol.rtol * std::abs(w[i]);
    if (!ok) {
      if (first < 0) first = int64_t(i);
      ++bad;
      if (!std::isnan(g[i])) worst = std::max(worst, std::abs(g[i] - w[i]));
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << g.size() << " elements differ (" << dtype_name(got.dtype())
                                       << ", shape " << shape_str(got.shape()) << "); first at " << first << ": got "
                                       << g[first] << ", want " << w[first] << "; worst |diff| " << worst;
}

// Runs f on CPU copies and on GPU copies of the inputs and compares the outputs.
inline ::testing::AssertionResult same_on_gpu(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                              const std::vector<Tensor>& cpu_inputs, Tol tol) {
  std::vector<Tensor> gpu_inputs;
  for (const Tensor& x : cpu_inputs) gpu_inputs.push_back(on_gpu(x));
  Tensor want = f(cpu_inputs);
  Tensor got = f(gpu_inputs);
  if (!got.device().is_cuda()) return ::testing::AssertionFailure() << "result is not on the GPU";
  return close(on_cpu(got), want, tol);
}

// Gradients of sum(f(inputs) * w) on both devices (w fixed random), compared input by input.
inline ::testing::AssertionResult same_grads_on_gpu(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                                    const std::vector<Tensor>& cpu_inputs, Tol tol) {
  Tensor probe = f(cpu_inputs);
  Tensor w = randn(probe.shape(), Dtype::F32);
  auto run = [&](const std::vector<Tensor>& inputs, const Tensor& weight) {
    return value_and_grad(
        [&](const std::vector<Tensor>& xs) {
          Tensor y = f(xs);
          return sum(astype(y, Dtype::F32) * weight);
        },
        inputs);
  };
  std::vector<Tensor> gpu_inputs;
  for (const Tensor& x : cpu_inputs) gpu_inputs.push_back(on_gpu(x));
  auto [v_cpu, g_cpu] = run(cpu_inputs, w);
  auto [v_gpu, g_gpu] = run(gpu_inputs, on_gpu(w));
  Tol value_tol{tol.rtol * 10, tol.atol * 10 * std::sqrt(double(probe.numel()))};
  auto r = close(on_cpu(v_gpu), v_cpu, value_tol);
  if (!r) return r << " (value)";
  for (size_t i = 0; i < g_cpu.size(); ++i) {
    if (!g_cpu[i].defined()) continue;
    auto ri = close(on_cpu(g_gpu[i]), g_cpu[i], tol);
    if (!ri) return ri << " (gradient of input " << i << ")";
  }
  return ::testing::AssertionSuccess();
}

inline std::string dtype_param_name(const ::testing::TestParamInfo<Dtype>& info) { return dtype_name(info.param); }

}  // namespace wick::test
