// Elementwise ops on every device: dtype conversion (against an independent round-to-nearest-even
// reference for bf16/f16), unary and binary ops with broadcasting, promotion and views (odd sizes,
// transposed and stepped), integer ops, against float64 loops; gradients against finite differences
// and, in 16-bit dtypes, against the float64 gradients of the rounded inputs.
#include <bit>
#include <cmath>
#include <limits>

#include "support/testing.h"

namespace wick {
namespace {

using namespace testing;

const Dtype kFloatDtypes[] = {Dtype::F64, Dtype::F32, Dtype::BF16, Dtype::F16};
const Dtype kAllDtypes[] = {Dtype::Bool, Dtype::U8,   Dtype::I32, Dtype::I64,
                            Dtype::F16,  Dtype::BF16, Dtype::F32, Dtype::F64};

WICK_DEVICE_SUITE(Elementwise);

// ---------------------------------------------------------------- astype
// Round-to-nearest-even of x to a binary float with `mant` explicit mantissa bits, minimum normal
// exponent `emin` and largest finite value `maxv` (written independently of the engine's half types).
double round_float(double x, int mant, int emin, double maxv) {
  if (std::isnan(x) || x == 0) return x;
  int e;
  std::frexp(std::abs(x), &e);  // |x| = m * 2^e, m in [0.5, 1)
  e = std::max(e - 1, emin);
  double quantum = std::ldexp(1.0, e - mant);
  double r = std::nearbyint(x / quantum) * quantum;  // default rounding: to nearest, ties to even
  if (std::abs(r) > maxv) return std::copysign(INFINITY, x);
  return r;
}
double round_bf16(double x) { return round_float(x, 7, -126, std::ldexp(255.0, 120)); }
double round_f16(double x) { return round_float(x, 10, -14, 65504.0); }

double convert_ref(double x, Dtype to) {
  switch (to) {
    case Dtype::Bool:
      return x != 0 ? 1 : 0;
    case Dtype::U8:
    case Dtype::I32:
    case Dtype::I64:
      return std::trunc(x);
    case Dtype::F16:
      return round_f16(x);
    case Dtype::BF16:
      return round_bf16(x);
    case Dtype::F32:
      return double(float(x));
    case Dtype::F64:
      return x;
  }
  return NAN;
}

WICK_DEVICE_TEST(Elementwise, CastBetweenAllDtypes) {
  // Non-negative values below 200 fit every dtype; fractions exercise truncation and rounding.
  Values v = random_values(37, 0, 200);
  v[0] = 0;
  v[1] = 1;
  for (double& x : v) x = double(float(x));  // exact in f32, so f64->16-bit is one rounding
  for (Dtype from : kAllDtypes) {
    Tensor src = make(v, {37}, Dtype::F64);
    if (from != Dtype::F64) src = astype(src, from);
    Values sv = values(src);
    for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(sv[i], convert_ref(v[i], from)) << dtype_name(from);
    // The same values as a [37, 3] matrix seen transposed.
    Tensor wide = transpose(concat({unsqueeze(src, 0), unsqueeze(src, 0), unsqueeze(src, 0)}, 0), 0, 1);
    for (Dtype to : kAllDtypes) {
      Values ref(sv.size());
      for (size_t i = 0; i < sv.size(); ++i) ref[i] = convert_ref(sv[i], to);
      std::string what = str_cat(dtype_name(from), "->", dtype_name(to));
      Tensor out = astype(src, to);
      EXPECT_EQ(out.dtype(), to);
      expect_close(out, ref, {37}, Tol{0, 0}, what);
      // Non-contiguous sources take the strided path.
      Tensor nc = slice(astype(make(v, {37}, Dtype::F64), from), 0, 1, 37, 3);
      Values nref;
      for (size_t i = 1; i < sv.size(); i += 3) nref.push_back(convert_ref(sv[i], to));
      expect_close(astype(nc, to), nref, {12}, Tol{0, 0}, what + " strided");
      Values tref;
      for (double x : ref) tref.insert(tref.end(), {x, x, x});
      expect_close(astype(wide, to), tref, {37, 3}, Tol{0, 0}, what + " transposed");
    }
  }
}

WICK_DEVICE_TEST(Elementwise, CastSignedValues) {
  Values v = random_values(20, -100, 100);
  for (Dtype to : {Dtype::I32, Dtype::I64, Dtype::F32, Dtype::BF16, Dtype::F16, Dtype::Bool}) {
    Values ref;
    for (double x : v) ref.push_back(convert_ref(x, to));
    expect_close(astype(make(v, {20}), to), ref, {20}, Tol{0, 0}, dtype_name(to));
  }
}

WICK_DEVICE_TEST(Elementwise, CastHalfRoundingTiesAndLimits) {
  const double tiny = std::ldexp(1.0, -24);  // the smallest f16 subnormal
  Values v = {1 + std::ldexp(1.0, -8),
              1 + 3 * std::ldexp(1.0, -8),
              1 + std::ldexp(1.0, -11),
              1 + 3 * std::ldexp(1.0, -11),
              -(1 + std::ldexp(1.0, -9)),
              65504,
              65519,
              65520,
              -70000,
              tiny / 2,
              tiny * 1.5,
              tiny * 2.5,
              std::ldexp(1.0, -130),
              3.0e38,
              INFINITY,
              -INFINITY,
              NAN,
              1.0 / 3,
              std::ldexp(1.0, -14) * 1.0009765625};
  Tensor src = astype(make(v, {int64_t(v.size())}), Dtype::F32);
  Values sv = values(src);
  for (Dtype to : {Dtype::BF16, Dtype::F16}) {
    Values ref;
    for (double x : sv) ref.push_back(convert_ref(x, to));
    expect_close(astype(src, to), ref, src.shape(), Tol{0, 0}, dtype_name(to));
  }
}

WICK_DEVICE_TEST(Elementwise, CastHalfRoundingFuzz) {
  // Random f32 bit patterns over the whole half range (subnormals to overflow), both signs.
  std::uniform_int_distribution<uint32_t> mantissa(0, (1u << 23) - 1), exponent(127 - 30, 127 + 17);
  std::vector<float> v(20000);
  for (float& x : v) {
    uint32_t bits = (exponent(rng()) << 23) | mantissa(rng()) | (mantissa(rng()) & 1u) << 31;
    x = std::bit_cast<float>(bits);
  }
  Tensor src = here(Tensor::from_vector(v, {int64_t(v.size())}, Device::cpu()));
  for (Dtype to : {Dtype::BF16, Dtype::F16}) {
    Values ref;
    for (float x : v) ref.push_back(convert_ref(x, to));
    expect_close(astype(src, to), ref, src.shape(), Tol{0, 0}, str_cat("f32 -> ", dtype_name(to)));
    // And back: every 16-bit value is exact in f32 and f64.
    expect_close(astype(astype(astype(src, to), Dtype::F64), Dtype::F32), ref, src.shape(), Tol{0, 0},
                 str_cat(dtype_name(to), " round trip"));
  }
}

WICK_DEVICE_TEST(Elementwise, ToDeviceAndStopGradient) {
  Rand x = rand({2, 3}, Dtype::F32);
  EXPECT_TRUE(to_device(x.t, device()).same(x.t));  // already there
  Tensor s = stop_gradient(x.t);
  EXPECT_EQ(s.data_ptr(), x.t.data_ptr());  // same data, no copy
  expect_close(s, x.v, {2, 3}, Tol{0, 0});
  // A round trip through the other device keeps every value.
  Device other = on_cuda() ? Device::cpu() : device();
  expect_close(here(to_device(x.t, other)), x.v, {2, 3}, Tol{0, 0}, "round trip");
}

// ---------------------------------------------------------------- unary
struct UnaryCase {
  const char* name;
  Tensor (*op)(const Tensor&);
  double (*ref)(double);
  double lo, hi;
};

double sigmoid_ref(double x) { return 1 / (1 + std::exp(-x)); }
const UnaryCase kUnary[] = {
    {"neg", neg, [](double x) { return -x; }, -3, 3},
    {"exp", exp, [](double x) { return std::exp(x); }, -3, 3},
    {"log", log, [](double x) { return std::log(x); }, 0.1, 5},
    {"sqrt", sqrt, [](double x) { return std::sqrt(x); }, 0.1, 5},
    {"rsqrt", rsqrt, [](double x) { return 1 / std::sqrt(x); }, 0.1, 5},
    {"abs", abs, [](double x) { return std::abs(x); }, -3, 3},
    {"tanh", tanh, [](double x) { return std::tanh(x); }, -3, 3},
    {"sin", sin, [](double x) { return std::sin(x); }, -3, 3},
    {"cos", cos, [](double x) { return std::cos(x); }, -3, 3},
    {"erf", erf, [](double x) { return std::erf(x); }, -3, 3},
    {"sigmoid", sigmoid, sigmoid_ref, -6, 6},
    {"silu", silu, [](double x) { return x * sigmoid_ref(x); }, -6, 6},
    {"relu", relu, [](double x) { return x > 0 ? x : 0; }, -3, 3},
    {"gelu", gelu, [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }, -4, 4},
    {"gelu_tanh", gelu_tanh,
     [](double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }, -4, 4},
    {"square", square, [](double x) { return x * x; }, -3, 3},
};

WICK_DEVICE_TEST(Elementwise, UnaryMatchesFloat64) {
  // Odd sizes up to 3000 elements cover the vectorised kernels' tails.
  for (const UnaryCase& c : kUnary)
    for (Dtype dt : kFloatDtypes)
      for (Shape shape :
           {Shape{}, Shape{7}, Shape{3, 5, 2}, Shape{0, 3}, Shape{3, 33}, Shape{3, 129}, Shape{3, 1000}}) {
        Rand x = rand(shape, dt, c.lo, c.hi);
        Values ref;
        for (double v : x.v) ref.push_back(c.ref(v));
        std::string what = str_cat(c.name, " ", dtype_name(dt), " ", shape_str(shape));
        Tensor y = c.op(x.t);
        EXPECT_EQ(y.dtype(), dt) << what;
        // Transcendental functions in f32 may be a few ulp off; 16-bit results are rounded once.
        Tol tol = tol_for(dt);
        expect_close(y, ref, shape, tol, what);
        if (shape.size() >= 2)
          expect_close(c.op(noncontiguous(x.v, shape, dt, 0)), ref, shape, tol, what + " permuted");
        expect_close(c.op(noncontiguous(x.v, shape, dt, 1)), ref, shape, tol, what + " strided");
      }
}

// GELU (erf form) in f32 over a wide range and its tails, within a few ulp of float64 (the CPU's
// vectorised loop forms erf itself); below -7, where |GELU| < 1e-11, within 1e-12.
WICK_DEVICE_TEST(Elementwise, GeluMatchesFloat64OverItsRange) {
  Values v = random_values(4001, -12, 12);
  for (double x : {0.0, -0.0, 1e-30, -1e-30, 0.5, -0.5, 3.0, -3.0, 9.0, -9.0, 13.0, -13.0, 40.0, -40.0}) v.push_back(x);
  Tensor x = make(v, {int64_t(v.size())}, Dtype::F32);
  Values xs = values(x), ref;
  for (double a : xs) ref.push_back(0.5 * a * (1 + std::erf(a / std::sqrt(2.0))));
  expect_close(gelu(x), ref, x.shape(), Tol{1e-6, 2e-6}, "gelu f32 over [-12, 12]");
  Tensor odd = slice(x, 0, 3, 3004);  // an offset view, an odd count
  expect_close(gelu(odd), Values(ref.begin() + 3, ref.begin() + 3004), odd.shape(), Tol{1e-6, 2e-6}, "gelu f32 of a view");
}

WICK_DEVICE_TEST(Elementwise, UnaryOfBroadcastInputs) {
  // Zero strides: every output element reads one of a few inputs.
  for (const UnaryCase& c : kUnary) {
    Rand x = rand({1, 5, 1}, Dtype::F32, c.lo, c.hi);
    Values ref;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 5; ++j)
        for (int k = 0; k < 2; ++k) ref.push_back(c.ref(x.v[j]));
    expect_close(c.op(broadcast_to(x.t, {3, 5, 2})), ref, {3, 5, 2}, str_cat(c.name, " of a broadcast"));
  }
}

WICK_DEVICE_TEST(Elementwise, UnaryIntegerInputs) {
  Tensor x = make({-3, 0, 2, 7}, {4}, Dtype::I32);
  EXPECT_EQ(neg(x).dtype(), Dtype::I32);
  expect_close(neg(x), {3, 0, -2, -7}, {4}, Tol{0, 0});
  expect_close(abs(x), {3, 0, 2, 7}, {4}, Tol{0, 0});
  expect_close(relu(x), {0, 0, 2, 7}, {4}, Tol{0, 0});
  expect_close(square(x), {9, 0, 4, 49}, {4}, Tol{0, 0});
  // Floating-only functions promote integers to f32.
  Tensor e = exp(x);
  EXPECT_EQ(e.dtype(), Dtype::F32);
  expect_close(e, {std::exp(-3.0), 1, std::exp(2.0), std::exp(7.0)}, {4});
}

WICK_DEVICE_TEST(Elementwise, IntegerArithmeticIsExact) {
  for (Dtype dt : {Dtype::I32, Dtype::I64, Dtype::U8}) {
    // Non-negative values whose products u8 holds, b >= 1 for the division.
    Values va = random_values(4 * 33, 0, 16), vb = random_values(4 * 33, 1, 16);
    for (double& x : va) x = std::floor(x);
    for (double& x : vb) x = std::floor(x);
    Tensor a = make(va, {4, 33}, dt), b = make(vb, {4, 33}, dt);
    auto ref = [&](auto f) {
      Values r;
      for (size_t i = 0; i < va.size(); ++i) r.push_back(f(va[i], vb[i]));
      return r;
    };
    std::string what = dtype_name(dt);
    expect_close(a + b, ref([](double p, double q) { return p + q; }), {4, 33}, Tol{0, 0}, what + " add");
    expect_close(a * b, ref([](double p, double q) { return p * q; }), {4, 33}, Tol{0, 0}, what + " mul");
    Tensor q = div(a, b);
    EXPECT_TRUE(is_floating(q.dtype())) << what;
    expect_close(q, ref([](double p, double r) { return p / r; }), {4, 33}, what + " true division");
    expect_close(lt(a, b), ref([](double p, double r) { return double(p < r); }), {4, 33}, Tol{0, 0}, what + " lt");
    expect_close(abs(a), va, {4, 33}, Tol{0, 0}, what + " abs");
    Values mref;
    for (int j = 0; j < 33; ++j)
      for (int i = 0; i < 4; ++i) mref.push_back(std::max(va[i * 33 + j], vb[i * 33 + j]));
    expect_close(maximum(transpose(a, 0, 1), transpose(b, 0, 1)), mref, {33, 4}, Tol{0, 0}, what + " maximum of views");
  }
}

WICK_DEVICE_TEST(Elementwise, UnaryGradients) {
  for (const UnaryCase& c : kUnary) {
    Rand x = rand({3, 4}, Dtype::F64, c.lo, c.hi);
    check_grads([&](const std::vector<Tensor>& in) { return c.op(in[0]); }, {x.t}, c.name);
  }
}

// ---------------------------------------------------------------- binary
struct BinaryCase {
  const char* name;
  Tensor (*op)(const Tensor&, const Tensor&);
  double (*ref)(double, double);
  bool positive_a;
};
const BinaryCase kBinary[] = {
    {"add", add, [](double a, double b) { return a + b; }, false},
    {"sub", sub, [](double a, double b) { return a - b; }, false},
    {"mul", mul, [](double a, double b) { return a * b; }, false},
    {"div", div, [](double a, double b) { return a / b; }, false},
    {"pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); },
     [](double a, double b) { return std::pow(a, b); }, true},
    {"maximum", maximum, [](double a, double b) { return std::max(a, b); }, false},
    {"minimum", minimum, [](double a, double b) { return std::min(a, b); }, false},
};
const BinaryCase kCompare[] = {
    {"eq", eq, [](double a, double b) { return double(a == b); }, false},
    {"ne", ne, [](double a, double b) { return double(a != b); }, false},
    {"lt", lt, [](double a, double b) { return double(a < b); }, false},
    {"le", le, [](double a, double b) { return double(a <= b); }, false},
    {"gt", gt, [](double a, double b) { return double(a > b); }, false},
    {"ge", ge, [](double a, double b) { return double(a >= b); }, false},
};

const std::pair<Shape, Shape> kBroadcastPairs[] = {{{7}, {7}},        {{3, 1, 5}, {4, 5}}, {{}, {2, 3}},
                                                   {{2, 3}, {}},      {{5, 1}, {1, 6}},    {{2, 1, 3}, {2, 4, 1}},
                                                   {{0, 3}, {1, 3}},  {{5, 129}, {129}},   {{5, 1}, {5, 1000}},
                                                   {{33, 7}, {33, 7}}};

Values broadcast_ref(const Values& a, const Shape& sa, const Values& b, const Shape& sb, double (*f)(double, double),
                     Shape& out_shape) {
  out_shape = broadcast_shapes(sa, sb, "test");
  Values out(numel(out_shape));
  for (int64_t i = 0; i < numel(out_shape); ++i) {
    auto idx = unravel(i, out_shape);
    out[i] = f(a[ravel_broadcast(idx, sa)], b[ravel_broadcast(idx, sb)]);
  }
  return out;
}

WICK_DEVICE_TEST(Elementwise, BinaryBroadcastingMatchesFloat64) {
  for (const BinaryCase& c : kBinary)
    for (Dtype dt : kFloatDtypes)
      for (const auto& [sa, sb] : kBroadcastPairs) {
        Rand a = rand(sa, dt, c.positive_a ? 0.2 : -2, 2);
        Rand b = rand(sb, dt, c.positive_a ? -2 : 0.5, 2);  // b away from 0 for div
        Shape so;
        Values ref = broadcast_ref(a.v, sa, b.v, sb, c.ref, so);
        std::string what = str_cat(c.name, " ", dtype_name(dt), " ", shape_str(sa), " ", shape_str(sb));
        Tensor y = c.op(a.t, b.t);
        EXPECT_EQ(y.dtype(), dt) << what;
        expect_close(y, ref, so, what);
        if (sa.size() >= 2) expect_close(c.op(noncontiguous(a.v, sa, dt), b.t), ref, so, what + " permuted a");
        expect_close(c.op(a.t, noncontiguous(b.v, sb, dt, 1)), ref, so, what + " strided b");
      }
}

// Dense operands take 16-byte loads on CUDA (8 bf16/f16 or 4 f32 values) and a tail one value at a
// time; a view starting one element in is not 16-byte aligned and takes the strided kernel.
WICK_DEVICE_TEST(Elementwise, DenseOperandsOfOddLengthsAndOffsets) {
  for (Dtype dt : kFloatDtypes)
    for (int64_t n : {1, 8, 9, 15, 1003, 4101})
      for (int64_t skip : {0, 1}) {
        Rand a = rand({n + skip}, dt, -2, 2), b = rand({n + skip}, dt, 0.5, 2);
        Tensor ta = narrow(a.t, 0, skip, n), tb = narrow(b.t, 0, skip, n);
        Values sum_ref, prod_ref, exp_ref;
        for (int64_t i = skip; i < n + skip; ++i) {
          sum_ref.push_back(a.v[size_t(i)] + b.v[size_t(i)]);
          prod_ref.push_back(a.v[size_t(i)] * b.v[size_t(i)]);
          exp_ref.push_back(std::exp(a.v[size_t(i)]));
        }
        std::string what = str_cat(dtype_name(dt), " n ", n, " skip ", skip);
        expect_close(ta + tb, sum_ref, {n}, tol_for(dt), what + " add");
        expect_close(ta * tb, prod_ref, {n}, tol_for(dt), what + " mul");
        expect_close(exp(ta), exp_ref, {n}, tol_for(dt), what + " exp");
      }
}

WICK_DEVICE_TEST(Elementwise, Comparisons) {
  for (const BinaryCase& c : kCompare)
    for (Dtype dt : {Dtype::F32, Dtype::I32, Dtype::BF16, Dtype::F64, Dtype::F16})
      for (const auto& [sa, sb] : kBroadcastPairs) {
        // Small integers give plenty of ties.
        Values va = random_values(numel(sa), -2, 2), vb = random_values(numel(sb), -2, 2);
        for (double& x : va) x = std::round(x);
        for (double& x : vb) x = std::round(x);
        Shape so;
        Values ref = broadcast_ref(va, sa, vb, sb, c.ref, so);
        Tensor y = c.op(make(va, sa, dt), make(vb, sb, dt));
        EXPECT_EQ(y.dtype(), Dtype::Bool);
        std::string what = str_cat(c.name, " ", dtype_name(dt), " ", shape_str(sa), " ", shape_str(sb));
        expect_close(y, ref, so, Tol{0, 0}, what);
        if (sa.size() >= 2)
          expect_close(c.op(noncontiguous(va, sa, dt), make(vb, sb, dt)), ref, so, Tol{0, 0}, what + " permuted a");
      }
}

WICK_DEVICE_TEST(Elementwise, MaximumMinimumPropagateNaN) {
  Tensor a = make({NAN, 1, 2}, {3}, Dtype::F32);
  Tensor b = make({0, NAN, 1}, {3}, Dtype::F32);
  expect_close(maximum(a, b), {NAN, NAN, 2}, {3});
  expect_close(minimum(a, b), {NAN, NAN, 1}, {3});
}

WICK_DEVICE_TEST(Elementwise, DtypePromotion) {
  struct Case {
    Dtype a, b, out;
  };
  for (Case c : {Case{Dtype::F32, Dtype::F64, Dtype::F64}, Case{Dtype::I32, Dtype::F32, Dtype::F32},
                 Case{Dtype::BF16, Dtype::F16, Dtype::F32}, Case{Dtype::I32, Dtype::I64, Dtype::I64},
                 Case{Dtype::Bool, Dtype::I32, Dtype::I32}, Case{Dtype::U8, Dtype::BF16, Dtype::BF16},
                 Case{Dtype::I64, Dtype::F16, Dtype::F16}}) {
    Values va = {1, 2, 3}, vb = {1, 0, 2};
    Tensor y = add(make(va, {3}, c.a), make(vb, {3}, c.b));
    EXPECT_EQ(y.dtype(), c.out) << dtype_name(c.a) << "+" << dtype_name(c.b);
    Values ref;
    for (int i = 0; i < 3; ++i) ref.push_back(convert_ref(va[i], c.a) + vb[i]);
    expect_close(y, ref, {3}, Tol{0, 0}, str_cat(dtype_name(c.a), "+", dtype_name(c.b)));
  }
  // Promotion and broadcasting together, from a non-contiguous operand.
  Rand a = rand({3, 1}, Dtype::F32), b = rand({4}, Dtype::BF16);
  Tensor y = sub(a.t, noncontiguous(b.v, {4}, Dtype::BF16, 1));
  EXPECT_EQ(y.dtype(), Dtype::F32);
  Values ref;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j) ref.push_back(a.v[i] - b.v[j]);
  expect_close(y, ref, {3, 4}, "f32 [3,1] - bf16 [4]");
  // Integer division is true division.
  Tensor q = div(make({7, -7, 1}, {3}, Dtype::I32), make({2, 2, 3}, {3}, Dtype::I64));
  EXPECT_TRUE(is_floating(q.dtype()));
  expect_close(q, {3.5, -3.5, 1.0 / 3}, {3});
}

