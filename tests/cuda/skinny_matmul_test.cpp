// The skinny-product kernels (backend/cuda/gemv*) against float64 references: every weight type,
// activation and output dtype, row count and split, on random blocks; the quantized row gather
// bit for bit against the CPU dequantizer; the decoders themselves on the host (no GPU needed).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "support/ggml_blocks.h"
#include "support/testing.h"
#include "wick/backend/cuda/gemv.h"
#include "wick/backend/cuda/gemv_launch.cuh"
#include "wick/backend/cuda/runtime.h"
#include "wick/base/half.h"
#include "wick/core/quantized.h"

namespace wick::test {
namespace {

using ggml::ggml_type_name;
using ggml::GgmlType;
using testing::Tol;

Tensor on_gpu(const Tensor& x) { return to_device(x, Device::cuda(0)); }
Tensor on_cpu(const Tensor& x) { return to_device(x, Device::cpu()); }
// Random normal values of `dtype` on the CPU (rounded to the dtype, so both backends see the same data).
Tensor randn(const Shape& shape, Dtype dtype) { return astype(normal(shape, 0, 1, Dtype::F32, Device::cpu()), dtype).eval(); }
// GPU against CPU products whose sums run in different orders: a few roundings of the dtype.
Tol gpu_tol(Dtype dtype) {
  if (dtype == Dtype::BF16) return {2e-2, 2e-2};
  if (dtype == Dtype::F16) return {5e-3, 5e-3};
  return {2e-5, 2e-5};
}
using namespace wick::cuda::gemv;

// ---- host data

int64_t unit_k(GgmlType type) { return ggml::ggml_type_info(type).block_size == 256 ? 256 : 32; }
bool is_dense_type(GgmlType type) { return type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16; }
Dtype dense_dtype(GgmlType type) {
  return type == GgmlType::F32 ? Dtype::F32 : type == GgmlType::F16 ? Dtype::F16 : Dtype::BF16;
}

// Values rounded to `dtype` and their bytes.
struct Rounded {
  std::vector<float> values;
  std::vector<uint8_t> bytes;
};
Rounded round_to(const std::vector<float>& v, Dtype dtype) {
  Rounded r;
  r.bytes.resize(v.size() * dtype_size(dtype));
  for (size_t i = 0; i < v.size(); ++i) {
    float x = v[i];
    if (dtype == Dtype::BF16) {
      uint16_t h = bf16::from_float(x);
      std::memcpy(&r.bytes[2 * i], &h, 2);
      x = float(bf16(x));
    } else if (dtype == Dtype::F16) {
      uint16_t h = f16::from_float(x);
      std::memcpy(&r.bytes[2 * i], &h, 2);
      x = f16::to_float(h);
    } else {
      std::memcpy(&r.bytes[4 * i], &x, 4);
    }
    r.values.push_back(x);
  }
  return r;
}
float value_at(const std::vector<uint8_t>& bytes, Dtype dtype, size_t i) {
  if (dtype == Dtype::BF16) {
    uint16_t h;
    std::memcpy(&h, &bytes[2 * i], 2);
    return bits_float(uint32_t(h) << 16);
  }
  if (dtype == Dtype::F16) {
    uint16_t h;
    std::memcpy(&h, &bytes[2 * i], 2);
    return f16::to_float(h);
  }
  float f;
  std::memcpy(&f, &bytes[4 * i], 4);
  return f;
}

std::vector<float> normal_values(size_t count, std::mt19937_64& gen, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(count);
  for (float& x : v) x = dist(gen);
  return v;
}

// A weight [n, k] of `type` with its exact values: 32-element blocks quantized from normal values
// by ggml::quantize_from_f32, K-quants random bytes with sane f16 scales, dense types normal values.
struct Weight {
  std::vector<uint8_t> bytes;
  std::vector<float> values;
};
Weight make_weight(GgmlType type, int64_t n, int64_t k, uint64_t seed) {
  std::mt19937_64 gen(seed);
  Weight w;
  if (is_dense_type(type)) {
    Rounded r = round_to(normal_values(size_t(n * k), gen), dense_dtype(type));
    w.bytes = std::move(r.bytes);
    w.values = std::move(r.values);
    return w;
  }
  if (ggml::ggml_quantizable(type)) {
    std::vector<float> v = normal_values(size_t(n * k), gen);
    w.bytes.resize(ggml::ggml_nbytes(type, n * k));
    ggml::quantize_from_f32(type, v.data(), n * k, w.bytes.data());
  } else {
    QuantizedMatrix q = wick::testing::random_blocks(type, n, k, seed);
    w.bytes.resize(size_t(q.blocks.numel()));
    copy_to_host(q.blocks, w.bytes.data());
  }
  w.values.resize(size_t(n * k));
  ggml::dequantize_to_f32(type, w.bytes.data(), n * k, w.values.data());
  return w;
}

// ---- the decoders on the host

TEST(SkinnyDecoders, EveryLaneStepGivesTheCpuDequantizedValues) {
  for (GgmlType type : wick::testing::block_types()) {
    SCOPED_TRACE(std::string(ggml_type_name(type)));
    const int64_t rows = 3, k = 2 * unit_k(type);
    QuantizedMatrix q = wick::testing::random_blocks(type, rows, k, 11);
    std::vector<uint8_t> bytes(size_t(q.blocks.numel()));
    copy_to_host(q.blocks, bytes.data());
    std::vector<float> want(size_t(rows * k));
    ggml::dequantize_to_f32(type, bytes.data(), rows * k, want.data());
    const int64_t row_bytes = int64_t(ggml::ggml_nbytes(type, k));
    with_format(type, [&]<class Dec, typename T>() {
      if constexpr (!is_dense<Dec>()) {
        for (int64_t r = 0; r < rows; ++r) {
          std::vector<int> seen(size_t(k), 0);
          for (int64_t u = 0; u < k / Dec::kUnitK; ++u) {
            const uint8_t* unit = bytes.data() + r * row_bytes + u * Dec::kUnitBytes;
            for (int s = 0; s < Dec::kUnitK / 32; ++s) {
              for (int t = 0; t < 4; ++t) {
                QuantStep st = Dec::step(unit, s, t);
                for (int h = 0; h < 2; ++h) {
                  if constexpr (!Dec::kScalePer16) {
                    EXPECT_EQ(st.scale[0], st.scale[1]);
                  }
                  for (int e = 0; e < 4; ++e) {
                    int64_t col = u * Dec::kUnitK + 32 * s + slot_start<Dec::kLayout>(t, h) + e;
                    ASSERT_LT(col, k);
                    ++seen[size_t(col)];
                    float p = st.scale[h] * quant_value<Dec>(st.q[h], e);
                    float got = p - st.min[h];
                    ASSERT_EQ(got, want[size_t(r * k + col)]) << "row " << r << " col " << col << " lane " << t;
                  }
                }
              }
            }
          }
          for (int64_t col = 0; col < k; ++col) ASSERT_EQ(seen[size_t(col)], 1) << "col " << col;
        }
      }
    });
  }
}

template <Operand O>
float operand_value(uint32_t bits) {
  return O == Operand::BF16 ? bits_float(bits << 16) : f16::to_float(uint16_t(bits));
}

// Every quant byte a format produces becomes, in the tensor-core operands, exactly q - zero point.
TEST(SkinnyDecoders, TensorCoreOperandsHoldTheQuantsExactly) {
  for (GgmlType type : wick::testing::block_types()) {
    SCOPED_TRACE(std::string(ggml_type_name(type)));
    with_format(type, [&]<class Dec, typename T>() {
      if constexpr (!is_dense<Dec>()) {
        for (uint32_t b = 0; b < 256; ++b) {
          // Bytes the format can produce: int8 for Q8_0, else up to its bits (6 for Q6_K).
          if (!Dec::kSigned && b >= 64) break;
          uint32_t q = b | ((b + 1) & 0xFF) << 8 | ((b + 2) & 0xFF) << 16 | ((b + 3) & 0xFF) << 24;
          if (!Dec::kSigned && ((b + 3) & 0xFF) >= 64) continue;
          auto check = [&]<Operand O>() {
            uint32_t lo, hi;
            quant_pairs<Dec, O>(q, lo, hi);
            const uint32_t regs[2] = {lo, hi};
            for (int e = 0; e < 4; ++e) {
              float want = quant_value<Dec>(q, e);
              float got = operand_value<O>(e < 2 ? regs[0] >> (16 * e) : regs[1] >> (16 * (e - 2)));
              ASSERT_EQ(got, want) << "byte " << ((q >> (8 * e)) & 0xFF) << " element " << e;
            }
          };
          check.template operator()<Operand::BF16>();
          check.template operator()<Operand::F16>();
        }
      }
    });
  }
}

// The copies a warp issues into its shared-memory stage (stage_copy, as the kernel issues them)
// bring every unit of every row of a chunk to where the decoders look for it (stage_delta), read no
// byte outside the matrix, and fit the stage's rows: simulated on the host for every block type,
// both tile heights, partial tiles and chunks.
TEST(SkinnyDecoders, StagedChunksHoldEachRowsUnits) {
  for (GgmlType type : wick::testing::block_types()) {
    SCOPED_TRACE(std::string(ggml_type_name(type)));
    with_format(type, [&]<class Dec, typename T>() {
      if constexpr (!is_dense<Dec>()) {
        auto check = [&]<int WR>() {
          constexpr int kChunk = chunk_units<Dec>(WR), kStride = stage_stride<Dec>(WR), kSlots = kStride / 16;
          for (int64_t n : {1, 5, 13, 37}) {
            const int units = 11;
            const int64_t row_bytes = int64_t(units) * Dec::kUnitBytes, total = n * row_bytes;
            std::vector<uint8_t> w(static_cast<size_t>(total));
            for (size_t i = 0; i < w.size(); ++i) w[i] = uint8_t(i * 131 + 7);
            for (int64_t row0 = 0; row0 < n; row0 += WR) {
              for (int u0 = 0; u0 < units; u0 += kChunk) {
                const int count = std::min(kChunk, units - u0);
                std::vector<uint8_t> stage(size_t(WR * kStride), 0xEE);
                for (int v = 0; v < WR * kSlots; ++v) {
                  StageCopy c = stage_copy<Dec, WR>(v, row0, n, row_bytes, u0, count);
                  ASSERT_TRUE(c.row >= 0 && c.row < WR && c.slot >= 0 && c.slot < kSlots);
                  if (c.bytes == 0) continue;
                  ASSERT_TRUE(c.src >= 0 && c.src % 16 == 0 && c.bytes <= 16 && c.src + c.bytes <= total) << c.src;
                  uint8_t* dst = stage.data() + c.row * kStride + 16 * c.slot;
                  std::fill_n(dst, 16, 0);
                  std::copy_n(w.begin() + c.src, c.bytes, dst);
                }
                for (int r = 0; r < WR; ++r) {
                  const int64_t row = std::min(row0 + r, n - 1);
                  const int delta = stage_delta<Dec>(row, row_bytes, u0);
                  ASSERT_LE(delta + count * Dec::kUnitBytes, kStride);
                  const uint8_t* got = stage.data() + r * kStride + delta;
                  const uint8_t* want = w.data() + row * row_bytes + int64_t(u0) * Dec::kUnitBytes;
                  ASSERT_TRUE(std::equal(got, got + count * Dec::kUnitBytes, want))
                      << "tile rows " << WR << ", n " << n << ", row " << row << ", units from " << u0;
                }
              }
            }
          }
        };
        check.template operator()<8>();
        check.template operator()<16>();
      }
    });
  }
}

// ---- products on the GPU

struct Product {
  GgmlType type;
  Dtype x_dtype, y_dtype;
  int64_t m, n, k;
  bool has_bias = false;
  Dtype bias_dtype = Dtype::F32;
};

std::string describe(const Product& p) {
  return std::string(ggml_type_name(p.type)) + " x=" + dtype_name(p.x_dtype) + " y=" + dtype_name(p.y_dtype) +
         " m=" + std::to_string(p.m) + " n=" + std::to_string(p.n) + " k=" + std::to_string(p.k) +
         (p.has_bias ? std::string(" bias=") + dtype_name(p.bias_dtype) : "");
}

Tensor device_bytes(const std::vector<uint8_t>& bytes) {
  return Tensor::from_data(bytes.data(), {int64_t(bytes.size())}, Dtype::U8, Device::cuda(0));
}

// Runs the product (under `config` when given) and compares every output with the float64
// reference: |got - ref| <= 2e-5 * sum |x w| (f32 sums in another order) + the output dtype's
// rounding of |ref|. The output is poisoned (NaN) before the run, with a guard past its end.
::testing::AssertionResult check_product(const Product& p, uint64_t seed,
                                         const std::optional<cuda::SkinnyConfig>& config = std::nullopt) {
  std::mt19937_64 gen(seed);
  Weight w = make_weight(p.type, p.n, p.k, seed + 1);
  Rounded x = round_to(normal_values(size_t(p.m * p.k), gen), p.x_dtype);
  Rounded bias = round_to(normal_values(size_t(p.n), gen), p.bias_dtype);
  Tensor wd = device_bytes(w.bytes), xd = device_bytes(x.bytes), bd = device_bytes(bias.bytes);
  const int64_t guard = 64, out_count = p.m * p.n + guard;
  const size_t y_item = dtype_size(p.y_dtype);
  Tensor yd = Tensor::empty({int64_t(out_count * y_item)}, Dtype::U8, Device::cuda(0));
  cudaStream_t stream = cuda::stream(0);
  EXPECT_EQ(cudaMemsetAsync(yd.data_ptr(), 0xFF, size_t(out_count) * y_item, stream), cudaSuccess);
  cuda::SkinnyWeight sw{static_cast<const uint8_t*>(wd.data_ptr()), p.type, p.n, p.k};
  const void* bptr = p.has_bias ? bd.data_ptr() : nullptr;
  if (config)
    cuda::skinny_matmul(sw, xd.data_ptr(), p.x_dtype, p.m, yd.data_ptr(), p.y_dtype, bptr, p.bias_dtype, stream,
                        *config);
  else
    cuda::skinny_matmul(sw, xd.data_ptr(), p.x_dtype, p.m, yd.data_ptr(), p.y_dtype, bptr, p.bias_dtype, stream);
  std::vector<uint8_t> y(size_t(out_count) * y_item);
  copy_to_host(yd, y.data());

  const double out_rtol = p.y_dtype == Dtype::BF16 ? 1.0 / 256 : p.y_dtype == Dtype::F16 ? 1.0 / 1024 : 0.0;
  int64_t bad = 0;
  std::string first;
  for (int64_t r = 0; r < p.m; ++r) {
    for (int64_t j = 0; j < p.n; ++j) {
      double ref = 0, mag = 0;
      for (int64_t c = 0; c < p.k; ++c) {
        double prod = double(x.values[size_t(r * p.k + c)]) * double(w.values[size_t(j * p.k + c)]);
        ref += prod;
        mag += std::abs(prod);
      }
      if (p.has_bias) {
        ref += bias.values[size_t(j)];
        mag += std::abs(bias.values[size_t(j)]);
      }
      double got = value_at(y, p.y_dtype, size_t(r * p.n + j));
      double tol = 2e-5 * mag + out_rtol * std::abs(ref) + 1e-30;
      if (!(std::abs(got - ref) <= tol)) {
        if (bad++ == 0)
          first = "y[" + std::to_string(r) + ", " + std::to_string(j) + "] = " + std::to_string(got) + ", want " +
                  std::to_string(ref) + " (tolerance " + std::to_string(tol) + ")";
      }
    }
  }
  for (int64_t i = p.m * p.n; i < out_count; ++i) {
    if (!std::isnan(value_at(y, p.y_dtype, size_t(i)))) {
      return ::testing::AssertionFailure() << describe(p) << ": wrote past the output, element " << i;
    }
  }
  if (bad > 0) return ::testing::AssertionFailure() << describe(p) << ": " << bad << " outputs differ; first " << first;
  return ::testing::AssertionSuccess();
}

std::vector<GgmlType> all_weight_types() {
  std::vector<GgmlType> types{GgmlType::BF16, GgmlType::F16, GgmlType::F32};
  for (GgmlType t : wick::testing::block_types()) types.push_back(t);
  return types;
}

std::vector<Dtype> activation_dtypes(GgmlType type) {
  if (is_dense_type(type)) return {dense_dtype(type)};
  return {Dtype::BF16, Dtype::F16, Dtype::F32};
}

TEST(SkinnyMatmul, EveryTypeDtypeAndRowCountMatchesFloat64) {
  WICK_REQUIRE_GPU();
  const Dtype bias_dtypes[3] = {Dtype::BF16, Dtype::F16, Dtype::F32};
  uint64_t seed = 100;
  for (GgmlType type : all_weight_types()) {
    for (Dtype x_dtype : activation_dtypes(type)) {
      for (int64_t m : {1, 2, 3, 7, 8, 16, 33, 64}) {
        for (int64_t n : {1, 37, 257}) {
          Product p{type, x_dtype, seed % 2 ? Dtype::F32 : x_dtype, m, n, 3 * unit_k(type)};
          p.has_bias = seed % 3 != 0;
          p.bias_dtype = bias_dtypes[seed % 3];
          EXPECT_TRUE(check_product(p, seed++));
        }
      }
    }
  }
}

// Long rows through explicit splits: several chunks per warp (both shared-memory stages in turn),
// k split unevenly between warps, several tiles per block with the last tiles past n.
TEST(SkinnyMatmul, SplitsPipelinesAndPartialTilesMatchFloat64) {
  WICK_REQUIRE_GPU();
  uint64_t seed = 5000;
  for (GgmlType type : {GgmlType::BF16, GgmlType::F32, GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q3_K,
                        GgmlType::Q4_K, GgmlType::Q6_K}) {
    const int64_t k = unit_k(type) == 256 ? 7 * 256 : 37 * 32;
    for (Dtype x_dtype : activation_dtypes(type)) {
      for (int64_t m : {1, 5, 20, 64}) {
        if (x_dtype == Dtype::F32 && m > 8) continue;  // f32 runs 8 rows a launch: covered above
        const int x_tiles = x_dtype == Dtype::F32 || m <= 8 ? 1 : m <= 16 ? 2 : m <= 32 ? 4 : 8;
        std::vector<cuda::SkinnyConfig> configs{{x_tiles, 1, 1}, {x_tiles, 1, 4}, {x_tiles, 3, 1}, {x_tiles, 2, 2}};
        if (x_tiles == 1) configs.push_back({x_tiles, 7, 1});
        for (const cuda::SkinnyConfig& config : configs) {
          Product p{type, x_dtype, x_dtype, m, 45, k, true, Dtype::F32};
          SCOPED_TRACE("k_warps " + std::to_string(config.k_warps) + " tiles_per_block " +
                       std::to_string(config.tiles_per_block));
          EXPECT_TRUE(check_product(p, seed++, config));
        }
      }
    }
  }
}

// The product is captured into a CUDA graph on a stream of its own and replayed.
TEST(SkinnyMatmul, RunsInsideACapturedGraph) {
  WICK_REQUIRE_GPU();
  const int64_t m = 4, n = 300, k = 512;
  Weight w = make_weight(GgmlType::Q4_K, n, k, 7);
  std::mt19937_64 gen(8);
  Rounded x = round_to(normal_values(size_t(m * k), gen), Dtype::BF16);
  Tensor wd = device_bytes(w.bytes), xd = device_bytes(x.bytes);
  Tensor yd = Tensor::empty({m * n}, Dtype::F32, Device::cuda(0));
  const cuda::SkinnyWeight sw{static_cast<const uint8_t*>(wd.data_ptr()), GgmlType::Q4_K, n, k};
  cuda::synchronize(0);  // the uploads ran on the backend's stream; the graph runs on its own
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  // One eager run first, as a decode loop warms up before it captures (and so that a lazily loaded
  // kernel is loaded outside the capture).
  cuda::skinny_matmul(sw, xd.data_ptr(), Dtype::BF16, m, yd.data_ptr(), Dtype::F32, nullptr, Dtype::F32, s);
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  try {
    cuda::skinny_matmul(sw, xd.data_ptr(), Dtype::BF16, m, yd.data_ptr(), Dtype::F32, nullptr, Dtype::F32, s);
  } catch (...) {
    cudaStreamEndCapture(s, &graph);  // leave the stream usable for the tests that follow
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    throw;
  }
  ASSERT_EQ(cudaStreamEndCapture(s, &graph), cudaSuccess);
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(yd.data_ptr(), 0xFF, size_t(m * n) * 4, s), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  std::vector<float> y = yd.to_vector<float>();
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t j = 0; j < n; ++j) {
      double ref = 0, mag = 0;
      for (int64_t c = 0; c < k; ++c) {
        double prod = double(x.values[size_t(r * k + c)]) * w.values[size_t(j * k + c)];
        ref += prod;
        mag += std::abs(prod);
      }
      ASSERT_NEAR(y[size_t(r * n + j)], ref, 2e-5 * mag) << r << ", " << j;
    }
  }
  EXPECT_EQ(cudaGraphExecDestroy(exec), cudaSuccess);
  EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(s), cudaSuccess);
}

