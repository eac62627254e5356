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

// ---- K-quant kernels on 256-value activation blocks ----

TEST(QuantDot, KActivationBlocksRoundEachValueToItsStep) {
  // From a float pointer one past an aligned address.
  std::vector<float> storage(size_t(1 + 256 * 3));
  std::vector<float> x = random_activations(256 * 3, 5);
  std::copy(x.begin(), x.end(), storage.begin() + 1);
  std::vector<cpu::Q8KBlock> q(3);
  cpu::quantize_row_q8k(storage.data() + 1, 256 * 3, q.data());
  for (int b = 0; b < 3; ++b) {
    const cpu::Q8KBlock& qb = q[size_t(b)];
    double amax = 0;
    for (int j = 0; j < 256; ++j) amax = std::max(amax, std::fabs(double(x[size_t(256 * b + j)])));
    EXPECT_NEAR(qb.d, amax / 127.0, 1e-6 * amax) << "block " << b;
    for (int k = 0; k < 16; ++k) {
      int sum = 0;
      for (int j = 16 * k; j < 16 * k + 16; ++j) {
        sum += qb.q[j];
        EXPECT_LE(std::fabs(double(qb.d) * qb.q[j] - x[size_t(256 * b + j)]), 0.5 * qb.d * (1 + 1e-5) + 1e-30)
            << "block " << b << " value " << j;
      }
      EXPECT_EQ(qb.sum[k], sum) << "block " << b << " sum " << k;
    }
  }
}

// The AVX2 quantization gives the scalar steps' bytes: from an unaligned float pointer, a block of
// zeros, values at exact halves of the step (rounded to even by both), and ordinary ones.
TEST(QuantDot, KActivationBlocksAreTheSameWithAvx2) {
  if (cpu::k_dot_best_isa() < cpu::KDotIsa::kAvx2) GTEST_SKIP() << "no AVX2 on this machine";
  const int64_t n = 256 * 5;
  std::vector<float> storage(size_t(1 + n));
  std::vector<float> x = random_activations(n, 17);
  for (int64_t j = 256; j < 512; ++j) x[size_t(j)] = 0.0f;
  // A step of 1 (max 127): the values -1.5, -0.5, 0.5 and 1.5 are ties.
  for (int64_t j = 512; j < 768; ++j) x[size_t(j)] = 0.5f * float(j % 9) - 2.0f;
  x[512] = 127.0f;
  std::copy(x.begin(), x.end(), storage.begin() + 1);
  std::vector<cpu::Q8KBlock> simd(5), scalar(5);
  cpu::detail::quantize_row_q8k_avx2(storage.data() + 1, n, simd.data());
  cpu::detail::quantize_row_q8k_scalar(storage.data() + 1, n, scalar.data());
  for (int b = 0; b < 5; ++b) {
    EXPECT_EQ(simd[size_t(b)].d, scalar[size_t(b)].d) << "block " << b;
    for (int j = 0; j < 256; ++j) EXPECT_EQ(simd[size_t(b)].q[j], scalar[size_t(b)].q[j]) << "block " << b << " value " << j;
    for (int k = 0; k < 16; ++k) EXPECT_EQ(simd[size_t(b)].sum[k], scalar[size_t(b)].sum[k]) << "block " << b << " sum " << k;
  }
}

std::string isa_name(cpu::KDotIsa isa) {
  switch (isa) {
    case cpu::KDotIsa::kScalar: return "scalar";
    case cpu::KDotIsa::kAvx2: return "avx2";
    case cpu::KDotIsa::kAvx512Vnni: return "avx512-vnni";
  }
  return "?";
}