WICK_DEVICE_TEST(Elementwise, Where) {
  for (Dtype dt : {Dtype::F32, Dtype::F64, Dtype::I64, Dtype::BF16, Dtype::F16}) {
    Shape sc{3, 1}, sa{1, 4}, sb{};
    Values vc = {1, 0, 1}, va = random_values(4), vb = {0.5};
    if (!is_floating(dt)) {
      for (double& x : va) x = std::round(x * 10);
      vb = {-9};
    }
    Tensor c = make(vc, sc, Dtype::Bool);
    Tensor y = where(c, make(va, sa, dt), make(vb, sb, dt));
    Values ref;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 4; ++j) ref.push_back(vc[i] ? va[j] : vb[0]);
    expect_close(y, values(testing::make(ref, {3, 4}, dt)), {3, 4}, Tol{0, 0}, dtype_name(dt));
  }
  // A condition computed from the operands, with a broadcast row.
  Rand a = rand({5, 33}, Dtype::F32), b = rand({5, 33}, Dtype::F32), row = rand({33}, Dtype::F32);
  Values ref;
  for (int i = 0; i < 5 * 33; ++i) ref.push_back(a.v[i] > b.v[i] ? a.v[i] : row.v[i % 33]);
  expect_close(where(gt(a.t, b.t), a.t, row.t), ref, {5, 33}, Tol{0, 0}, "where(a > b, a, row)");
  // Mixed dtypes are promoted.
  Tensor y = where(make({1, 0}, {2}, Dtype::Bool), make({1, 2}, {2}, Dtype::I32), make({0.5, 0.25}, {2}, Dtype::F32));
  EXPECT_EQ(y.dtype(), Dtype::F32);
  expect_close(y, {1, 0.25}, {2});
}

