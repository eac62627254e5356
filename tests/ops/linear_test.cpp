// linear_add on every device: dense and block-quantized weights, with and without bias and
// residual, at row counts the fused CUDA node takes and past them, against float64 sums of the
// weights' values and against the composition (linear, then adds: equal on the CPU, within the
// adds' roundings on CUDA, whose epilogue rounds once). An operand the skinny kernel cannot take
// (not 16-byte aligned) goes through the general product.
#include "support/testing.h"
#include "wick/core/ops/linear.h"
#include "wick/core/quantized.h"

namespace wick {
namespace {

using namespace testing;

WICK_DEVICE_SUITE(LinearAdd);

struct Form {
  const char* name;
  bool quantized;
  ggml::GgmlType type;
};

WICK_DEVICE_TEST(LinearAdd, MatchesFloat64AndTheComposition) {
  const int64_t k = 256, n = 40;
  const Form forms[] = {{"dense", false, ggml::GgmlType::F32}, {"q8_0", true, ggml::GgmlType::Q8_0},
                        {"q4_1", true, ggml::GgmlType::Q4_1}};
  for (Dtype dt : {Dtype::F32, Dtype::BF16})
    for (const Form& form : forms)
      for (int64_t m : dt == Dtype::F32 ? std::vector<int64_t>{1, 8, 9} : std::vector<int64_t>{1, 5, 64, 70})
        for (int variant = 0; variant < 4; ++variant) {
          const bool has_bias = variant & 1, has_residual = variant & 2;
          Rand x = rand({m, k}, dt, -1, 1), w = rand({n, k}, Dtype::F32, -1, 1);
          Rand b = rand({n}, dt, -1, 1), r = rand({m, n}, dt, -4, 4);
          // The weight as the product reads it: its own dtype, or dequantized blocks.
          QuantizedMatrix q;
          Tensor dense;
          Values wv;
          if (form.quantized) {
            q = quantize(to_device(w.t, Device::cpu()), form.type);
            wv = values(dequantize(q, Dtype::F32));
            q.blocks = here(q.blocks);
          } else {
            dense = astype(w.t, dt).eval();
            wv = values(dense);
          }
          Values want(size_t(m * n));
          for (int64_t i = 0; i < m; ++i)
            for (int64_t o = 0; o < n; ++o) {
              double acc = 0;
              for (int64_t j = 0; j < k; ++j) acc += x.v[size_t(i * k + j)] * wv[size_t(o * k + j)];
              if (has_bias) acc += b.v[size_t(o)];
              if (has_residual) acc += r.v[size_t(i * n + o)];
              want[size_t(i * n + o)] = acc;
            }
          std::optional<Tensor> ob = has_bias ? std::optional<Tensor>(b.t) : std::nullopt;
          std::optional<Tensor> orr = has_residual ? std::optional<Tensor>(r.t) : std::nullopt;
          Tensor got = form.quantized ? linear_add(x.t, q, ob, orr) : linear_add(x.t, dense, ob, orr);
          std::string what = str_cat(form.name, " ", dtype_name(dt), " m=", m, has_bias ? " bias" : "",
                                     has_residual ? " residual" : "");
          // f32: sums of k terms up to 1; bf16: up to three roundings of results up to ~30.
          Tol tol = dt == Dtype::F32 ? sum_tol(Dtype::F32, double(k) + 5) : Tol{0.1, 3 * 0x1p-8};
          expect_close(got, want, {m, n}, tol, what);
          Tensor composed = form.quantized ? linear(x.t, q) : linear(x.t, dense);
          if (has_bias) composed = composed + b.t;
          if (has_residual) composed = composed + r.t;
          // On CUDA the fused sum is rounded once, the composition's after each add.
          Tol exact = on_cuda() && dt == Dtype::BF16 ? Tol{0.05, 2 * 0x1p-8} : Tol{0, 0};
          if (on_cuda() && dt == Dtype::F32) exact = sum_tol(Dtype::F32, 8);
          expect_close(got, values(composed), {m, n}, exact, what + " against the composition");
        }
}

// x whose data is not 16-byte aligned (a view 1 element into its buffer) takes the general product.
WICK_DEVICE_TEST(LinearAdd, UnalignedInputTakesTheGeneralProduct) {
  const int64_t m = 3, k = 64, n = 24;
  Rand buf = rand({m * k + 1}, Dtype::BF16, -1, 1), w = rand({n, k}, Dtype::BF16, -1, 1);
  Rand b = rand({n}, Dtype::BF16, -1, 1), r = rand({m, n}, Dtype::BF16, -4, 4);
  Tensor x = reshape(narrow(buf.t, 0, 1, m * k), {m, k});
  Values want(size_t(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t o = 0; o < n; ++o) {
      double acc = b.v[size_t(o)] + r.v[size_t(i * n + o)];
      for (int64_t j = 0; j < k; ++j) acc += buf.v[size_t(1 + i * k + j)] * w.v[size_t(o * k + j)];
      want[size_t(i * n + o)] = acc;
    }
  expect_close(linear_add(x, w.t, b.t, r.t), want, {m, n}, Tol{0.1, 3 * 0x1p-8}, "unaligned bf16 input");
  QuantizedMatrix q = quantize(to_device(w.t, Device::cpu()), ggml::GgmlType::Q8_0);
  Values wq = values(dequantize(q, Dtype::F32));
  q.blocks = here(q.blocks);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t o = 0; o < n; ++o) {
      double acc = b.v[size_t(o)] + r.v[size_t(i * n + o)];
      for (int64_t j = 0; j < k; ++j) acc += buf.v[size_t(1 + i * k + j)] * wq[size_t(o * k + j)];
      want[size_t(i * n + o)] = acc;
    }
  expect_close(linear_add(x, q, b.t, r.t), want, {m, n}, Tol{0.1, 3 * 0x1p-8}, "unaligned bf16 input, q8_0");
}

// A matrix large enough that cuBLASLt serves the fused node on CUDA (the residual as its C operand,
// the bias added after).
WICK_DEVICE_TEST(LinearAdd, LargeMatricesTakeTheGemmWithTheResidualAsC) {
  const int64_t m = 2, k = 2048, n = 4100;
  Rand x = rand({m, k}, Dtype::BF16, -1, 1), w = rand({n, k}, Dtype::BF16, -1, 1);
  Rand b = rand({n}, Dtype::BF16, -1, 1), r = rand({m, n}, Dtype::BF16, -4, 4);
  Values want(size_t(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t o = 0; o < n; ++o) {
      double acc = b.v[size_t(o)] + r.v[size_t(i * n + o)];
      for (int64_t j = 0; j < k; ++j) acc += x.v[size_t(i * k + j)] * w.v[size_t(o * k + j)];
      want[size_t(i * n + o)] = acc;
    }
  // Results up to ~150: bf16 rounds them to within 0.5 (three roundings of the composition).
  expect_close(linear_add(x.t, w.t, b.t, r.t), want, {m, n}, Tol{0.25, 3 * 0x1p-8}, "bf16 4100 x 2048");
  expect_close(linear_add(x.t, w.t, std::nullopt, r.t), values(linear(x.t, w.t) + r.t), {m, n},
               Tol{0.25, 3 * 0x1p-8}, "bf16 4100 x 2048, residual, against the composition");
}

// A residual passed with std::move and held nowhere else: on CUDA the result takes its memory (the
// skinny epilogue and the general product sum in place); the values are those of a held residual.
WICK_DEVICE_TEST(LinearAdd, AResidualMovedInIsSummedInPlace) {
  for (int64_t m : {4, 32})
    for (int64_t n : {40, 4100}) {
      const int64_t k = 256;
      Tensor x = rand({m, k}, Dtype::BF16, -1, 1).t, w = rand({n, k}, Dtype::BF16, -1, 1).t;
      Tensor b = rand({n}, Dtype::BF16, -1, 1).t, r = rand({m, n}, Dtype::BF16, -4, 4).t.eval();
      std::string what = str_cat("m ", m, " n ", n);
      Values held = values(linear_add(x, w, b, r));  // r stays held by this test
      const void* memory = r.data_ptr();
      Tensor y = linear_add(x, w, b, std::move(r)).eval();
      EXPECT_EQ(values(y), held) << what;
      if (on_cuda()) EXPECT_EQ(y.data_ptr(), memory) << what << ": the residual's memory was not taken over";
    }
}

WICK_DEVICE_TEST(LinearAdd, BadShapesAreNamed) {
  Rand x = rand({2, 32}, Dtype::F32), w = rand({8, 32}, Dtype::F32);
  expect_error([&] { linear_add(x.t, w.t, rand({7}, Dtype::F32).t, std::nullopt); }, {"linear_add", "bias", "[8]"});
  expect_error([&] { linear_add(x.t, w.t, std::nullopt, rand({2, 9}, Dtype::F32).t); },
               {"linear_add", "residual", "[2, 8]"});
  expect_error([&] { linear_add(rand({2, 31}, Dtype::F32).t, w.t, std::nullopt, std::nullopt); },
               {"linear_add", "does not match"});
}

}  // namespace
}  // namespace wick
