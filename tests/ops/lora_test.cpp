// The LoRA ops on every device: lora_delta = scale * (x A^T) B^T and lora_add = base + lora_delta
// (the fused kernel for few rows, two GEMMs for many on the GPU), against float64 loops and their
// wick::reference compositions; lora_add's buffer hand-over; keyed dropout on the input; gradients
// against finite differences and, in lower precisions, against the float64 gradients.
#include "support/testing.h"

namespace wick {
namespace {

using namespace testing;

// scale * (x A^T) B^T (+ base) for x[rows, in], A[r, in], B[out, r], in float64.
Values lora_ref(const Values& x, const Values& a, const Values& b, int64_t rows, int64_t in, int64_t r, int64_t out,
                double scale, const Values* base = nullptr) {
  Values y;
  for (int64_t m = 0; m < rows; ++m) {
    Values xa(r, 0.0);
    for (int64_t k = 0; k < r; ++k)
      for (int64_t i = 0; i < in; ++i) xa[k] += x[m * in + i] * a[k * in + i];
    for (int64_t o = 0; o < out; ++o) {
      double acc = 0;
      for (int64_t k = 0; k < r; ++k) acc += xa[k] * b[o * r + k];
      y.push_back(scale * acc + (base ? (*base)[m * out + o] : 0.0));
    }
  }
  return y;
}

// x A^T is rounded to the data type before the second product (as PEFT's lora_A output is): in
// 16-bit dtypes the error scales with the terms, not the result.
Tol lora_tol(Dtype dt, int64_t in) {
  if (dt == Dtype::BF16) return {0.05, 0.02};
  if (dt == Dtype::F16) return {0.01, 0.01};
  if (dt == Dtype::F32) return {1e-6 * double(in), 1e-5};
  return tol_for(dt);
}

WICK_DEVICE_SUITE(Lora);

WICK_DEVICE_TEST(Lora, DeltaMatchesFloat64) {
  const int64_t in = 7, r = 4, out = 5;
  for (Dtype dt : {Dtype::F64, Dtype::F32, Dtype::BF16, Dtype::F16})
    for (Shape sx : {Shape{2, 3, in}, Shape{in}, Shape{1, in}, Shape{0, in}}) {
      Rand x = rand(sx, dt), a = rand({r, in}, dt), b = rand({out, r}, dt);
      Values ref = lora_ref(x.v, a.v, b.v, numel(sx) / in, in, r, out, 0.5);
      Shape so = sx;
      so.back() = out;
      std::string what = str_cat("lora_delta ", dtype_name(dt), " ", shape_str(sx));
      Tol tol = lora_tol(dt, in);
      expect_close(lora_delta(x.t, a.t, b.t, 0.5), ref, so, tol, what);
      expect_close(lora_delta(noncontiguous(x.v, sx, dt, 1), noncontiguous(a.v, {r, in}, dt),
                              noncontiguous(b.v, {out, r}, dt, 1), 0.5),
                   ref, so, tol, what + " of views");
      expect_close(reference::lora_delta(x.t, a.t, b.t, 0.5), ref, so, tol, what + " reference");
    }
}

// 51 rows: the GPU's fused kernel; 120 rows: its two GEMMs. Ranks up to past one warp.
WICK_DEVICE_TEST(Lora, DeltaAtModelSizes) {
  const int64_t in = 96, out = 65;
  for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16})
    for (int64_t rows : {17, 40})
      for (int64_t r : {1, 8, 16, 33}) {
        Rand x = rand({3, rows, in}, dt), a = rand({r, in}, dt, -0.2, 0.2), b = rand({out, r}, dt, -0.2, 0.2);
        Values ref = lora_ref(x.v, a.v, b.v, 3 * rows, in, r, out, 2.0);
        std::string what = str_cat(dtype_name(dt), " rows ", 3 * rows, " rank ", r);
        Tol tol = lora_tol(dt, in);
        expect_close(lora_delta(x.t, a.t, b.t, 2.0), ref, {3, rows, out}, tol, what);
        expect_close(reference::lora_delta(x.t, a.t, b.t, 2.0), ref, {3, rows, out}, tol, what + " reference");
      }
}