// Bad operands are refused on the host, naming the problem, before any launch (no GPU needed:
// the pointers are never dereferenced).
TEST(SkinnyMatmul, RejectsWhatItCannotTake) {
  const auto* fake = reinterpret_cast<const uint8_t*>(uintptr_t(0x10000));
  void* out = reinterpret_cast<void*>(uintptr_t(0x20000));
  auto problem = [&](cuda::SkinnyWeight w, const void* x, Dtype x_dtype, int64_t m, Dtype y_dtype) {
    return cuda::skinny_matmul_problem(w, x, x_dtype, m, y_dtype);
  };
  EXPECT_EQ(problem({fake, GgmlType::Q4_0, 10, 64}, fake, Dtype::BF16, 3, Dtype::F32), "");
  EXPECT_NE(problem({fake, GgmlType::Q4_K, 10, 128}, fake, Dtype::BF16, 3, Dtype::BF16).find("multiple of 256"),
            std::string::npos);
  EXPECT_NE(problem({fake, GgmlType::BF16, 10, 48}, fake, Dtype::BF16, 3, Dtype::BF16).find("multiple of 32"),
            std::string::npos);
  EXPECT_NE(problem({fake, GgmlType::Q4_0, 10, 64}, fake, Dtype::BF16, 65, Dtype::BF16).find("1..64"),
            std::string::npos);
  EXPECT_NE(problem({fake, GgmlType::Q4_0, 10, 64}, fake, Dtype::BF16, 0, Dtype::BF16).find("1..64"),
            std::string::npos);
  EXPECT_NE(problem({fake, GgmlType::BF16, 10, 64}, fake, Dtype::F16, 3, Dtype::F16).find("do not pair"),
            std::string::npos);
  EXPECT_NE(problem({fake, GgmlType::Q8_0, 10, 64}, fake, Dtype::I32, 3, Dtype::F32).find("do not pair"),
            std::string::npos);
  EXPECT_NE(problem({fake, GgmlType::Q8_0, 10, 64}, fake, Dtype::BF16, 3, Dtype::F16).find("output dtype"),
            std::string::npos);
  EXPECT_NE(problem({fake + 2, GgmlType::Q8_0, 10, 64}, fake, Dtype::BF16, 3, Dtype::F32).find("16-byte"),
            std::string::npos);
  EXPECT_NE(problem({fake, GgmlType::Q8_0, 10, 64}, fake + 8, Dtype::BF16, 3, Dtype::F32).find("16-byte"),
            std::string::npos);
  EXPECT_NE(problem({fake, GgmlType::IQ4_NL, 10, 64}, fake, Dtype::BF16, 3, Dtype::F32).find("IQ4_NL"),
            std::string::npos);
  EXPECT_THROW(cuda::skinny_matmul({fake, GgmlType::Q4_0, 10, 64}, fake, Dtype::BF16, 9, out, Dtype::BF16, nullptr,
                                   Dtype::F32, nullptr, cuda::SkinnyConfig{1, 1, 1}),
               Error);  // one tile of 8 rows cannot hold 9
  EXPECT_THROW(cuda::skinny_matmul({fake, GgmlType::Q4_0, 10, 64}, fake, Dtype::BF16, 4, out, Dtype::BF16, nullptr,
                                   Dtype::F32, nullptr, cuda::SkinnyConfig{1, 17, 1}),
               Error);  // 544 threads
  EXPECT_THROW(cuda::skinny_matmul({fake, GgmlType::Q4_0, 10, 64}, fake, Dtype::BF16, 4, out, Dtype::BF16, fake,
                                   Dtype::I64, nullptr, cuda::SkinnyConfig{1, 1, 1}),
               Error);  // bias dtype
}

