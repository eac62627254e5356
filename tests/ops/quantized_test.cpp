// Quantized weight matrices on every device: the dequantize op against io's reference dequantizers
// (themselves bit-exact with gguf-py) for every block type and output dtype, products and their
// input gradients against float64 math on the dequantized values, LoRA over a quantized base, lazy
// execution, quantization round trips and the errors for bad layouts.
#include "wick/core/quantized.h"

#include <gtest/gtest.h>

#include "support/ggml_blocks.h"
#include "support/testing.h"
#include "wick/base/error.h"

namespace wick {
namespace {

using namespace testing;

// The matrix of `w` (blocks on the CPU) as float64 values, dequantized by io (the reference).
Values reference_matrix(const QuantizedMatrix& w) {
  std::vector<float> f(size_t(w.rows * w.cols));
  ggml::dequantize_to_f32(w.type, w.blocks.data<uint8_t>(), w.rows * w.cols, f.data());
  return Values(f.begin(), f.end());
}

int64_t cols_for(ggml::GgmlType type, int64_t blocks = 2) { return ggml::ggml_type_info(type).block_size * blocks; }

// x[m, k] @ w[n, k]^T + bias, in float64.
Values product(const Values& x, const Values& w, const Values& bias, int64_t m, int64_t n, int64_t k) {
  Values out(size_t(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t c = 0; c < k; ++c) acc += x[size_t(i * k + c)] * w[size_t(j * k + c)];
      out[size_t(i * n + j)] = acc + (bias.empty() ? 0.0 : bias[size_t(j)]);
    }
  return out;
}

// f32 accumulation: the error bound scales with the largest sum |x w| of a row (K-quant values
// reach the hundreds), for |x| <= `x_max`.
double product_terms(const Values& w, int64_t n, int64_t k, double x_max) {
  double terms = 0;
  for (int64_t j = 0; j < n; ++j) {
    double row = 0;
    for (int64_t c = 0; c < k; ++c) row += std::abs(w[size_t(j * k + c)]) * x_max;
    terms = std::max(terms, row);
  }
  return terms;
}

WICK_DEVICE_SUITE(Quantized);

// Dequantized on the device, every type gives io's values: f32 exactly, bf16 as io rounds them,
// f16 as the f32 value rounded.
WICK_DEVICE_TEST(Quantized, DequantizeMatchesTheReferenceDequantizers) {
  for (ggml::GgmlType type : block_types()) {
    SCOPED_TRACE(std::string(ggml::ggml_type_name(type)));
    QuantizedMatrix cpu = random_blocks(type, 37, cols_for(type, 3), 11);
    QuantizedMatrix w = to_device(cpu, device());
    Values ref = reference_matrix(cpu);
    std::vector<float> f32 = dequantize(w, Dtype::F32).to_vector<float>();
    ASSERT_EQ(f32.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(f32[i], float(ref[i])) << "element " << i;
    std::vector<uint16_t> bf(ref.size());
    ggml::dequantize_to_bf16(type, cpu.blocks.data<uint8_t>(), cpu.rows * cpu.cols, bf.data());
    Tensor got_bf = to_device(dequantize(w, Dtype::BF16), Device::cpu());
    for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(got_bf.data<bf16>()[i].bits, bf[i]) << "element " << i;
    Tensor got_h = to_device(dequantize(w, Dtype::F16), Device::cpu());
    for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(got_h.data<f16>()[i].bits, f16(float(ref[i])).bits);
  }
}

WICK_DEVICE_TEST(Quantized, LinearMatchesFloat64OnTheDequantizedMatrix) {
  for (ggml::GgmlType type : block_types())
    for (int64_t rows : {6, 48}) {
      SCOPED_TRACE(str_cat(ggml::ggml_type_name(type), " rows ", rows));
      int64_t cols = cols_for(type, rows == 6 ? 2 : 3);
      QuantizedMatrix cpu = random_blocks(type, rows, cols, 23);
      QuantizedMatrix w = to_device(cpu, device());
      Values wv = reference_matrix(cpu);
      Rand x = rand({2, 3, cols}, Dtype::F32), bias = rand({rows}, Dtype::F32);
      expect_close(linear(x.t, w, bias.t), product(x.v, wv, bias.v, 6, rows, cols), {2, 3, rows},
                   Tol{1e-6 * product_terms(wv, rows, cols, 2.0), 1e-5});
      // bf16 inputs: the product accumulates in f32 and is rounded to bf16 (and again after the
      // bias). The CPU (and CUDA for many rows) first rounds the dequantized matrix to bf16, the
      // GPU's skinny kernel multiplies by the exact values: both are within 2^-8 of sum |x||w| of the
      // exact product over the bf16 inputs.
      Tensor xb = astype(x.t, Dtype::BF16), bb = astype(bias.t, Dtype::BF16);
      Values expect_bf = product(values(xb), wv, values(bb), 6, rows, cols);
      expect_close(linear(xb, w, bb), expect_bf, {2, 3, rows},
                   Tol{0.05 + 0x1p-8 * product_terms(wv, rows, cols, 2.0), 0.01});
    }
}

// With int8_activations the CPU quantizes up to 16 rows of x to 8-bit blocks of 32, or of 256 for
// the K-quants (a step of max|x| / 127 per block, so each x_j is off by at most max|x| / 254) and
// takes integer dot
// products: each output is within sum_j |w_j| * 2 / 254 of the exact product for |x| <= 2. More
// rows (and CUDA) multiply the dequantized matrix, well within that.
WICK_DEVICE_TEST(Quantized, LinearWithInt8ActivationsIsWithinEightBitRounding) {
  for (ggml::GgmlType type : block_types())
    for (int64_t m : {1, 3, 17}) {
      SCOPED_TRACE(str_cat(ggml::ggml_type_name(type), " m ", m));
      int64_t rows = 37, cols = cols_for(type, 3);
      QuantizedMatrix cpu = random_blocks(type, rows, cols, 29);
      QuantizedMatrix w = to_device(cpu, device());
      w.int8_activations = true;
      Values wv = reference_matrix(cpu);
      Rand x = rand({m, cols}, Dtype::F32);
      Tol tol{1.01 * product_terms(wv, rows, cols, 2.0 / 254) + 1e-6 * product_terms(wv, rows, cols, 2.0), 1e-5};
      expect_close(linear(x.t, w), product(x.v, wv, {}, m, rows, cols), {m, rows}, tol);
      // A strided input (every other column of a wider matrix) gives the same.
      Tensor wide = rand({m, 2 * cols}, Dtype::F32).t;
      Tensor strided = slice(wide, 1, 0, 2 * cols, 2);
      expect_close(linear(strided, w), product(values(contiguous(strided)), wv, {}, m, rows, cols), {m, rows}, tol);
      if (m == 1) {  // bf16 in and out: the same bound, plus bf16's rounding of the result
        Tensor xb = astype(x.t, Dtype::BF16);
        expect_close(linear(xb, w), product(values(xb), wv, {}, m, rows, cols), {m, rows},
                     Tol{tol.atol + 0x1p-8 * product_terms(wv, rows, cols, 2.0), 0.01});
      }
    }
}

WICK_DEVICE_TEST(Quantized, InputGradientIsTheProductWithTheMatrix) {
  for (ggml::GgmlType type : {ggml::GgmlType::Q4_0, ggml::GgmlType::Q5_1, ggml::GgmlType::Q8_0, ggml::GgmlType::Q3_K,
                            ggml::GgmlType::Q4_K, ggml::GgmlType::Q6_K})
    for (Dtype dt : {Dtype::F32, Dtype::BF16}) {
      SCOPED_TRACE(str_cat(ggml::ggml_type_name(type), " ", dtype_name(dt)));
      int64_t rows = 48, cols = cols_for(type, 3);
      QuantizedMatrix cpu = random_blocks(type, rows, cols, 31);
      QuantizedMatrix w = to_device(cpu, device());
      Values wv = reference_matrix(cpu);
      Rand x = rand({4, cols}, dt), r = rand({4, rows}, Dtype::F32);
      auto [value, grads] = value_and_grad(
          [&](const std::vector<Tensor>& in) { return sum(astype(linear(in[0], w), Dtype::F32) * r.t); }, {x.t});
      EXPECT_EQ(grads[0].dtype(), dt);
      // d/dx sum(r * (x W^T)) = r W.
      Values expect(size_t(4 * cols), 0.0);
      for (int64_t m = 0; m < 4; ++m)
        for (int64_t k = 0; k < cols; ++k)
          for (int64_t n = 0; n < rows; ++n)
            expect[size_t(m * cols + k)] += r.v[size_t(m * rows + n)] * wv[size_t(n * cols + k)];
      double terms = 0;
      for (double v : wv) terms = std::max(terms, std::abs(v) * 2.0 * double(rows));
      // bf16: r is rounded to bf16 before the product, and the gradient after it.
      Tol tol = dt == Dtype::F32 ? Tol{1e-6 * terms, 1e-5} : Tol{0.01 * terms, 0.02};
      expect_close(grads[0], expect, {4, cols}, tol);
      if (dt == Dtype::F32) {
        // The same through the dense matrix and the ordinary linear op.
        Tensor dense = dequantize(w, Dtype::F32);
        auto dense_grad = grad([&](const std::vector<Tensor>& in) { return sum(linear(in[0], dense) * r.t); }, {x.t});
        expect_tensors_close(grads[0], dense_grad[0], Tol{1e-6 * terms, 1e-5});
      }
    }
}

WICK_DEVICE_TEST(Quantized, LoraOverAQuantizedBaseGetsTheDenseBasesGradients) {
  int64_t rows = 8, cols = 64, rank = 4;
  QuantizedMatrix w = to_device(random_blocks(ggml::GgmlType::Q8_0, rows, cols, 5), device());
  Tensor dense = dequantize(w, Dtype::F32);
  Rand x = rand({3, cols}, Dtype::F32), a = rand({rank, cols}, Dtype::F32, -0.3, 0.3),
       b = rand({rows, rank}, Dtype::F32, -0.3, 0.3);
  auto loss = [&](auto base) {
    return [&, base](const std::vector<Tensor>& in) {
      return sum(square(lora_add(linear(in[0], base), in[0], in[1], in[2], 2.0)));
    };
  };
  auto q = value_and_grad(loss(w), {x.t, a.t, b.t});
  auto d = value_and_grad(loss(dense), {x.t, a.t, b.t});
  // The two bases take different product kernels (a skinny one over the blocks, cuBLAS over the
  // dense matrix) that sum the 64 terms in different orders, and the loss squares what they give:
  // a gradient's elements that are sums of terms of both signs err relative to the gradient's
  // largest element, not to their own size.
  Tol tol = scaled(tol_for(Dtype::F32), 10);
  expect_tensors_close(q.first, d.first, tol, "loss");
  for (size_t i = 0; i < 3; ++i) {
    double scale = 0;
    for (double g : values(d.second[i])) scale = std::max(scale, std::abs(g));
    expect_tensors_close(q.second[i], d.second[i], Tol{tol.rtol * scale, tol.rtol}, str_cat("gradient ", i));
  }
}

WICK_DEVICE_TEST(Quantized, LazyExecutionGivesTheEagerResult) {
  QuantizedMatrix w = to_device(random_blocks(ggml::GgmlType::Q4_1, 7, 64, 9), device());
  Rand x = rand({3, 64}, Dtype::F32);
  Tensor eager = linear(x.t, w);
  Tensor lazy;
  {
    ExecModeScope scope(ExecMode::Lazy);
    lazy = linear(x.t, w) * 1.0;
    lazy.eval();
  }
  EXPECT_EQ(eager.to_vector<float>(), lazy.to_vector<float>());
}

// Quantizing runs io's quantizers (bit-exact with gguf-py); the blocks land on the matrix's device.
WICK_DEVICE_TEST(Quantized, QuantizeRoundTripsWithinTheGridStep) {
  Rand wv = rand({4, 64}, Dtype::F32, -1, 1);
  for (ggml::GgmlType type :
       {ggml::GgmlType::Q8_0, ggml::GgmlType::Q4_0, ggml::GgmlType::Q4_1, ggml::GgmlType::Q5_0, ggml::GgmlType::Q5_1}) {
    SCOPED_TRACE(std::string(ggml::ggml_type_name(type)));
    QuantizedMatrix q = quantize(wv.t, type);
    EXPECT_EQ(q.shape(), Shape({4, 64}));
    EXPECT_EQ(q.device(), device());
    std::vector<uint8_t> bytes(ggml::ggml_nbytes(type, 256));
    std::vector<float> src(wv.v.begin(), wv.v.end());
    ggml::quantize_from_f32(type, src.data(), 256, bytes.data());
    EXPECT_EQ(q.blocks.to_vector<uint8_t>(), bytes);
    // Each block's step is its range over the levels (2^bits - 1 or 2^(bits-1)); error <= one step.
    double levels = type == ggml::GgmlType::Q8_0                                   ? 127
                    : (type == ggml::GgmlType::Q4_0 || type == ggml::GgmlType::Q4_1) ? 7
                                                                                 : 15;
    Values back = values(dequantize(q, Dtype::F32));
    for (size_t i = 0; i < back.size(); ++i) ASSERT_NEAR(back[i], wv.v[i], 1.0 / levels + 1e-3) << i;
  }
}

WICK_DEVICE_TEST(Quantized, BadLayoutsAreNamed) {
  Tensor bytes = zeros({2, 34}, Dtype::U8, device());
  expect_error([&] { quantized_matrix(bytes, ggml::GgmlType::Q8_0, 2, 64); }, {"needs u8 blocks [2,68], got u8 [2,34]"});
  expect_error([&] { quantized_matrix(bytes, ggml::GgmlType::Q8_0, 2, 48); }, {"multiple of the block size 32"});
  expect_error([&] { quantized_matrix(bytes, ggml::GgmlType::F16, 2, 17); }, {"F16 cannot be kept as blocks"});
  expect_error(
      [&] {
        quantized_matrix(zeros({2, 34}, Dtype::F32, device()), ggml::GgmlType::Q8_0, 2, 32);
      },
      {"needs u8 blocks [2,34], got f32 [2,34]"});
  QuantizedMatrix w = quantized_matrix(bytes, ggml::GgmlType::Q8_0, 2, 32);
  auto z = [&](const Shape& s, Dtype dt) { return zeros(s, dt, device()); };
  expect_error([&] { linear(z({3, 31}, Dtype::F32), w); }, {"input [3,31] does not match the quantized weight [2,32]"});
  expect_error([&] { linear(z({3, 32}, Dtype::F64), w); }, {"needs an f32, bf16 or f16 input, got f64"});
  expect_error(
      [&] {
        linear(z({3, 32}, Dtype::F32), w, z({3}, Dtype::F32));
      },
      {"bias [3] does not match the quantized weight [2,32]"});
  expect_error([&] { quantize(z({2, 48}, Dtype::F32), ggml::GgmlType::Q8_0); }, {"multiple of 32"});
  expect_error([&] { quantize(z({2, 256}, Dtype::F32), ggml::GgmlType::Q4_K); }, {"cannot quantize to Q4_K"});
  expect_error([&] { dequantize(w, Dtype::I32); }, {"must be f32, bf16 or f16"});
}

}  // namespace
}  // namespace wick
