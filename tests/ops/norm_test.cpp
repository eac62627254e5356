// layer_norm and rms_norm on every device: with and without weight and bias, views, row lengths
// from 1 to 4099 (one warp, one block), against float64 loops written from the standard formulas
// and their wick::reference compositions; gradients against finite differences and, in lower
// precisions, against the float64 gradients.
#include <cmath>

#include "support/testing.h"

namespace wick {
namespace {

using namespace testing;

const Dtype kDtypes[] = {Dtype::F64, Dtype::F32, Dtype::BF16, Dtype::F16};

// The rows (last dim) of x normalised, as float64.
Values norm_ref(const Values& x, int64_t h, const Values* w, const Values* b, double eps, bool rms) {
  Values out;
  for (size_t at = 0; at < x.size(); at += size_t(h)) {
    double mu = 0, var = 0;
    if (!rms)
      for (int64_t j = 0; j < h; ++j) mu += x[at + j] / double(h);
    for (int64_t j = 0; j < h; ++j) var += (x[at + j] - mu) * (x[at + j] - mu) / double(h);
    for (int64_t j = 0; j < h; ++j)
      out.push_back((x[at + j] - mu) / std::sqrt(var + eps) * (w ? (*w)[j] : 1) + (b ? (*b)[j] : 0));
  }
  return out;
}

// Rounding x*w+b once in 16 bits makes |err| scale with the largest term, not the result; in f32 the
// row statistics (one pass on the GPU) err by a few roundings of terms up to |xhat * w| + |b| ~ 8.
Tol norm_tol(Dtype dt) {
  if (dt == Dtype::BF16) return {0.05, 0.02};
  if (dt == Dtype::F16) return {0.01, 0.01};
  return sum_tol(dt, 8.0);
}

WICK_DEVICE_SUITE(Norm);

WICK_DEVICE_TEST(Norm, LayerNormMatchesFloat64) {
  const Shape shape{2, 3, 33};
  for (Dtype dt : kDtypes)
    for (int variant = 0; variant < 4; ++variant) {
      bool has_w = variant & 1, has_b = variant & 2;
      Rand x = rand(shape, dt, -3, 5), w = rand({33}, dt), b = rand({33}, dt);
      Values ref = norm_ref(x.v, 33, has_w ? &w.v : nullptr, has_b ? &b.v : nullptr, 1e-5, false);
      std::optional<Tensor> ow = has_w ? std::optional<Tensor>(w.t) : std::nullopt;
      std::optional<Tensor> ob = has_b ? std::optional<Tensor>(b.t) : std::nullopt;
      std::string what = str_cat("layer_norm ", dtype_name(dt), has_w ? " weight" : "", has_b ? " bias" : "");
      Tol tol = norm_tol(dt);
      expect_close(layer_norm(x.t, ow, ob), ref, shape, tol, what);
      expect_close(layer_norm(noncontiguous(x.v, shape, dt, 1), ow, ob), ref, shape, tol, what + " of a view");
      if (dt == Dtype::F64 || dt == Dtype::F32)
        expect_close(reference::layer_norm(x.t, ow, ob, 1e-5), ref, shape, tol, what + " reference");
    }
}

WICK_DEVICE_TEST(Norm, RmsNormMatchesFloat64) {
  const Shape shape{2, 3, 33};
  for (Dtype dt : kDtypes) {
    Rand x = rand(shape, dt), w = rand({33}, dt);
    Values ref = norm_ref(x.v, 33, &w.v, nullptr, 1e-6, true);
    Tol tol = norm_tol(dt);
    std::string what = str_cat("rms_norm ", dtype_name(dt));
    expect_close(rms_norm(x.t, w.t), ref, shape, tol, what);
    expect_close(rms_norm(noncontiguous(x.v, shape, dt), w.t), ref, shape, tol, what + " of a view");
    if (dt == Dtype::F64 || dt == Dtype::F32)
      expect_close(reference::rms_norm(x.t, w.t, 1e-6), ref, shape, tol, what + " reference");
  }
}

// Rows of 1 to 4099 elements: one warp per row up to 1024, one block beyond (on CUDA, rms_norm rows
// of whole 16-byte vectors up to 256 of them take a kernel that holds the row in registers: 8, 896,
// 1000, 2048 elements); the fused kernels and their reference compositions against float64.
WICK_DEVICE_TEST(Norm, RowLengthsFromOneWarpToSeveral) {
  for (Dtype dt : kDtypes)
    for (int64_t n : {1, 7, 8, 33, 129, 896, 1000, 1025, 2048, 2056, 4099}) {
      Rand x = rand({5, n}, dt, -6, 6), w = rand({n}, dt), b = rand({n}, dt);
      std::string at = str_cat(dtype_name(dt), " n=", n);
      // The compositions round their intermediates in 16-bit dtypes.
      Tol tol = norm_tol(dt), composed = dt == Dtype::BF16 ? Tol{0.1, 0.05} : dt == Dtype::F16 ? Tol{0.03, 0.02} : tol;
      Values ln = norm_ref(x.v, n, &w.v, &b.v, 1e-5, false);
      expect_close(layer_norm(x.t, w.t, b.t, 1e-5), ln, {5, n}, tol, "layer_norm " + at);
      expect_close(reference::layer_norm(x.t, w.t, b.t, 1e-5), ln, {5, n}, composed, "reference layer_norm " + at);
      expect_close(layer_norm(x.t, std::nullopt, std::nullopt, 1e-5), norm_ref(x.v, n, nullptr, nullptr, 1e-5, false),
                   {5, n}, tol, "layer_norm without affine " + at);
      Values rms = norm_ref(x.v, n, &w.v, nullptr, 1e-6, true);
      expect_close(rms_norm(x.t, w.t, 1e-6), rms, {5, n}, tol, "rms_norm " + at);
      expect_close(reference::rms_norm(x.t, w.t, 1e-6), rms, {5, n}, composed, "reference rms_norm " + at);
    }
}

WICK_DEVICE_TEST(Norm, Gradients) {
  Rand x = rand({2, 3, 5}), w = rand({5}), b = rand({5});
  check_grads([](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2]); }, {x.t, w.t, b.t},
              "layer_norm");
  check_grads([](const std::vector<Tensor>& in) { return layer_norm(in[0], std::nullopt, std::nullopt); }, {x.t},
              "layer_norm without affine");
  check_grads([](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], std::nullopt); }, {x.t, w.t},
              "layer_norm weight only");
  check_grads([](const std::vector<Tensor>& in) { return layer_norm(in[0], std::nullopt, in[1]); }, {x.t, b.t},
              "layer_norm bias only");
  check_grads([](const std::vector<Tensor>& in) { return rms_norm(in[0], in[1]); }, {x.t, w.t}, "rms_norm");
}

WICK_DEVICE_TEST(Norm, GradientsInLowerPrecision) {
  const std::pair<int64_t, int64_t> sizes[] = {{3, 5}, {28, 129}};  // [rows, features]
  for (auto [rows, h] : sizes) {
    std::vector<Tensor> in{rand({rows, h}).t, rand({h}).t, rand({h}).t};
    for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16}) {
      double rel = dt == Dtype::F32 ? 1e-5 : dt == Dtype::F16 ? 1e-2 : 5e-2;
      std::string what = str_cat("[", rows, ",", h, "]");
      check_grads_in(
          dt, [](auto& v) { return layer_norm(v[0], v[1], v[1]) + rms_norm(v[0], v[1]); }, {in[0], in[1]}, rel,
          "norms " + what);
      check_grads_in(
          dt, [](auto& v) { return layer_norm(v[0], v[1], v[2], 1e-5); }, in, rel, "layer_norm " + what);
      check_grads_in(
          dt, [](auto& v) { return rms_norm(v[0], v[1], 1e-6); }, {in[0], in[1]}, rel, "rms_norm " + what);
    }
  }
}

}  // namespace
}  // namespace wick