// lora_add: values against float64, and the buffer hand-over: taken when the call holds the only
// reference, never when someone else can still read base (then base keeps its values).
WICK_DEVICE_TEST(Lora, AddMatchesFloat64AndTakesOnlyAFreeBase) {
  struct Case {
    int64_t rows, in, r, out;
    double lo, hi;  // of A and B
  };
  for (Case c : {Case{6, 7, 4, 5, -2, 2}, Case{51, 96, 8, 65, -0.2, 0.2}, Case{120, 96, 8, 65, -0.2, 0.2}})
    for (Dtype dt : {Dtype::F64, Dtype::F32, Dtype::BF16, Dtype::F16}) {
      Shape sx{3, c.rows / 3, c.in}, so{3, c.rows / 3, c.out};
      Rand x = rand(sx, dt), a = rand({c.r, c.in}, dt, c.lo, c.hi), b = rand({c.out, c.r}, dt, c.lo, c.hi);
      Rand base = rand(so, dt);
      Values ref = lora_ref(x.v, a.v, b.v, c.rows, c.in, c.r, c.out, 0.5, &base.v);
      // The sum rounds once more in 16-bit dtypes.
      Tol tol = dt == Dtype::BF16 ? Tol{0.05, 0.03} : lora_tol(dt, c.in);
      std::string what = str_cat("lora_add ", dtype_name(dt), " rows ", c.rows);
      // base still held here: not taken, and its values stay as they were.
      expect_close(lora_add(base.t, x.t, a.t, b.t, 0.5), ref, so, tol, what);
      expect_close(base.t, base.v, so, Tol{0, 0}, what + ": a base someone holds was written");
      // Handed over: the result lives in base's buffer.
      Tensor own = (base.t + 0.0).eval();  // a fresh buffer only this test holds
      const void* buffer = own.data_ptr();
      Tensor sum = lora_add(std::move(own), x.t, a.t, b.t, 0.5);
      expect_close(sum, ref, so, tol, what + " in place");
      EXPECT_EQ(sum.data_ptr(), buffer) << what << ": the base's buffer was not reused";
      expect_close(reference::lora_add(base.t, x.t, a.t, b.t, 0.5), ref, so, tol, what + " reference");
    }
}

WICK_DEVICE_TEST(Lora, Gradients) {
  Rand x = rand({3, 2, 5}), a = rand({2, 5}), b = rand({4, 2}), base = rand({3, 2, 4});
  check_grads([](const std::vector<Tensor>& in) { return lora_delta(in[0], in[1], in[2], 2.0); }, {x.t, a.t, b.t},
              "lora_delta");
  check_grads([](const std::vector<Tensor>& in) { return lora_delta(in[0], in[1], in[2], 2.0); },
              {transpose(x.t, 0, 1), a.t, b.t}, "lora_delta of a view");
  check_grads([](const std::vector<Tensor>& in) { return lora_add(in[3], in[0], in[1], in[2], 2.0); },
              {x.t, a.t, b.t, base.t}, "lora_add");
  // Inside a gradient computation, a matmul's output is taken over (its gradient does not read it)
  // and the gradients still match the composition.
  Rand w = rand({4, 5});
  auto fused = [&](const std::vector<Tensor>& in) {
    Tensor y = matmul(in[0], transpose(w.t, 0, 1));
    return lora_add(std::move(y), in[0], in[1], in[2], 2.0);
  };
  check_grads(fused, {x.t, a.t, b.t}, "lora_add over a matmul");
}