// The split chosen for the decode shapes of Qwen2.5-0.5B stays within the kernel's limits.
TEST(SkinnyMatmul, ChosenSplitsAreValid) {
  const auto* fake = reinterpret_cast<const uint8_t*>(uintptr_t(0x10000));
  for (GgmlType type : all_weight_types()) {
    for (auto [n, k] : {std::pair<int64_t, int64_t>{896, 896},
                        {128, 896},
                        {1152, 896},
                        {9728, 896},
                        {896, 4864},
                        {151936, 896},
                        {1, 256},
                        {37, 768}}) {
      if (k % unit_k(type) != 0) continue;
      for (Dtype x_dtype : activation_dtypes(type)) {
        for (int64_t m : {1, 8, 9, 16, 17, 33, 64}) {
          cuda::SkinnyWeight w{fake, type, n, k};
          cuda::SkinnyConfig c = cuda::skinny_config(w, m, x_dtype, 132);
          SCOPED_TRACE(std::string(ggml_type_name(type)) + " " + std::to_string(n) + "x" + std::to_string(k) +
                       " m=" + std::to_string(m));
          EXPECT_GE(c.k_warps, 1);
          EXPECT_GE(c.tiles_per_block, 1);
          EXPECT_LE(32 * c.k_warps * c.tiles_per_block, x_dtype == Dtype::F32 || c.x_tiles >= 4 ? 256 : 512);
          EXPECT_TRUE(x_dtype == Dtype::F32 ? c.x_tiles == 1 : 8 * c.x_tiles >= m);
          with_format(type, [&]<class Dec, typename T>() { EXPECT_LE(skinny_smem_bytes<Dec>(c), 48 * 1024); });
        }
      }
    }
  }
}