WICK_DEVICE_TEST(Elementwise, ScalarOperators) {
  Rand x = rand({2, 3}, Dtype::F32);
  auto ref = [&](auto f) {
    Values r;
    for (double v : x.v) r.push_back(f(v));
    return r;
  };
  expect_close(x.t + 2.5, ref([](double v) { return v + 2.5; }), {2, 3});
  expect_close(2.5 - x.t, ref([](double v) { return 2.5 - v; }), {2, 3});
  expect_close(x.t - 1, ref([](double v) { return v - 1; }), {2, 3});
  expect_close(x.t * 3, ref([](double v) { return v * 3; }), {2, 3});
  expect_close(-3.0 * x.t, ref([](double v) { return -3 * v; }), {2, 3});
  expect_close(x.t / 4, ref([](double v) { return v / 4; }), {2, 3});
  expect_close(1.0 / x.t, ref([](double v) { return 1 / v; }), {2, 3});
  expect_close(-x.t, ref([](double v) { return -v; }), {2, 3});
  expect_close(pow(abs(x.t), 1.5), ref([](double v) { return std::pow(std::abs(v), 1.5); }), {2, 3});
  EXPECT_EQ((x.t * 2.0).dtype(), Dtype::F32);
  Tensor b = make({1, 2}, {2}, Dtype::BF16);
  EXPECT_EQ((b + 1.0).dtype(), Dtype::BF16);
  // An integer tensor keeps its dtype for whole numbers and goes to f32 for fractions.
  Tensor i = make({1, 2, 3}, {3}, Dtype::I32);
  EXPECT_EQ((i * 2).dtype(), Dtype::I32);
  expect_close(i * 2, {2, 4, 6}, {3}, Tol{0, 0});
  EXPECT_EQ((i + 0.5).dtype(), Dtype::F32);
  expect_close(i + 0.5, {1.5, 2.5, 3.5}, {3});
  expect_close(i / 2, {0.5, 1, 1.5}, {3});
  // A bool tensor against a number computes in i64 (whole) or f32 (fractional), as in torch.
  Tensor m = make({1, 0, 1}, {3}, Dtype::Bool);
  EXPECT_EQ((m * 3).dtype(), Dtype::I64);
  expect_close(m * 3, {3, 0, 3}, {3}, Tol{0, 0}, "bool * 3");
  EXPECT_EQ((m * 0.5).dtype(), Dtype::F32);
  expect_close(m * 0.5, {0.5, 0, 0.5}, {3}, Tol{0, 0}, "bool * 0.5");
  expect_close(1.0 - m, {0, 1, 0}, {3}, Tol{0, 0}, "1 - bool");
}

