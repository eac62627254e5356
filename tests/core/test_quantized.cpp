// Quantized weight matrices (core/quantized.h): the dequantize op against io's reference
// dequantizers (themselves bit-exact with gguf-py), products and their gradients against float64
// math on the dequantized values, and the errors for bad layouts.
#include <gtest/gtest.h>

#include "core/ggml_blocks.h"
#include "testing.h"
#include "wick/core/error.h"
#include "wick/core/quantized.h"

namespace wick {
namespace {

using testing::block_types;
using testing::random_blocks;
using testing::Values;

// The matrix of `w` as float64 values, dequantized by io (the reference).
Values reference_matrix(const QuantizedMatrix& w) {
  std::vector<float> f(size_t(w.rows * w.cols));
  io::dequantize_to_f32(w.type, w.blocks.data<uint8_t>(), w.rows * w.cols, f.data());
  return Values(f.begin(), f.end());
}

int64_t cols_for(io::GgmlType type) { return io::ggml_type_info(type).block_size * 2; }

TEST(Quantized, DequantizeMatchesTheReferenceDequantizers) {
  for (io::GgmlType type : block_types()) {
    SCOPED_TRACE(std::string(io::ggml_type_name(type)));
    QuantizedMatrix w = random_blocks(type, 5, cols_for(type), 11);
    Values ref = reference_matrix(w);
    std::vector<float> f32 = dequantize(w, Dtype::F32).to_vector<float>();
    ASSERT_EQ(f32.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(f32[i], float(ref[i])) << "element " << i;
    std::vector<uint16_t> bf(ref.size());
    io::dequantize_to_bf16(type, w.blocks.data<uint8_t>(), w.rows * w.cols, bf.data());
    Tensor got_bf = dequantize(w, Dtype::BF16);
    for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(got_bf.data<bf16>()[i].bits, bf[i]) << "element " << i;
    Tensor got_h = dequantize(w, Dtype::F16);
    for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(got_h.data<f16>()[i].bits, f16(float(ref[i])).bits);
  }
}

TEST(Quantized, LinearMatchesFloat64OnTheDequantizedMatrix) {
  for (io::GgmlType type : block_types()) {
    SCOPED_TRACE(std::string(io::ggml_type_name(type)));
    int64_t rows = 6, cols = cols_for(type);
    QuantizedMatrix w = random_blocks(type, rows, cols, 23);
    Values wv = reference_matrix(w);
    auto x = testing::rand({2, 3, cols}, Dtype::F32);
    auto bias = testing::rand({rows}, Dtype::F32);
    auto product = [&](const Values& xv, const Values& w_v, const Values& bv) {
      Values out(size_t(6 * rows));
      for (int64_t m = 0; m < 6; ++m)
        for (int64_t n = 0; n < rows; ++n) {
          double acc = 0;
          for (int64_t k = 0; k < cols; ++k) acc += xv[size_t(m * cols + k)] * w_v[size_t(n * cols + k)];
          out[size_t(m * rows + n)] = acc + bv[size_t(n)];
        }
      return out;
    };
    // f32 accumulation: the error bound scales with sum |x w| (K-quant values reach the hundreds).
    double terms = 0;
    for (int64_t n = 0; n < rows; ++n) {
      double row = 0;
      for (int64_t k = 0; k < cols; ++k) row += std::abs(wv[size_t(n * cols + k)]) * 2.0;
      terms = std::max(terms, row);
    }
    testing::expect_close(linear(x.t, w, bias.t), product(x.v, wv, bias.v), {2, 3, rows},
                          testing::Tol{1e-6 * terms, 1e-5});
    // bf16 inputs: the matrix is dequantized to bf16 and the product accumulated in f32, then
    // rounded to bf16 (and again after the bias).
    Tensor xb = astype(x.t, Dtype::BF16), bb = astype(bias.t, Dtype::BF16);
    Values expect_bf = product(testing::values(xb), testing::values(dequantize(w, Dtype::BF16)), testing::values(bb));
    testing::expect_close(linear(xb, w, bb), expect_bf, {2, 3, rows}, testing::Tol{0.05, 0.01});
  }
}

TEST(Quantized, InputGradientIsTheProductWithTheMatrix) {
  for (io::GgmlType type : {io::GgmlType::Q4_0, io::GgmlType::Q5_1, io::GgmlType::Q4_K, io::GgmlType::Q6_K}) {
    SCOPED_TRACE(std::string(io::ggml_type_name(type)));
    int64_t rows = 5, cols = cols_for(type);
    QuantizedMatrix w = random_blocks(type, rows, cols, 31);
    Values wv = reference_matrix(w);
    auto x = testing::rand({4, cols}, Dtype::F32);
    auto r = testing::rand({4, rows}, Dtype::F32);
    auto [value, grads] = value_and_grad([&](const std::vector<Tensor>& in) { return sum(linear(in[0], w) * r.t); }, {x.t});
    // d/dx sum(r * (x W^T)) = r W.
    Values expect(size_t(4 * cols), 0.0);
    for (int64_t m = 0; m < 4; ++m)
      for (int64_t k = 0; k < cols; ++k)
        for (int64_t n = 0; n < rows; ++n) expect[size_t(m * cols + k)] += r.v[size_t(m * rows + n)] * wv[size_t(n * cols + k)];
    double terms = 0;
    for (double v : wv) terms = std::max(terms, std::abs(v) * 2.0 * double(rows));
    testing::expect_close(grads[0], expect, {4, cols}, testing::Tol{1e-6 * terms, 1e-5});
    // The same through the dense matrix and the ordinary linear op.
    Tensor dense = dequantize(w, Dtype::F32);
    auto dense_grad = grad([&](const std::vector<Tensor>& in) { return sum(linear(in[0], dense) * r.t); }, {x.t});
    testing::expect_tensors_close(grads[0], dense_grad[0], testing::tol_for(Dtype::F32));
  }
}

TEST(Quantized, LoraOverAQuantizedBaseGetsTheDenseBasesGradients) {
  int64_t rows = 8, cols = 64, rank = 4;
  QuantizedMatrix w = random_blocks(io::GgmlType::Q8_0, rows, cols, 5);
  Tensor dense = dequantize(w, Dtype::F32);
  auto x = testing::rand({3, cols}, Dtype::F32);
  auto a = testing::rand({rank, cols}, Dtype::F32, -0.3, 0.3);
  auto b = testing::rand({rows, rank}, Dtype::F32, -0.3, 0.3);
  auto loss = [&](auto base) {
    return [&, base](const std::vector<Tensor>& in) {
      return sum(square(lora_add(linear(in[0], base), in[0], in[1], in[2], 2.0)));
    };
  };
  auto q = value_and_grad(loss(w), {x.t, a.t, b.t});
  auto d = value_and_grad(loss(dense), {x.t, a.t, b.t});
  testing::expect_tensors_close(q.first, d.first, testing::tol_for(Dtype::F32), "loss");
  for (size_t i = 0; i < 3; ++i) testing::expect_tensors_close(q.second[i], d.second[i], testing::tol_for(Dtype::F32));
}

TEST(Quantized, LazyExecutionGivesTheEagerResult) {
  QuantizedMatrix w = random_blocks(io::GgmlType::Q4_1, 7, 64, 9);
  auto x = testing::rand({3, 64}, Dtype::F32);
  Tensor eager = linear(x.t, w);
  Tensor lazy;
  {
    ExecModeScope scope(ExecMode::Lazy);
    lazy = linear(x.t, w) * 1.0;
    lazy.eval();
  }
  EXPECT_EQ(eager.to_vector<float>(), lazy.to_vector<float>());
}

TEST(Quantized, QuantizeRoundTripsWithinTheGridStep) {
  auto wv = testing::rand({4, 64}, Dtype::F32, -1, 1);
  for (io::GgmlType type : {io::GgmlType::Q8_0, io::GgmlType::Q4_0, io::GgmlType::Q4_1, io::GgmlType::Q5_0,
                            io::GgmlType::Q5_1}) {
    SCOPED_TRACE(std::string(io::ggml_type_name(type)));
    QuantizedMatrix q = quantize(wv.t, type);
    EXPECT_EQ(q.shape(), Shape({4, 64}));
    std::vector<uint8_t> bytes(io::ggml_nbytes(type, 256));
    std::vector<float> src(wv.v.begin(), wv.v.end());
    io::quantize_from_f32(type, src.data(), 256, bytes.data());
    EXPECT_EQ(q.blocks.to_vector<uint8_t>(), bytes);
    // Each block's step is its range over the levels (2^bits - 1 or 2^(bits-1)); error <= one step.
    double levels = type == io::GgmlType::Q8_0 ? 127 : (type == io::GgmlType::Q4_0 || type == io::GgmlType::Q4_1) ? 7 : 15;
    Values back = testing::values(dequantize(q, Dtype::F32));
    for (size_t i = 0; i < back.size(); ++i) ASSERT_NEAR(back[i], wv.v[i], 1.0 / levels + 1e-3) << i;
  }
}

TEST(Quantized, BadLayoutsAreNamed) {
  Tensor bytes = zeros({2, 34}, Dtype::U8, Device::cpu());
  testing::expect_error([&] { quantized_matrix(bytes, io::GgmlType::Q8_0, 2, 64); },
                        {"needs u8 blocks [2,68], got u8 [2,34]"});
  testing::expect_error([&] { quantized_matrix(bytes, io::GgmlType::Q8_0, 2, 48); }, {"multiple of the block size 32"});
  testing::expect_error([&] { quantized_matrix(bytes, io::GgmlType::F16, 2, 17); }, {"F16 cannot be kept as blocks"});
  testing::expect_error([&] { quantized_matrix(zeros({2, 34}, Dtype::F32), io::GgmlType::Q8_0, 2, 32); },
                        {"needs u8 blocks [2,34], got f32 [2,34]"});
  QuantizedMatrix w = quantized_matrix(bytes, io::GgmlType::Q8_0, 2, 32);
  testing::expect_error([&] { linear(zeros({3, 31}, Dtype::F32), w); },
                        {"input [3,31] does not match the quantized weight [2,32]"});
  testing::expect_error([&] { linear(zeros({3, 32}, Dtype::F64), w); }, {"needs an f32, bf16 or f16 input, got f64"});
  testing::expect_error([&] { linear(zeros({3, 32}, Dtype::F32), w, zeros({3}, Dtype::F32)); },
                        {"bias [3] does not match the quantized weight [2,32]"});
  testing::expect_error([&] { quantize(zeros({2, 48}, Dtype::F32), io::GgmlType::Q8_0); }, {"multiple of 32"});
  testing::expect_error([&] { quantize(zeros({2, 256}, Dtype::F32), io::GgmlType::Q4_K); }, {"cannot quantize to Q4_K"});
  testing::expect_error([&] { dequantize(w, Dtype::I32); }, {"must be f32, bf16 or f16"});
}

}  // namespace
}  // namespace wick