// ---- the row gather

TEST(SkinnyGather, RowsMatchTheCpuDequantizerBitForBit) {
  WICK_REQUIRE_GPU();
  const int64_t n = 37;
  std::vector<int64_t> ids{5, 0, 36, 5, 17, 2, 36};
  uint64_t seed = 900;
  for (GgmlType type : all_weight_types()) {
    const int64_t k = is_dense_type(type) ? 70 : 2 * unit_k(type);
    Weight w = make_weight(type, n, k, seed++);
    Tensor wd = device_bytes(w.bytes);
    for (Dtype out_dtype : {Dtype::F32, Dtype::BF16, Dtype::F16}) {
      for (Dtype ids_dtype : {Dtype::I32, Dtype::I64}) {
        SCOPED_TRACE(std::string(ggml_type_name(type)) + " -> " + dtype_name(out_dtype) + ", ids " +
                     dtype_name(ids_dtype));
        Tensor idd = astype(Tensor::from_vector(ids, {int64_t(ids.size())}), ids_dtype).eval();
        idd = on_gpu(idd);
        const int64_t count = int64_t(ids.size());
        Tensor out = Tensor::empty({count, k}, out_dtype, Device::cuda(0));
        cudaStream_t stream = cuda::stream(0);
        ASSERT_EQ(cudaMemsetAsync(out.data_ptr(), 0xFF, size_t(count * k) * dtype_size(out_dtype), stream),
                  cudaSuccess);
        cuda::embedding_gather({static_cast<const uint8_t*>(wd.data_ptr()), type, n, k}, idd.data_ptr(), ids_dtype,
                               count, out.data_ptr(), out_dtype, stream);
        // The reference: the CPU's dequantized (or dense) rows, rounded to out_dtype.
        std::vector<float> rows(size_t(count * k));
        for (int64_t i = 0; i < count; ++i) std::copy_n(w.values.begin() + ids[size_t(i)] * k, k, rows.begin() + i * k);
        Rounded want = round_to(rows, out_dtype);
        std::vector<uint8_t> got(want.bytes.size());
        copy_to_host(out, got.data());
        EXPECT_EQ(got, want.bytes);
      }
    }
  }
}

