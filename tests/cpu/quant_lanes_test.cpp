// The lane layout of Q4_K, Q5_K and Q6_K (backend/cpu/quant_dot.h): reordering into it and back,
// the activations' lane blocks against their definition, and the lane kernels against float64 math
// on the weights io's reference dequantizers give for the file's blocks (so a layout that moved a
// quant, a scale or a high bit to the wrong value fails), each activation row's bits independent of
// the rows beside it, and the AVX2 and VNNI kernels equal bit for bit. Then a QuantizedMatrix in lanes
// through the engine's ops: its products within 8-bit rounding of float64 on the file's blocks, its
// dequantization and input gradient the file blocks' bits, and no move to another device.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "support/ggml_blocks.h"
#include "support/testing.h"
#include "wick/core/autograd.h"
#include "wick/core/ops.h"
#include "wick/core/quantized.h"
#include "wick/backend/cpu/quant_dot.h"
#include "wick/base/error.h"

namespace wick {
namespace {

using ggml::GgmlType;

const std::vector<GgmlType> kLaneTypes{GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

std::vector<float> random_row(int64_t n, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = normal(gen);
  for (int64_t j = 0; j < std::min<int64_t>(n, 32); ++j) x[size_t(j)] *= 40.0f;  // a block much larger
  return x;
}

std::vector<cpu::KDotIsa> lane_isas() {
  std::vector<cpu::KDotIsa> isas;
  for (cpu::KDotIsa isa : {cpu::KDotIsa::kAvx2, cpu::KDotIsa::kAvx512Vnni})
    if (isa <= cpu::k_dot_best_isa()) isas.push_back(isa);
  return isas;
}

TEST(KLanes, PackingMovesEveryQuantAndUnpackingRestoresTheFileBlocks) {
  for (GgmlType type : kLaneTypes) {
    SCOPED_TRACE(ggml::ggml_type_name(type));
    const int64_t rows = 3, cols = 768;
    QuantizedMatrix w = testing::random_blocks(type, rows, cols, 41);
    const int64_t n_blocks = rows * cols / 256;
    const uint8_t* file = w.blocks.data<uint8_t>();
    const size_t bytes = size_t(w.blocks.numel());
    std::vector<uint8_t> lanes(bytes), back(bytes), in_place(file, file + bytes);
    cpu::k_lanes_pack(type, file, n_blocks, lanes.data());
    EXPECT_NE(lanes, std::vector<uint8_t>(file, file + bytes)) << "packing changed nothing";
    cpu::k_lanes_unpack(type, lanes.data(), n_blocks, back.data());
    EXPECT_EQ(back, std::vector<uint8_t>(file, file + bytes));
    cpu::k_lanes_pack(type, in_place.data(), n_blocks, in_place.data());
    EXPECT_EQ(in_place, lanes) << "in place";
  }
  std::vector<uint8_t> q8(34 * 8);
  EXPECT_THROW(cpu::k_lanes_pack(GgmlType::Q8_0, q8.data(), 1, q8.data()), Error);
  EXPECT_FALSE(cpu::k_lanes_type(GgmlType::Q3_K));
}

TEST(KLanes, ActivationBlocksHoldTheQ8KValuesInLaneOrder) {
  const int64_t n = 512;
  std::vector<float> x = random_row(n, 5);
  std::vector<cpu::Q8KBlock> plain(2);
  std::vector<cpu::Q8KLanesBlock> lanes(2);
  cpu::quantize_row_q8k(x.data(), n, plain.data());
  cpu::quantize_row_q8k_lanes(x.data(), n, lanes.data());
  for (int b = 0; b < 2; ++b) {
    const cpu::Q8KBlock& p = plain[size_t(b)];
    const cpu::Q8KLanesBlock& l = lanes[size_t(b)];
    EXPECT_EQ(l.d, p.d);
    for (int t = 0; t < 4; ++t)
      for (int h = 0; h < 2; ++h)
        for (int k = 0; k < 8; ++k)
          for (int j = 0; j < 4; ++j)
            ASSERT_EQ(l.q[64 * t + 32 * h + 4 * k + j], p.q[32 * k + 8 * t + 4 * h + j]) << "block " << b;
    for (int k = 0; k < 8; ++k) {
      int first = 0, second = 0;
      for (int v = 0; v < 16; ++v) first += p.q[32 * k + v], second += p.q[32 * k + 16 + v];
      EXPECT_EQ(l.s16[k], 32 * first);
      EXPECT_EQ(l.s16[8 + k], 32 * second);
      EXPECT_EQ(l.ds32[k], p.d * float(first + second));
    }
  }
}

// 1 to 9 and 20 activation rows against 21 weight rows (more than one tile of 16) of 1, 3 and 12
// super-blocks (20 rows of 12 go in spans of super-blocks): each result within float rounding (2e-6
// of sum |w_j x_j|) of float64 on the dequantized file blocks and the activations as the 8-bit
// blocks hold them; each row's bits those of the row alone; the AVX2 kernel's bits the VNNI
// kernel's.
TEST(KLanes, KernelsMatchFloat64AndEveryRowHasItsOwnBits) {
  const std::vector<cpu::KDotIsa> isas = lane_isas();
  if (isas.empty()) GTEST_SKIP() << "no AVX2 on this machine";
  for (GgmlType type : kLaneTypes)
    for (int64_t blocks : {1, 3, 12}) {
      const int64_t cols = 256 * blocks, rows = 21, m = 20;
      SCOPED_TRACE(std::string(ggml::ggml_type_name(type)) + " cols " + std::to_string(cols));
      QuantizedMatrix w = testing::random_blocks(type, rows, cols, uint64_t(700 + blocks));
      std::vector<float> wf(size_t(rows * cols));
      ggml::dequantize_to_f32(type, w.blocks.data<uint8_t>(), rows * cols, wf.data());
      std::vector<uint8_t> lanes(size_t(w.blocks.numel()));
      cpu::k_lanes_pack(type, w.blocks.data<uint8_t>(), rows * blocks, lanes.data());
      std::vector<cpu::Q8KBlock> plain(size_t(m * blocks));
      std::vector<cpu::Q8KLanesBlock> xl(size_t(m * blocks));
      for (int64_t i = 0; i < m; ++i) {
        std::vector<float> x = random_row(cols, uint64_t(90 + i));
        cpu::quantize_row_q8k(x.data(), cols, plain.data() + i * blocks);
        cpu::quantize_row_q8k_lanes(x.data(), cols, xl.data() + i * blocks);
      }
      const size_t row_bytes = ggml::ggml_nbytes(type, cols);
      std::vector<std::vector<float>> alone(isas.size());
      for (size_t s = 0; s < isas.size(); ++s) {
        const cpu::RowsDotLanesFn dot = cpu::rows_dot_lanes_kernel(type, isas[s]);
        alone[s].assign(size_t(m * rows), 0.0f);
        for (int64_t i = 0; i < m; ++i) dot(lanes.data(), row_bytes, rows, xl.data() + i * blocks, 1, cols, &alone[s][size_t(i * rows)], 0);
        for (int64_t i = 0; i < m; ++i)
          for (int64_t r = 0; r < rows; ++r) {
            double ref = 0, terms = 0;
            for (int64_t j = 0; j < cols; ++j) {
              const cpu::Q8KBlock& xb = plain[size_t(i * blocks + j / 256)];
              const double v = double(wf[size_t(r * cols + j)]) * double(xb.d) * xb.q[j % 256];
              ref += v;
              terms += std::fabs(v);
            }
            ASSERT_NEAR(double(alone[s][size_t(i * rows + r)]), ref, 2e-6 * terms + 1e-30)
                << "activation row " << i << ", weight row " << r;
          }
        for (int64_t take : {1, 2, 3, 4, 5, 6, 7, 8, 9, 20}) {
          std::vector<float> got(size_t(take * rows) + 1, -1.0f);
          dot(lanes.data(), row_bytes, rows, xl.data(), take, cols, got.data(), rows);
          EXPECT_EQ(got.back(), -1.0f) << "wrote past the output";
          for (int64_t i = 0; i < take; ++i)
            for (int64_t r = 0; r < rows; ++r)
              ASSERT_EQ(got[size_t(i * rows + r)], alone[s][size_t(i * rows + r)])
                  << take << " activation rows: row " << i << ", weight row " << r;
        }
      }
      for (size_t s = 1; s < isas.size(); ++s) EXPECT_EQ(alone[s], alone[0]) << "the AVX2 and VNNI kernels differ";
    }
}

// The same dtype, shape and values (bf16 widens to f32 exactly).
bool equal_bits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         astype(a, Dtype::F32).to_vector<float>() == astype(b, Dtype::F32).to_vector<float>();
}

// The matrix in lanes as the loader makes it (blocks reordered, lanes and 8-bit activations on).
QuantizedMatrix in_lanes(const QuantizedMatrix& file) {
  Tensor blocks = Tensor::empty(file.blocks.shape(), Dtype::U8, Device::cpu());
  cpu::k_lanes_pack(file.type, file.blocks.data<uint8_t>(), file.rows * file.cols / 256, blocks.data<uint8_t>());
  QuantizedMatrix w = quantized_matrix(blocks, file.type, file.rows, file.cols);
  w.int8_activations = w.lanes = true;
  return w;
}

// Products of 1, 3, 17 and 70 rows (a decode step, a batch, a prompt of more than 64 rows): each
// output within sum_j |w_j| * 2 / 254 of float64 on the file's blocks for |x| <= 2 (each x_j off by
// at most max|x| / 254 in 8 bits), in f32 and bf16; the dequantized matrix, in f32 and bf16, and the
// input gradient the file blocks' bits.
TEST(KLanes, QuantizedMatricesInLanesMultiplyAndDequantizeAsTheFileBlocks) {
  if (!cpu::k_lanes_available()) GTEST_SKIP() << "no AVX2 on this machine";
  for (GgmlType type : kLaneTypes) {
    SCOPED_TRACE(ggml::ggml_type_name(type));
    const int64_t rows = 37, cols = 768;
    QuantizedMatrix file = testing::random_blocks(type, rows, cols, 29);
    QuantizedMatrix w = in_lanes(file);
    std::vector<float> wf(size_t(rows * cols));
    ggml::dequantize_to_f32(type, file.blocks.data<uint8_t>(), rows * cols, wf.data());
    double bound = 0;
    for (int64_t r = 0; r < rows; ++r) {
      double row = 0;
      for (int64_t j = 0; j < cols; ++j) row += std::fabs(wf[size_t(r * cols + j)]);
      bound = std::max(bound, row * 2.0 / 254);
    }
    for (int64_t m : {1, 3, 17, 70}) {
      testing::Rand x = testing::rand({m, cols}, Dtype::F32);
      for (Dtype dt : {Dtype::F32, Dtype::BF16}) {
        Tensor xd = astype(x.t, dt);
        std::vector<double> xv = testing::values(xd), got = testing::values(linear(xd, w));
        for (int64_t i = 0; i < m; ++i)
          for (int64_t r = 0; r < rows; ++r) {
            double ref = 0;
            for (int64_t j = 0; j < cols; ++j) ref += xv[size_t(i * cols + j)] * double(wf[size_t(r * cols + j)]);
            const double tol = 1.01 * bound + (dt == Dtype::BF16 ? 0x1p-8 * std::fabs(ref) + 1e-3 : 1e-4);
            ASSERT_NEAR(got[size_t(i * rows + r)], ref, tol) << dtype_name(dt) << " m " << m << " row " << i << ", " << r;
          }
      }
    }
    for (Dtype dt : {Dtype::F32, Dtype::BF16})
      EXPECT_TRUE(equal_bits(dequantize(w, dt), dequantize(file, dt))) << dtype_name(dt);
    testing::Rand x = testing::rand({4, cols}, Dtype::F32), r = testing::rand({4, rows}, Dtype::F32);
    auto input_grad = [&](const QuantizedMatrix& q) {
      return grad([&](const std::vector<Tensor>& in) { return sum(linear(in[0], q) * r.t); }, {x.t})[0];
    };
    EXPECT_TRUE(equal_bits(input_grad(w), input_grad(file)));
    try {
      to_device(w, Device::cuda(0));
      ADD_FAILURE() << "a matrix in lanes moved to CUDA";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("lane layout"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace wick
