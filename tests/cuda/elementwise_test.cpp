// Elementwise ops, casts, fills and random draws on the GPU against the CPU backend, for several
// dtypes, odd sizes and non-contiguous views (transposes, stepped slices, broadcasts).
#include "cuda_test_util.h"

namespace wick::test {
namespace {

class CudaElementwise : public ::testing::TestWithParam<Dtype> {};

const std::vector<int64_t> kSizes = {1, 7, 33, 129, 1000};

using UnaryOp = Tensor (*)(const Tensor&);
struct NamedUnary {
  const char* name;
  UnaryOp op;
  bool positive;  // needs a positive input
};
const NamedUnary kUnary[] = {
    {"neg", neg, false},        {"exp", exp, false},     {"log", log, true},     {"sqrt", sqrt, true},
    {"rsqrt", rsqrt, true},     {"abs", abs, false},     {"tanh", tanh, false},  {"sin", sin, false},
    {"cos", cos, false},        {"sigmoid", sigmoid, false}, {"silu", silu, false}, {"relu", relu, false},
    {"gelu", gelu, false},      {"gelu_tanh", gelu_tanh, false}, {"erf", erf, false}, {"square", square, false},
};

TEST_P(CudaElementwise, UnaryContiguousAndStrided) {
  WICK_REQUIRE_GPU();
  Dtype dt = GetParam();
  for (const auto& u : kUnary) {
    for (int64_t n : kSizes) {
      Tensor x = randn({3, n}, dt);
      if (u.positive) x = astype(abs(x) + 0.1, dt).eval();
      EXPECT_TRUE(same_on_gpu([&](auto& in) { return u.op(in[0]); }, {x}, tol_for(dt))) << u.name << " n=" << n;
      // Transposed and stepped views.
      EXPECT_TRUE(same_on_gpu([&](auto& in) { return u.op(transpose(in[0], 0, 1)); }, {x}, tol_for(dt)))
          << u.name << " transposed n=" << n;
      EXPECT_TRUE(same_on_gpu([&](auto& in) { return u.op(slice(in[0], 1, 0, n, 2)); }, {x}, tol_for(dt)))
          << u.name << " sliced n=" << n;
    }
  }
}

TEST_P(CudaElementwise, BinaryWithBroadcast) {
  WICK_REQUIRE_GPU();
  Dtype dt = GetParam();
  using BinOp = Tensor (*)(const Tensor&, const Tensor&);
  const std::pair<const char*, BinOp> ops[] = {{"add", add}, {"sub", sub}, {"mul", mul}, {"div", div},
                                               {"maximum", maximum}, {"minimum", minimum}, {"eq", eq}, {"ne", ne},
                                               {"lt", lt}, {"le", le}, {"gt", gt}, {"ge", ge}};
  for (int64_t n : kSizes) {
    Tensor a = randn({5, n}, dt), b = randn({5, n}, dt), row = randn({n}, dt), col = randn({5, 1}, dt);
    for (auto& [name, op] : ops) {
      EXPECT_TRUE(same_on_gpu([&](auto& in) { return op(in[0], in[1]); }, {a, b}, tol_for(dt))) << name << " n=" << n;
      EXPECT_TRUE(same_on_gpu([&](auto& in) { return op(in[0], in[1]); }, {a, row}, tol_for(dt))) << name << " row";
      EXPECT_TRUE(same_on_gpu([&](auto& in) { return op(in[1], in[0]); }, {a, col}, tol_for(dt))) << name << " col";
      EXPECT_TRUE(same_on_gpu([&](auto& in) { return op(transpose(in[0], 0, 1), transpose(in[1], 0, 1)); }, {a, b},
                              tol_for(dt)))
          << name << " transposed";
    }
    Tensor base = astype(abs(a) + 0.5, dt).eval();
    EXPECT_TRUE(same_on_gpu([&](auto& in) { return pow(in[0], in[1]); }, {base, b}, tol_for(dt))) << "pow";
    EXPECT_TRUE(same_on_gpu([&](auto& in) { return where(gt(in[0], in[1]), in[0], in[2]); }, {a, b, row}, tol_for(dt)))
        << "where";
    EXPECT_TRUE(same_on_gpu([&](auto& in) { return swiglu(in[0], in[1]); }, {a, b}, tol_for(dt))) << "swiglu";
    EXPECT_TRUE(same_on_gpu([&](auto& in) { return swiglu(transpose(in[0], 0, 1), transpose(in[1], 0, 1)); }, {a, b},
                            tol_for(dt)))
        << "swiglu transposed";
  }
}

TEST_P(CudaElementwise, Gradients) {
  WICK_REQUIRE_GPU();
  Dtype dt = GetParam();
  Tensor x = randn({7, 33}, dt), y = randn({7, 33}, dt);
  Tol t = grad_tol(dt, Tol{1e-4, 1e-4});
  EXPECT_TRUE(same_grads_on_gpu([](auto& in) { return gelu(in[0]) * sigmoid(in[1]) + tanh(in[0]) / (abs(in[1]) + 1.0); },
                                {x, y}, t));
  EXPECT_TRUE(same_grads_on_gpu([](auto& in) { return swiglu(in[0], in[1]); }, {x, y}, t));
  EXPECT_TRUE(same_grads_on_gpu([](auto& in) { return maximum(in[0], in[1]) * exp(in[0] * 0.1); }, {x, y}, t));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaElementwise, ::testing::Values(Dtype::F32, Dtype::BF16, Dtype::F16, Dtype::F64),
                         dtype_param_name);

TEST(CudaElementwiseInt, IntegerOps) {
  WICK_REQUIRE_GPU();
  for (Dtype dt : {Dtype::I32, Dtype::I64, Dtype::U8}) {
    Tensor a = astype(abs(randn({4, 33}) * 10.0), dt).eval(), b = astype(abs(randn({4, 33}) * 10.0) + 1.0, dt).eval();
    Tol exact{0, 0};
    EXPECT_TRUE(same_on_gpu([](auto& in) { return in[0] + in[1]; }, {a, b}, exact)) << dtype_name(dt);
    EXPECT_TRUE(same_on_gpu([](auto& in) { return in[0] * in[1]; }, {a, b}, exact)) << dtype_name(dt);
    EXPECT_TRUE(same_on_gpu([](auto& in) { return div(in[0], in[1]); }, {a, b}, exact)) << dtype_name(dt);
    EXPECT_TRUE(same_on_gpu([](auto& in) { return lt(in[0], in[1]); }, {a, b}, exact)) << dtype_name(dt);
    EXPECT_TRUE(same_on_gpu([](auto& in) { return abs(in[0]); }, {a}, exact)) << dtype_name(dt);
    EXPECT_TRUE(same_on_gpu([](auto& in) { return maximum(transpose(in[0], 0, 1), transpose(in[1], 0, 1)); }, {a, b},
                            exact))
        << dtype_name(dt);
  }
}

TEST(CudaCast, AllDtypePairs) {
  WICK_REQUIRE_GPU();
  const Dtype all[] = {Dtype::Bool, Dtype::U8, Dtype::I32, Dtype::I64, Dtype::F16, Dtype::BF16, Dtype::F32, Dtype::F64};
  // Values exact in every dtype (small integers and halves), some zeros for bool.
  Tensor base = astype(astype(randn({3, 37}) * 4.0, Dtype::I32), Dtype::F32) * 0.5;
  base = abs(base).eval();
  for (Dtype from : all) {
    Tensor x = astype(base, from).eval();
    for (Dtype to : all) {
      EXPECT_TRUE(same_on_gpu([&](auto& in) { return astype(in[0], to); }, {x}, Tol{0, 0}))
          << dtype_name(from) << " -> " << dtype_name(to);
      EXPECT_TRUE(same_on_gpu([&](auto& in) { return astype(transpose(in[0], 0, 1), to); }, {x}, Tol{0, 0}))
          << dtype_name(from) << " -> " << dtype_name(to) << " transposed";
    }
  }
  // Rounding of non-exact values to 16-bit floats matches the CPU bit for bit.
  Tensor f = randn({1000}, Dtype::F32, 100.0);
  for (Dtype to : {Dtype::F16, Dtype::BF16, Dtype::I32})
    EXPECT_TRUE(same_on_gpu([&](auto& in) { return astype(in[0], to); }, {f}, Tol{0, 0})) << dtype_name(to);
}

TEST(CudaCreate, FullArangeAndRandom) {
  WICK_REQUIRE_GPU();
  Device g = Device::cuda(0), c = Device::cpu();
  for (Dtype dt : {Dtype::Bool, Dtype::U8, Dtype::I32, Dtype::I64, Dtype::F16, Dtype::BF16, Dtype::F32, Dtype::F64}) {
    EXPECT_TRUE(close(on_cpu(full({3, 129}, 1.5, dt, g)), full({3, 129}, 1.5, dt, c), Tol{0, 0})) << dtype_name(dt);
    // Values outside an integer dtype's range are undefined behaviour in C++: stay inside it.
    double lo = dt == Dtype::U8 ? 0 : -3, hi = dt == Dtype::U8 ? 250 : 1000;
    EXPECT_TRUE(close(on_cpu(arange(lo, hi, 1, dt, g)), arange(lo, hi, 1, dt, c), Tol{0, 0})) << dtype_name(dt);
  }
  EXPECT_TRUE(close(on_cpu(arange(0.5, 7, 0.25, Dtype::F32, g)), arange(0.5, 7, 0.25, Dtype::F32, c), Tol{0, 0}));
  // Counter-based draws: identical values on both devices.
  for (int64_t n : kSizes) {
    manual_seed(42);
    Tensor u_gpu = uniform({n}, -2, 3, Dtype::F32, g), n_gpu = normal({n, 3}, 1, 2, Dtype::F32, g);
    Tensor b_gpu = bernoulli({n}, 0.3, g);
    manual_seed(42);
    Tensor u_cpu = uniform({n}, -2, 3, Dtype::F32, c), n_cpu = normal({n, 3}, 1, 2, Dtype::F32, c);
    Tensor b_cpu = bernoulli({n}, 0.3, c);
    EXPECT_TRUE(close(on_cpu(u_gpu), u_cpu, Tol{0, 0})) << n;
    EXPECT_TRUE(close(on_cpu(n_gpu), n_cpu, Tol{1e-6, 1e-6})) << n;  // sinf/logf may differ in the last bit
    EXPECT_TRUE(close(on_cpu(b_gpu), b_cpu, Tol{0, 0})) << n;
  }
}

}  // namespace
}  // namespace wick::test