TEST(SkinnyGather, AnIdOutOfRangeIsReportedAndGivesZeros) {
  WICK_REQUIRE_GPU();
  const int64_t n = 10, k = 64;
  Weight w = make_weight(GgmlType::Q8_0, n, k, 3);
  Tensor wd = device_bytes(w.bytes);
  Tensor ids = on_gpu(Tensor::from_vector(std::vector<int32_t>{1, 10}, {2}));
  Tensor out = Tensor::empty({2, k}, Dtype::F32, Device::cuda(0));
  cuda::embedding_gather({static_cast<const uint8_t*>(wd.data_ptr()), GgmlType::Q8_0, n, k}, ids.data_ptr(), Dtype::I32,
                         2, out.data_ptr(), Dtype::F32, cuda::stream(0));
  EXPECT_THROW(cuda::synchronize(0), Error);
  std::vector<float> got = out.to_vector<float>();
  for (int64_t c = 0; c < k; ++c) {
    EXPECT_EQ(got[size_t(c)], w.values[size_t(k + c)]);
    EXPECT_EQ(got[size_t(k + c)], 0.0f);
  }
}

// ---- the ops that use the skinny kernel (linear over blocks, dense linear at a few rows)

// The kernel multiplies by the exact dequantized weights, as the CPU does in f32; the CPU's bf16
// and f16 paths round the dequantized matrix to that dtype first, so the reference is the CPU's f32
// product rounded once at the end.
TEST(SkinnyMatmul, WiredLinearsMatchTheCpu) {
  WICK_REQUIRE_GPU();
  for (GgmlType type : {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q5_1, GgmlType::Q4_K, GgmlType::Q6_K}) {
    const int64_t k = 3 * unit_k(type);
    QuantizedMatrix w = wick::testing::random_blocks(type, 37, k, 21);
    QuantizedMatrix g = to_device(w, Device::cuda(0));
    for (Dtype dtype : {Dtype::F32, Dtype::BF16, Dtype::F16}) {
      for (int64_t rows : {1, 3, 40}) {
        SCOPED_TRACE(std::string(ggml_type_name(type)) + " " + dtype_name(dtype) + " rows " + std::to_string(rows));
        Tensor x = randn({rows, k}, dtype);
        Tensor want = astype(linear(astype(x, Dtype::F32), w), dtype);
        Tensor got = on_cpu(linear(on_gpu(x), g));
        // K-quant values reach the hundreds: f32 sums of such products differ in their last bits
        // between summation orders, hence the absolute term.
        testing::expect_tensors_close(got, want, dtype == Dtype::F32 ? Tol{2e-3, 2e-5} : gpu_tol(dtype));
      }
    }
  }
  for (Dtype dtype : {Dtype::BF16, Dtype::F16, Dtype::F32}) {
    for (int64_t rows : {1, 5, 64}) {
      SCOPED_TRACE(std::string("dense ") + dtype_name(dtype) + " rows " + std::to_string(rows));
      Tensor x = randn({rows, 96}, dtype), weight = randn({45, 96}, dtype), bias = randn({45}, dtype);
      Tensor want = linear(x, weight, bias);
      Tensor got = linear(on_gpu(x), on_gpu(weight), on_gpu(bias));
      EXPECT_TRUE(got.device().is_cuda());
      testing::expect_tensors_close(on_cpu(got), want, gpu_tol(dtype));
    }
  }
}

}  // namespace
}  // namespace wick::test
