// The CPU's row dot products over GGML blocks (backend/cpu/quant_dot.h), scalar and AVX2, for every
// weight type, against float64 math on the weights io dequantizes (the reference dequantizers,
// bit-exact with gguf-py), on rows of an odd number of blocks. f32 activations: within float
// summation error. 8-bit activations: the activation blocks against their definition, and the dots
// within what 8-bit activations allow: each x_j is off by at most half its block's step d, so
// |dot - ref| <= sum_j |w_j| * d_j / 2 (plus float rounding). A wrong scale, min or offset term
// breaks either bound by orders of magnitude.
#include "wick/backend/cpu/quant_dot.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "support/ggml_blocks.h"
#include "wick/base/error.h"

namespace wick {
namespace {

using cpu::Q8Block;

std::vector<float> random_activations(int64_t n, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = normal(gen);
  // Some blocks much larger than others, and one of zeros, as real activations have.
  for (int64_t j = 0; j < std::min<int64_t>(n, 32); ++j) x[size_t(j)] *= 40.0f;
  if (n >= 96)
    for (int64_t j = 64; j < 96; ++j) x[size_t(j)] = 0.0f;
  return x;
}

TEST(QuantDot, ActivationBlocksRoundEachValueToItsStep) {
  std::vector<float> x = random_activations(32 * 7, 3);
  std::vector<Q8Block> q(7);
  cpu::quantize_row_q8(x.data(), int64_t(x.size()), q.data());
  for (int b = 0; b < 7; ++b) {
    double amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(double(x[size_t(32 * b + j)])));
    EXPECT_NEAR(q[size_t(b)].d, amax / 127.0, 1e-6 * amax) << "block " << b;
    for (int h = 0; h < 2; ++h) {
      int sum = 0;
      for (int j = 16 * h; j < 16 * h + 16; ++j) {
        sum += q[size_t(b)].q[j];
        EXPECT_LE(std::fabs(double(q[size_t(b)].d) * q[size_t(b)].q[j] - x[size_t(32 * b + j)]),
                  0.5 * q[size_t(b)].d * (1 + 1e-5) + 1e-30)
            << "block " << b << " value " << j;
      }
      EXPECT_EQ(q[size_t(b)].sum[h], sum);
    }
    EXPECT_FLOAT_EQ(q[size_t(b)].ds, q[size_t(b)].d * float(q[size_t(b)].sum[0] + q[size_t(b)].sum[1]));
  }
}

// One row after another of a random matrix of `type`, against float64 on the dequantized values.
void check_row_dots(ggml::GgmlType type, bool simd) {
  int64_t block = ggml::ggml_type_info(type).block_size;
  for (int64_t blocks : {1, 3, 5}) {
    int64_t cols = block * blocks, rows = 7;
    SCOPED_TRACE(std::string(ggml::ggml_type_name(type)) + (simd ? " simd" : " scalar") + " cols " +
                 std::to_string(cols));
    QuantizedMatrix w = testing::random_blocks(type, rows, cols, uint64_t(100 + blocks));
    std::vector<float> wf(size_t(rows * cols));
    ggml::dequantize_to_f32(type, w.blocks.data<uint8_t>(), rows * cols, wf.data());
    std::vector<float> x = random_activations(cols, uint64_t(7 * blocks));
    std::vector<Q8Block> xq(size_t(cols / 32));
    cpu::quantize_row_q8(x.data(), cols, xq.data());
    cpu::RowDotFn dot = cpu::row_dot_kernel(type, simd);
    size_t row_bytes = ggml::ggml_nbytes(type, cols);
    for (int64_t r = 0; r < rows; ++r) {
      double ref = 0, bound = 0, terms = 0;
      for (int64_t j = 0; j < cols; ++j) {
        double wj = wf[size_t(r * cols + j)];
        ref += wj * double(x[size_t(j)]);
        bound += std::fabs(wj) * 0.5 * double(xq[size_t(j / 32)].d);
        terms += std::fabs(wj * double(x[size_t(j)]));
      }
      float got = dot(w.blocks.data<uint8_t>() + size_t(r) * row_bytes, xq.data(), cols);
      EXPECT_NEAR(double(got), ref, bound * 1.001 + 1e-5 * terms) << "row " << r;
    }
  }
}

TEST(QuantDot, ScalarRowDotsMatchFloat64OnTheDequantizedWeights) {
  for (ggml::GgmlType type : testing::block_types()) check_row_dots(type, false);
}

TEST(QuantDot, SimdRowDotsMatchFloat64OnTheDequantizedWeights) {
  if (!cpu::int8_dot_simd_available()) GTEST_SKIP() << "no AVX2 on this machine";
  for (ggml::GgmlType type : testing::block_types()) check_row_dots(type, true);
}

// The f32 family: 1 to 4 activation rows a stride apart (longer than a row, and starting one float
// past an aligned address), every weight row, against float64 on the dequantized weights. The
// weights are the reference's values, so only float summation separates the two: 1e-5 of the sum of
// |w_j x_j| bounds it (a wrong scale, min, offset or column breaks it by orders of magnitude).
void check_f32_row_dots(ggml::GgmlType type, bool simd) {
  int64_t block = ggml::ggml_type_info(type).block_size;
  for (int64_t blocks : {1, 3, 5}) {
    int64_t cols = block * blocks, rows = 5, ldx = cols + 7;
    QuantizedMatrix w = testing::random_blocks(type, rows, cols, uint64_t(200 + blocks));
    std::vector<float> wf(size_t(rows * cols));
    ggml::dequantize_to_f32(type, w.blocks.data<uint8_t>(), rows * cols, wf.data());
    std::vector<float> storage(size_t(1 + cpu::kF32DotMaxRows * ldx));
    float* x = storage.data() + 1;
    for (int i = 0; i < cpu::kF32DotMaxRows; ++i) {
      std::vector<float> xi = random_activations(cols, uint64_t(11 * blocks + i));
      std::copy(xi.begin(), xi.end(), x + i * ldx);
    }
    cpu::RowDotF32Fn dot = cpu::row_dot_f32_kernel(type, simd);
    size_t row_bytes = ggml::ggml_nbytes(type, cols);
    for (int m = 1; m <= cpu::kF32DotMaxRows; ++m)
      for (int64_t r = 0; r < rows; ++r) {
        SCOPED_TRACE(std::string(ggml::ggml_type_name(type)) + (simd ? " simd" : " scalar") + " cols " +
                     std::to_string(cols) + " m " + std::to_string(m) + " row " + std::to_string(r));
        float got[cpu::kF32DotMaxRows];
        dot(w.blocks.data<uint8_t>() + size_t(r) * row_bytes, x, ldx, m, cols, got);
        for (int i = 0; i < m; ++i) {
          double ref = 0, terms = 0;
          for (int64_t j = 0; j < cols; ++j) {
            double p = double(wf[size_t(r * cols + j)]) * double(x[i * ldx + j]);
            ref += p;
            terms += std::fabs(p);
          }
          EXPECT_NEAR(double(got[i]), ref, 1e-5 * terms + 1e-30) << "activation row " << i;
        }
      }
  }
}

TEST(QuantDot, ScalarF32RowDotsMatchFloat64OnTheDequantizedWeights) {
  for (ggml::GgmlType type : testing::block_types()) check_f32_row_dots(type, false);
}

TEST(QuantDot, SimdF32RowDotsMatchFloat64OnTheDequantizedWeights) {
  if (!cpu::int8_dot_simd_available()) GTEST_SKIP() << "no AVX2 on this machine";
  for (ggml::GgmlType type : testing::block_types()) check_f32_row_dots(type, true);
}

TEST(QuantDot, EveryKeptBlockTypeHasAKernel) {
  for (ggml::GgmlType type : testing::block_types()) {
    EXPECT_TRUE(cpu::int8_dot_supported(type)) << ggml::ggml_type_name(type);
    EXPECT_TRUE(cpu::f32_dot_supported(type)) << ggml::ggml_type_name(type);
  }
  EXPECT_FALSE(cpu::int8_dot_supported(ggml::GgmlType::F16));
  EXPECT_FALSE(cpu::f32_dot_supported(ggml::GgmlType::F16));
  EXPECT_THROW(cpu::row_dot_kernel(ggml::GgmlType::F16), Error);
  EXPECT_THROW(cpu::row_dot_f32_kernel(ggml::GgmlType::F16), Error);
}

}  // namespace
}  // namespace wick