// At model sizes (fused kernel and GEMMs) the gradients in f32 and 16 bits against float64.
WICK_DEVICE_TEST(Lora, GradientsInLowerPrecision) {
  for (int64_t rows : {17, 40}) {
    std::vector<Tensor> in{rand({3, rows, 96}).t, rand({8, 96}, Dtype::F64, -0.2, 0.2).t,
                           rand({65, 8}, Dtype::F64, -0.2, 0.2).t, rand({3, rows, 65}).t};
    for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16}) {
      double rel = dt == Dtype::F32 ? 1e-5 : dt == Dtype::F16 ? 1e-2 : 5e-2;
      check_grads_in(
          dt, [](auto& v) { return lora_delta(v[0], v[1], v[2], 2.0); }, {in[0], in[1], in[2]}, rel,
          str_cat("lora_delta rows ", 3 * rows));
      check_grads_in(
          dt, [](auto& v) { return lora_add(v[3], v[0], v[1], v[2], 2.0); }, in, rel,
          str_cat("lora_add rows ", 3 * rows));
    }
  }
}

// LoRA dropout (training): the keyed mask on the input of A, forward against float64 with the same
// mask, and the gradients through it.
WICK_DEVICE_TEST(Lora, DeltaWithKeyedDropout) {
  RandomKey key = fold_in(RandomKey{21}, 4);
  const Shape sx{3, 17, 97};
  Values keep = values(bernoulli(sx, 0.85, key, device()));
  for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16}) {
    Rand x = rand(sx, dt), a = rand({8, 97}, dt, -0.2, 0.2), b = rand({65, 8}, dt, -0.2, 0.2);
    // The dropped input as the op forms it: x * mask / 0.85, rounded to the dtype.
    Tensor dropped = dropout(x.t, 0.15, key);
    Values dv = values(dropped);
    // Rounded once: half an ulp, or half the spacing of f16's subnormals (2^-25) below its normals.
    double floor = dt == Dtype::F16 ? std::ldexp(1.0, -25) : 0.0;
    for (size_t i = 0; i < dv.size(); ++i)
      ASSERT_NEAR(dv[i], keep[i] ? x.v[i] / 0.85 : 0.0, tol_for(dt).rtol * std::abs(x.v[i] / 0.85) + floor) << i;
    Values ref = lora_ref(dv, a.v, b.v, 3 * 17, 97, 8, 65, 2.0);
    expect_close(lora_delta(dropout(x.t, 0.15, key), a.t, b.t, 2.0), ref, {3, 17, 65}, lora_tol(dt, 97),
                 str_cat("lora_delta of dropped x ", dtype_name(dt)));
  }
  auto f = [key](auto& in) { return lora_delta(dropout(in[0], 0.15, key), in[1], in[2], 2.0); };
  check_grads(f, {rand({2, 3, 6}).t, rand({2, 6}).t, rand({4, 2}).t}, "through keyed dropout");
  std::vector<Tensor> big{rand(sx).t, rand({8, 97}, Dtype::F64, -0.2, 0.2).t, rand({65, 8}, Dtype::F64, -0.2, 0.2).t};
  check_grads_in(Dtype::F32, f, big, 1e-5, "through keyed dropout");
}

WICK_DEVICE_TEST(Lora, BadShapesAreNamed) {
  auto z = [&](const Shape& s) { return zeros(s, Dtype::F32, device()); };
  expect_error(
      [&] {
        lora_delta(z({2, 5}), z({3, 4}), z({6, 3}), 1.0);
      },
      {"lora_delta: expected x[..., in], A[r, in], B[out, r], got [2,5], [3,4], [6,3]"});
  expect_error([&] { lora_delta(z({2, 5}), z({200, 5}), z({6, 200}), 1.0); }, {"lora_delta", "rank 200"});
  expect_error(
      [&] {
        lora_add(z({2, 7}), z({2, 5}), z({3, 5}), z({6, 3}), 1.0);
      },
      {"lora_add: base [2,7] does not match the update [2,6]"});
}

}  // namespace
}  // namespace wick
