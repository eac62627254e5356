// The Fused primitive on every device: chains of elementwise nodes that the lazy graph fuses into
// one pass (with views, broadcasts, shared nodes, more inputs and ops than one program holds), with
// fusion on and off, against float64 references and the eager result.
#include <cmath>

#include "support/testing.h"

namespace wick {
namespace {

using namespace testing;

// A fused chain keeps 16-bit intermediates in f32 where eager execution rounds each: a few roundings
// apart. In f32 and f64 the GPU may contract a*b+c into one FMA inside a fused kernel: an ulp or so.
Tol lazy_vs_eager_tol(Dtype dt) {
  switch (dt) {
    case Dtype::BF16:
      return {0.02, 0.02};
    case Dtype::F16:
      return {5e-3, 5e-3};
    case Dtype::F32:
      return {1e-7, 1e-6};
    default:
      return {1e-13, 1e-12};
  }
}

// Runs f lazily with fusion on or off and evaluates it.
template <class F>
Tensor run_lazy(bool fusion, F f) {
  FusionScope fusing(fusion);
  ExecModeScope lazy(ExecMode::Lazy);
  Tensor y = f();
  eval({y});
  return y;
}

WICK_DEVICE_SUITE(Fused);

// silu, products, tanh, swiglu of a transposed operand, division, exp of a broadcast: against float64.
WICK_DEVICE_TEST(Fused, ElementwiseChainsMatchFloat64) {
  auto chain = [](const Tensor& x, const Tensor& y, const Tensor& z) {
    Tensor h = silu(x) * y + tanh(x - y) * 0.5;
    return swiglu(h, transpose(z, 0, 1)) / (abs(h) + 1.0) + exp(neg(abs(x)));
  };
  auto silu_ref = [](double v) { return v / (1 + std::exp(-v)); };
  for (Dtype dt : {Dtype::F64, Dtype::F32, Dtype::BF16, Dtype::F16}) {
    Rand x = rand({7, 129}, dt), y = rand({129}, dt), z = rand({129, 7}, dt);
    Values ref;
    for (int64_t i = 0; i < 7; ++i)
      for (int64_t j = 0; j < 129; ++j) {
        double xv = x.v[i * 129 + j], yv = y.v[j], zv = z.v[j * 7 + i];
        double h = silu_ref(xv) * yv + std::tanh(xv - yv) * 0.5;
        ref.push_back(silu_ref(h) * zv / (std::abs(h) + 1) + std::exp(-std::abs(xv)));
      }
    std::string what = dtype_name(dt);
    // Eager 16-bit execution rounds all seven intermediates.
    Tol tol = dt == Dtype::BF16 ? Tol{0.1, 0.05} : dt == Dtype::F16 ? Tol{0.02, 0.02} : scaled(tol_for(dt), 10);
    Tensor eager = chain(x.t, y.t, z.t);
    expect_close(eager, ref, {7, 129}, tol, what + " eager");
    for (bool fusion : {true, false}) {
      Tensor lazy = run_lazy(fusion, [&] { return chain(x.t, y.t, z.t); });
      expect_close(lazy, ref, {7, 129}, tol, str_cat(what, " lazy, fusion ", fusion));
      expect_close(lazy, values(eager), {7, 129}, lazy_vs_eager_tol(dt),
                   str_cat(what, " lazy vs eager, fusion ", fusion));
    }
  }
}

WICK_DEVICE_TEST(Fused, LongChainsAndManyInputs) {
  // Chains longer than one fused program and with more inputs than it can load.
  std::vector<Rand> in;
  for (int i = 0; i < 12; ++i) in.push_back(rand({5, 3}, Dtype::F32, 0.5, 1.5));
  auto chain = [&]() {
    Tensor y = in[0].t;
    for (int step = 0; step < 60; ++step)
      y = step % 3 == 0 ? y * in[step % 12].t : step % 3 == 1 ? sin(y) + 1.0 : y / 1.5;
    return y;
  };
  Tensor eager = chain();
  // Each op rounded to f32, as eager execution does.
  Values ref(15);
  for (int e = 0; e < 15; ++e) {
    double y = in[0].v[e];
    for (int step = 0; step < 60; ++step)
      y = step % 3 == 0   ? double(float(y * in[step % 12].v[e]))
          : step % 3 == 1 ? double(float(float(std::sin(float(y))) + 1.0f))
                          : double(float(y / 1.5));
    ref[e] = y;
  }
  expect_close(eager, ref, {5, 3}, Tol{1e-5, 1e-4}, "eager chain");
  Tensor lazy = run_lazy(true, chain);
  expect_close(lazy, values(eager), {5, 3}, lazy_vs_eager_tol(Dtype::F32), "lazy chain of 60 ops over 12 inputs");
}

WICK_DEVICE_TEST(Fused, ChainsInEveryDtype) {
  // Long elementwise chains are what fusion rewrites; compare lazy (fused) with eager per dtype.
  for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F64, Dtype::F16}) {
    Rand a = rand({3, 7}, dt), b = rand({7}, dt);
    auto chain = [](const Tensor& a, const Tensor& b) {
      Tensor t = exp(a * 0.5) - b;
      Tensor u = where(gt(a, b), sigmoid(t), tanh(t * b));  // a branch that rounding cannot flip
      return astype(u * u + relu(a) / (1.0 + abs(b)), Dtype::F32) + 1.0;
    };
    Tensor eager = chain(a.t, b.t);
    Tensor t_view = transpose(a.t, 0, 1);
    Tensor eager_view = chain(transpose(t_view, 0, 1), b.t);
    ExecModeScope lazy(ExecMode::Lazy);
    Tensor l = chain(a.t, b.t), lv = chain(transpose(t_view, 0, 1), b.t);
    Tensor kept = exp(a.t * 0.5);  // an intermediate also held outside
    Tensor l2 = sigmoid(kept) + kept;
    eval({l, lv, l2});
    Tol tol = lazy_vs_eager_tol(dt == Dtype::F64 ? Dtype::F32 : dt);  // the chain ends in f32
    expect_tensors_close(l, eager, tol, str_cat("lazy chain ", dtype_name(dt)));
    expect_tensors_close(lv, eager_view, tol, str_cat("lazy chain of a view ", dtype_name(dt)));
    ExecModeScope eager_scope(ExecMode::Eager);
    Tensor e2 = sigmoid(exp(a.t * 0.5)) + exp(a.t * 0.5);
    expect_tensors_close(l2, e2, tol, str_cat("lazy chain with a shared node ", dtype_name(dt)));
    expect_tensors_close(kept, exp(a.t * 0.5), Tol{0, 0}, "shared node value");
    EXPECT_EQ(l.device(), device());
  }
}

}  // namespace
}  // namespace wick
