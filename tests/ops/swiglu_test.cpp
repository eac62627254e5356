// swiglu(gate, up) = silu(gate) * up on every device: odd sizes and views, against a float64 loop
// and its wick::reference composition; gradients against finite differences and, in lower
// precisions, against the float64 gradients.
#include <cmath>

#include "support/testing.h"

namespace wick {
namespace {

using namespace testing;

Values swiglu_ref(const Values& g, const Values& u) {
  Values out;
  for (size_t i = 0; i < g.size(); ++i) out.push_back(g[i] / (1 + std::exp(-g[i])) * u[i]);
  return out;
}

WICK_DEVICE_SUITE(SwiGLU);

WICK_DEVICE_TEST(SwiGLU, MatchesFloat64) {
  for (Dtype dt : {Dtype::F64, Dtype::F32, Dtype::BF16, Dtype::F16})
    for (Shape shape : {Shape{3, 7}, Shape{5, 1}, Shape{5, 33}, Shape{5, 129}, Shape{5, 1000}}) {
      Rand g = rand(shape, dt, -5, 5), u = rand(shape, dt);
      Values ref = swiglu_ref(g.v, u.v);
      std::string what = str_cat("swiglu ", dtype_name(dt), " ", shape_str(shape));
      expect_close(swiglu(g.t, u.t), ref, shape, what);
      expect_close(swiglu(noncontiguous(g.v, shape, dt), noncontiguous(u.v, shape, dt, 1)), ref, shape,
                   what + " of views");
      // The composition rounds silu(gate) before the product in 16-bit dtypes.
      Tol tol = dt == Dtype::F64 || dt == Dtype::F32 ? tol_for(dt) : Tol{0.03, 0.02};
      expect_close(reference::swiglu(g.t, u.t), ref, shape, tol, what + " reference");
    }
}

// Contiguous f32 over the whole useful range of the gate (the CPU's vectorised loops, where the
// sigmoid's exp is clamped), on more values than one range of the thread pool and not a multiple of
// any vector width, also from an offset into a larger buffer (unaligned), forward and backward
// against float64.
WICK_DEVICE_TEST(SwiGLU, F32OverTheGateRangeMatchesFloat64) {
  const int64_t rows = 7, cols = 4099;
  Rand g = rand({rows * cols + 1}, Dtype::F32, -95, 95), u = rand({rows * cols + 1}, Dtype::F32),
       d = rand({rows * cols + 1}, Dtype::F32);
  for (int64_t offset : {0, 1}) {
    auto part = [&](const Tensor& t) { return reshape(narrow(t, 0, offset, rows * cols), {rows, cols}); };
    Values gv(g.v.begin() + offset, g.v.begin() + offset + rows * cols),
        uv(u.v.begin() + offset, u.v.begin() + offset + rows * cols),
        dv(d.v.begin() + offset, d.v.begin() + offset + rows * cols);
    std::string what = str_cat("offset ", offset);
    expect_close(swiglu(part(g.t), part(u.t)), swiglu_ref(gv, uv), {rows, cols}, what);
    Values dgate, dup;
    for (size_t i = 0; i < gv.size(); ++i) {
      double s = 1 / (1 + std::exp(-gv[i]));
      dgate.push_back(dv[i] * uv[i] * s * (1 + gv[i] * (1 - s)));
      dup.push_back(dv[i] * gv[i] * s);
    }
    auto grads = vjp([](const std::vector<Tensor>& in) { return std::vector<Tensor>{swiglu(in[0], in[1])}; },
                     {part(g.t), part(u.t)}, {part(d.t)});
    expect_close(grads.second[0], dgate, {rows, cols}, what + " d gate");
    expect_close(grads.second[1], dup, {rows, cols}, what + " d up");
  }
}

WICK_DEVICE_TEST(SwiGLU, Gradients) {
  check_grads([](const std::vector<Tensor>& in) { return swiglu(in[0], in[1]); },
              {rand({2, 3, 5}).t, rand({2, 3, 5}).t}, "swiglu");
  check_grads([](const std::vector<Tensor>& in) { return swiglu(transpose(in[0], 0, 1), in[1]); },
              {rand({5, 3}).t, rand({3, 5}).t}, "swiglu of a view");
}

WICK_DEVICE_TEST(SwiGLU, GradientsInLowerPrecision) {
  for (Shape shape : {Shape{3, 5}, Shape{7, 33}}) {
    std::vector<Tensor> x64{rand(shape).t, rand(shape).t};
    for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16})
      check_grads_in(
          dt, [](auto& in) { return swiglu(in[0], in[1]); }, x64,
          dt == Dtype::F32   ? 1e-5
          : dt == Dtype::F16 ? 1e-2
                             : 5e-2,
          shape_str(shape));
  }
}

// gate and up as the two halves of one projection [rows, 2F] (split's views, rows dense: the GPU
// reads 16 bytes at a time where F allows), values against float64; the gradients come back side
// by side in one buffer, so the join of the halves is that buffer, and equal the float64 ones.
WICK_DEVICE_TEST(SwiGLU, HalvesOfOneProjection) {
  for (int64_t f : {16, 24, 7, 136})
    for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16, Dtype::F64}) {
      std::string what = str_cat(dtype_name(dt), " F ", f);
      Rand y = rand({5, 2 * f}, dt, -4, 4);
      Values g, u;
      for (int64_t r = 0; r < 5; ++r)
        for (int64_t c = 0; c < f; ++c) {
          g.push_back(y.v[size_t(r * 2 * f + c)]);
          u.push_back(y.v[size_t(r * 2 * f + f + c)]);
        }
      std::vector<Tensor> halves = split(y.t, {f, f}, 1);
      expect_close(swiglu(halves[0], halves[1]), swiglu_ref(g, u), {5, f}, what);
      check_grads_in(
          dt,
          [f](auto& in) {
            std::vector<Tensor> h = split(in[0], {f, f}, 1);
            return swiglu(h[0], h[1]);
          },
          {astype(y.t, Dtype::F64)},
          dt == Dtype::F32   ? 1e-5
          : dt == Dtype::F64 ? 1e-10
          : dt == Dtype::F16 ? 1e-2
                             : 5e-2,
          what);
    }
}

}  // namespace
}  // namespace wick
