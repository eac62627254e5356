// Rotary position embedding on every device: rotate-half and interleaved, partial rotary dims,
// offsets, [T] and [B, T] positions (up to 2047), custom inverse frequencies, views, against a
// float64 loop and its wick::reference composition; gradients against finite differences and, in
// lower precisions, against the float64 gradients.
#include <cmath>

#include "support/testing.h"

namespace wick {
namespace {

using namespace testing;

const Dtype kDtypes[] = {Dtype::F64, Dtype::F32, Dtype::BF16, Dtype::F16};

// Standard rotary embedding of x[B, H, T, D] with positions pos[b][t] (one row: shared by the batch)
// and inverse frequencies inv (f32 values, as every implementation stores them). The angle is
// formed in f32 as Hugging Face does, unless the data is f64.
Values rope_ref(const Values& x, const Shape& s, const std::vector<std::vector<int64_t>>& pos, const Values& inv,
                bool interleaved, bool f32_angle) {
  int64_t B = s[0], H = s[1], T = s[2], D = s[3], half = int64_t(inv.size());
  Values out = x;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t) {
        const double* src = &x[((b * H + h) * T + t) * D];
        double* dst = &out[((b * H + h) * T + t) * D];
        for (int64_t i = 0; i < half; ++i) {
          double p = double(pos[pos.size() == 1 ? 0 : b][t]);
          double a = f32_angle ? double(float(p) * float(inv[i])) : p * inv[i];
          int64_t i1 = interleaved ? 2 * i : i, i2 = interleaved ? 2 * i + 1 : i + half;
          dst[i1] = src[i1] * std::cos(a) - src[i2] * std::sin(a);
          dst[i2] = src[i2] * std::cos(a) + src[i1] * std::sin(a);
        }
      }
  return out;
}

Values inv_freq_ref(int rd, double theta) {
  Values inv;
  for (int i = 0; i < rd / 2; ++i) inv.push_back(double(float(1.0 / std::pow(theta, double(2 * i) / rd))));
  return inv;
}

// f32: cos/sin of an f32 angle; 16-bit: the result rounded once from f32.
Tol rope_tol(Dtype dt) { return dt == Dtype::F32 ? Tol{1e-5, 1e-5} : dt == Dtype::F64 ? tol_for(dt) : Tol{0.02, 0.02}; }

WICK_DEVICE_SUITE(Rope);

WICK_DEVICE_TEST(Rope, MatchesFloat64) {
  const Shape shape{2, 3, 5, 8};
  for (Dtype dt : kDtypes)
    for (bool interleaved : {false, true})
      for (int rd : {8, 4})
        for (int variant = 0; variant < 3; ++variant) {
          Rand x = rand(shape, dt);
          RopeOptions opt;
          opt.interleaved = interleaved;
          opt.rotary_dim = rd == 8 ? -1 : rd;
          opt.theta = 500.0;
          std::vector<std::vector<int64_t>> pos;
          Tensor y;
          std::string what = str_cat("rope ", dtype_name(dt), interleaved ? " interleaved" : " neox", " rd ", rd);
          if (variant == 0) {  // an offset
            pos = {{7, 8, 9, 10, 11}};
            y = rope(x.t, 7, opt);
            what += " offset";
          } else if (variant == 1) {  // [T] positions
            pos = {{0, 3, 1, 4, 15}};
            y = rope(x.t, ints(pos[0], {5}), opt);
            what += " [T]";
          } else {  // [B, T] positions, i32
            pos = {{2, 3, 4, 5, 6}, {0, 0, 1, 9, 2}};
            std::vector<int64_t> flat;
            for (auto& r : pos) flat.insert(flat.end(), r.begin(), r.end());
            y = rope(noncontiguous(x.v, shape, dt), ints(flat, {2, 5}, Dtype::I32), opt);
            what += " [B,T] of a view";
          }
          Values ref = rope_ref(x.v, shape, pos, inv_freq_ref(rd, 500.0), interleaved, dt != Dtype::F64);
          expect_close(y, ref, shape, rope_tol(dt), what);
          if (variant == 1 && (dt == Dtype::F64 || dt == Dtype::F32)) {
            // The composition forms its angles in f32 whatever the data.
            Values ref32 = rope_ref(x.v, shape, pos, inv_freq_ref(rd, 500.0), interleaved, true);
            expect_close(reference::rope(x.t, ints(pos[0], {5}), opt), ref32, shape, {1e-5, 1e-5}, what + " reference");
          }
        }
}

// A head dim of 64 (rotary 64 or 32) over 17 positions up to 2047, per batch row; and an offset
// applied to a transposed ([B, T, H, D] storage) input.
WICK_DEVICE_TEST(Rope, ModelSizesAndLargePositions) {
  const Shape shape{2, 3, 17, 64};
  std::vector<std::vector<int64_t>> pos = {{0, 5, 9, 100, 2047, 3, 7, 1, 1, 0, 11, 12, 13, 14, 15, 16, 17},
                                           {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4}};
  std::vector<int64_t> flat;
  for (auto& r : pos) flat.insert(flat.end(), r.begin(), r.end());
  for (Dtype dt : kDtypes)
    for (bool interleaved : {false, true})
      for (int rd : {64, 32}) {
        RopeOptions o;
        o.interleaved = interleaved;
        o.rotary_dim = rd == 64 ? -1 : rd;
        Rand x = rand(shape, dt);
        Values inv = inv_freq_ref(rd, 10000.0);
        std::string what = str_cat(dtype_name(dt), interleaved ? " interleaved" : " neox", " rd ", rd);
        Values ref = rope_ref(x.v, shape, pos, inv, interleaved, dt != Dtype::F64);
        Tensor positions = ints(flat, {2, 17});
        expect_close(rope(x.t, positions, o), ref, shape, rope_tol(dt), what);
        Values ref32 = rope_ref(x.v, shape, pos, inv, interleaved, true);
        expect_close(reference::rope(x.t, positions, o), ref32, shape,
                     dt == Dtype::F64 ? Tol{1e-5, 1e-5} : scaled(rope_tol(dt), 2), what + " reference");
        // x stored [B, T, H, D] and seen as [B, H, T, D].
        Rand xt = rand({2, 17, 3, 64}, dt);
        Values xv;
        for (int64_t b = 0; b < 2; ++b)
          for (int64_t h = 0; h < 3; ++h)
            for (int64_t t = 0; t < 17; ++t)
              for (int64_t d = 0; d < 64; ++d) xv.push_back(xt.v[((b * 17 + t) * 3 + h) * 64 + d]);
        std::vector<std::vector<int64_t>> offset(1);
        for (int64_t t = 0; t < 17; ++t) offset[0].push_back(5 + t);
        expect_close(rope(transpose(xt.t, 1, 2), 5, o), rope_ref(xv, shape, offset, inv, interleaved, dt != Dtype::F64),
                     shape, rope_tol(dt), what + " offset 5 of a transposed input");
      }
}

// An odd head dim with partial rotary dims: the values past the rotary dims (an odd count) pass
// through unchanged, also from a view.
WICK_DEVICE_TEST(Rope, OddHeadDim) {
  const Shape shape{2, 3, 4, 7};
  for (Dtype dt : kDtypes)
    for (bool interleaved : {false, true}) {
      Rand x = rand(shape, dt);
      RopeOptions opt;
      opt.interleaved = interleaved;
      opt.rotary_dim = 4;
      std::string what = str_cat("rope head dim 7 ", dtype_name(dt), interleaved ? " interleaved" : " neox");
      Values ref = rope_ref(x.v, shape, {{3, 4, 5, 6}}, inv_freq_ref(4, 10000.0), interleaved, dt != Dtype::F64);
      expect_close(rope(x.t, 3, opt), ref, shape, rope_tol(dt), what);
      expect_close(rope(noncontiguous(x.v, shape, dt), 3, opt), ref, shape, rope_tol(dt), what + " of a view");
    }
}

// Custom inverse frequencies (e.g. Llama 3 scaling) replace theta.
WICK_DEVICE_TEST(Rope, CustomInverseFrequencies) {
  Rand x = rand({1, 2, 3, 4});
  RopeOptions opt;
  opt.inv_freq = make({0.5, 0.125}, {2}, Dtype::F32);
  Values ref = rope_ref(x.v, {1, 2, 3, 4}, {{5, 6, 7}}, {0.5, 0.125}, false, false);
  expect_close(rope(x.t, 5, opt), ref, {1, 2, 3, 4}, "rope with inv_freq");
}

WICK_DEVICE_TEST(Rope, InvFreq) {
  Values ref;
  for (int i = 0; i < 4; ++i) ref.push_back(std::pow(500000.0, -2.0 * i / 8));
  Tensor f = rope_inv_freq(8, 500000.0, device());
  EXPECT_EQ(f.dtype(), Dtype::F32);
  expect_close(f, ref, {4}, "rope_inv_freq");
  Values ref64;
  for (int i = 0; i < 32; ++i) ref64.push_back(std::pow(10000.0, -2.0 * i / 64));
  expect_close(rope_inv_freq(64, 10000.0, device()), ref64, {32}, "rope_inv_freq 64");
  expect_error([&] { rope_inv_freq(7, 10000.0, device()); }, {"rope: rotary_dim must be positive and even, got 7"});
}

WICK_DEVICE_TEST(Rope, Gradients) {
  Rand r = rand({1, 2, 3, 6});
  for (bool inter : {false, true}) {
    RopeOptions opt;
    opt.interleaved = inter;
    opt.rotary_dim = 4;
    check_grads([&](const std::vector<Tensor>& in) { return rope(in[0], 3, opt); }, {r.t}, "rope");
  }
}

WICK_DEVICE_TEST(Rope, GradientsInLowerPrecision) {
  for (Shape shape : {Shape{1, 2, 3, 4}, Shape{2, 3, 7, 32}}) {
    std::vector<Tensor> x64{rand(shape).t};
    for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16})
      check_grads_in(
          dt, [](auto& in) { return rope(in[0], 3); }, x64,
          dt == Dtype::F32   ? 1e-5
          : dt == Dtype::F16 ? 1e-2
                             : 5e-2,
          shape_str(shape));
  }
}

}  // namespace
}  // namespace wick