// Every K-quant kernel of `isa`, on rows of 1, 3 and 5 super-blocks, 1 to 7 rows per call starting
// at every row of a 7-row matrix (so the last calls take the rows left), the activation blocks 4
// bytes past an aligned address. Against three references:
// - float64 on the dequantized weights and the activations as the blocks hold them (d * q): only
//   float rounding separates them, 2e-6 of sum |w_j x_j|;
// - the scalar kernel: the same bound;
// - float64 on the original activations: off by at most the 8-bit rounding, sum_j |w_j| * d / 2.
void check_k_row_dots(ggml::GgmlType type, cpu::KDotIsa isa) {
  for (int64_t blocks : {1, 3, 5}) {
    const int64_t cols = 256 * blocks, rows = 7;
    SCOPED_TRACE(std::string(ggml::ggml_type_name(type)) + " " + isa_name(isa) + " cols " + std::to_string(cols));
    QuantizedMatrix w = testing::random_blocks(type, rows, cols, uint64_t(300 + blocks));
    std::vector<float> wf(size_t(rows * cols));
    ggml::dequantize_to_f32(type, w.blocks.data<uint8_t>(), rows * cols, wf.data());
    std::vector<float> x = random_activations(cols, uint64_t(13 * blocks));
    std::vector<uint8_t> bytes(size_t(blocks) * sizeof(cpu::Q8KBlock) + 128);
    uint8_t* base = bytes.data() + (64 - reinterpret_cast<uintptr_t>(bytes.data()) % 64) % 64;
    auto* xq = reinterpret_cast<cpu::Q8KBlock*>(base + 4);
    cpu::quantize_row_q8k(x.data(), cols, xq);
    const cpu::RowsDotKFn dot = cpu::rows_dot_k_kernel(type, isa);
    const cpu::RowsDotKFn scalar = cpu::rows_dot_k_kernel(type, cpu::KDotIsa::kScalar);
    const size_t row_bytes = ggml::ggml_nbytes(type, cols);
    for (int64_t nr = 1; nr <= rows; ++nr)
      for (int64_t r0 = 0; r0 < rows; ++r0) {
        const int64_t take = std::min(nr, rows - r0);
        std::vector<float> got(size_t(take) + 1, -1.0f), want(static_cast<size_t>(take));
        const uint8_t* wr = w.blocks.data<uint8_t>() + size_t(r0) * row_bytes;
        dot(wr, row_bytes, take, xq, cols, got.data());
        scalar(wr, row_bytes, take, xq, cols, want.data());
        EXPECT_EQ(got[size_t(take)], -1.0f) << "wrote past " << take << " rows";
        for (int64_t t = 0; t < take; ++t) {
          const int64_t r = r0 + t;
          double ref_q = 0, ref = 0, bound = 0, terms = 0;
          for (int64_t j = 0; j < cols; ++j) {
            const double wj = wf[size_t(r * cols + j)];
            const cpu::Q8KBlock& xb = xq[j / 256];
            ref_q += wj * double(xb.d) * xb.q[j % 256];
            ref += wj * double(x[size_t(j)]);
            bound += std::fabs(wj) * 0.5 * double(xb.d);
            terms += std::fabs(wj * double(x[size_t(j)]));
          }
          SCOPED_TRACE("rows per call " + std::to_string(take) + ", row " + std::to_string(r));
          EXPECT_NEAR(double(got[size_t(t)]), ref_q, 2e-6 * terms + 1e-30);
          EXPECT_NEAR(double(got[size_t(t)]), double(want[size_t(t)]), 2e-6 * terms + 1e-30);
          EXPECT_NEAR(double(got[size_t(t)]), ref, bound * 1.001 + 2e-6 * terms);
        }
      }
  }
}

const std::vector<ggml::GgmlType>& k_types() {
  using ggml::GgmlType;
  static const std::vector<GgmlType> types{GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K,
                                           GgmlType::Q6_K};
  return types;
}

TEST(QuantDot, ScalarKRowDotsMatchFloat64OnTheDequantizedWeights) {
  for (ggml::GgmlType type : k_types()) check_k_row_dots(type, cpu::KDotIsa::kScalar);
}

TEST(QuantDot, Avx2KRowDotsMatchFloat64OnTheDequantizedWeights) {
  if (cpu::k_dot_best_isa() < cpu::KDotIsa::kAvx2) GTEST_SKIP() << "no AVX2 on this machine";
  for (ggml::GgmlType type : k_types()) check_k_row_dots(type, cpu::KDotIsa::kAvx2);
}

TEST(QuantDot, VnniKRowDotsMatchFloat64OnTheDequantizedWeights) {
  if (cpu::k_dot_best_isa() < cpu::KDotIsa::kAvx512Vnni) GTEST_SKIP() << "no AVX512-VNNI on this machine";
  for (ggml::GgmlType type : k_types()) check_k_row_dots(type, cpu::KDotIsa::kAvx512Vnni);
}

TEST(QuantDot, KKernelsAreForTheKQuantsOnly) {
  for (ggml::GgmlType type : testing::block_types()) {
    const bool k = std::find(k_types().begin(), k_types().end(), type) != k_types().end();
    EXPECT_EQ(cpu::k_dot_supported(type), k) << ggml::ggml_type_name(type);
    if (!k) EXPECT_THROW(cpu::rows_dot_k_kernel(type, cpu::KDotIsa::kScalar), Error) << ggml::ggml_type_name(type);
  }
  EXPECT_FALSE(cpu::k_dot_supported(ggml::GgmlType::F16));
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

namespace wick {
namespace {

// The dequantize op on the CPU (its vector dequantizers where it has them) gives
// ggml::dequantize_to_f32's values bit for bit, for every block type, as a prompt's product reads them.
TEST(CpuDequantize, EveryTypeGivesTheReferenceBits) {
  for (ggml::GgmlType type : testing::block_types()) {
    const int64_t rows = 7, cols = 512;
    QuantizedMatrix q = testing::random_blocks(type, rows, cols, 17);
    std::vector<float> want(size_t(rows * cols));
    ggml::dequantize_to_f32(type, static_cast<const uint8_t*>(q.blocks.data_ptr()), rows * cols, want.data());
    std::vector<float> got = dequantize(q, Dtype::F32).to_vector<float>();
    ASSERT_EQ(got.size(), want.size());
    size_t differ = 0;
    for (size_t i = 0; i < got.size(); ++i) differ += std::memcmp(&got[i], &want[i], 4) != 0;
    EXPECT_EQ(differ, 0u) << ggml::ggml_type_name(type);
  }
}

}  // namespace
}  // namespace wick