WICK_DEVICE_TEST(Elementwise, BinaryGradients) {
  for (const BinaryCase& c : kBinary)
    for (const auto& [sa, sb] : {std::pair<Shape, Shape>{{3, 4}, {3, 4}}, {{3, 1, 4}, {2, 4}}, {{}, {2, 3}}}) {
      Rand a = rand(sa, Dtype::F64, c.positive_a ? 0.3 : -2, 2);
      Rand b = rand(sb, Dtype::F64, c.positive_a ? -2 : 0.5, 2);
      check_grads([&](const std::vector<Tensor>& in) { return c.op(in[0], in[1]); }, {a.t, b.t},
                  str_cat(c.name, " ", shape_str(sa), " ", shape_str(sb)));
    }
  Rand b = rand({3}), c = rand({2, 1});
  Tensor cond = make({1, 0, 1, 0, 0, 1}, {2, 3}, Dtype::Bool);
  check_grads([&](const std::vector<Tensor>& in) { return where(cond, in[0], in[1]); }, {b.t, c.t}, "where");
  check_grads([&](const std::vector<Tensor>& in) { return in[0] * 3.0 - 2.0 / in[0] + 1.0; },
              {rand({4}, Dtype::F64, 0.5, 2).t}, "scalar operators");
  check_grads([&](const std::vector<Tensor>& in) { return pow(in[0], 2.5); }, {rand({4}, Dtype::F64, 0.5, 2).t},
              "pow scalar");
  // At kinks the subgradient follows torch: relu'(0) = abs'(0) = 0, ties of maximum share evenly.
  Tensor k = make({0, 1, -1}, {3});
  expect_close(grad([](const std::vector<Tensor>& in) { return sum(relu(in[0])); }, {k})[0], {0, 1, 0}, {3},
               "relu kink");
  expect_close(grad([](const std::vector<Tensor>& in) { return sum(abs(in[0])); }, {k})[0], {0, 1, -1}, {3},
               "abs kink");
  auto ties =
      grad([](const std::vector<Tensor>& in) { return sum(maximum(in[0], in[1]) * 2.0); }, {k, make({0, 0, 0}, {3})});
  expect_close(ties[0], {1, 2, 0}, {3}, "maximum ties a");
  expect_close(ties[1], {1, 0, 2}, {3}, "maximum ties b");
  expect_close(grad([](const std::vector<Tensor>& in) { return sum(maximum(in[0], in[0])); }, {k})[0], {1, 1, 1}, {3},
               "maximum of x with itself");
}

WICK_DEVICE_TEST(Elementwise, GradientsInLowerPrecision) {
  const std::pair<const char*, Fn> cases[] = {
      {"gelu * sigmoid + exp", [](auto& in) { return gelu(in[0]) * sigmoid(in[1]) + exp(in[0] / 4.0) - in[1]; }},
      {"tanh / abs", [](auto& in) { return gelu(in[0]) * sigmoid(in[1]) + tanh(in[0]) / (abs(in[1]) + 1.0); }},
      {"maximum * exp", [](auto& in) { return maximum(in[0], in[1]) * exp(in[0] * 0.1); }},
  };
  for (const auto& [name, fn] : cases) {
    std::vector<Tensor> x64{rand({7, 33}).t, rand({33}).t};
    for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16})
      check_grads_in(dt, fn, x64, dt == Dtype::F32 ? 1e-5 : dt == Dtype::F16 ? 1e-2 : 5e-2, name);
  }
}

}  // namespace
}  // namespace wick
