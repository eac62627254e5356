// GGML quantizers (quantize_from_f32) against quantize.gguf, whose blocks were written by the
// reference `gguf` package's quantizers (scripts/golden/io_gguf.py) from the `src` tensor stored
// beside them: byte for byte, edge-case blocks included. Plus dequantize(quantize(x)) error bounds
// and the errors for types and sizes the quantizers do not take.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "io_test_util.h"
#include "wick/base/ggml_quants.h"
#include "wick/io/gguf.h"

namespace wick::io {
namespace {

using ggml::dequantize_to_f32;
using ggml::ggml_nbytes;
using ggml::ggml_quantizable;
using ggml::ggml_type_info;
using ggml::ggml_type_name;
using ggml::GgmlType;
using ggml::GgmlTypeInfo;
using ggml::quantize_from_f32;
using test::data_path;
using test::expect_error;

constexpr GgmlType kQuantizable[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16,
                                     GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,
                                     GgmlType::Q5_1, GgmlType::Q8_0};

std::vector<uint8_t> quantize(GgmlType type, const std::vector<float>& x) {
  std::vector<uint8_t> out(ggml_nbytes(type, int64_t(x.size())));
  quantize_from_f32(type, x.data(), int64_t(x.size()), out.data());
  return out;
}

TEST(GgmlQuantize, BytesMatchReference) {
  GgufFile f = GgufFile::open(data_path("gguf/quantize.gguf"));
  std::vector<float> src = f.dequantize("src");  // F32: the stored floats themselves
  ASSERT_EQ(src.size(), 9u * 256);
  const GgufTensor& src_t = f.tensor("src");
  EXPECT_EQ(quantize(GgmlType::F32, src), std::vector<uint8_t>(src_t.data, src_t.data + src_t.nbytes));

  for (GgmlType type : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                        GgmlType::Q8_0, GgmlType::F16, GgmlType::BF16}) {
    std::string name = "q." + std::string(ggml_type_name(type));
    SCOPED_TRACE(name);
    const GgufTensor& t = f.tensor(name);
    ASSERT_EQ(t.type, type);
    std::vector<uint8_t> got = quantize(type, src);
    ASSERT_EQ(got.size(), t.nbytes);
    const GgmlTypeInfo& info = ggml_type_info(type);
    size_t mismatched_blocks = 0;
    for (size_t block = 0; block < got.size() / info.type_size; ++block) {
      size_t at = block * info.type_size;
      if (std::memcmp(got.data() + at, t.data + at, info.type_size) == 0) continue;
      if (mismatched_blocks++ < 5) {
        size_t byte = at;
        while (got[byte] == t.data[byte]) ++byte;
        ADD_FAILURE() << "block " << block << " (source elements from " << block * info.block_size
                      << "), byte " << byte - at << ": got " << int(got[byte]) << ", reference "
                      << int(t.data[byte]);
      }
    }
    EXPECT_EQ(mismatched_blocks, 0u);
  }
}

// |x - dequantize(quantize(x))| within the rounding step of each type, plus the f16 rounding of
// d and m (relative 2^-11) and a few float32 ulps.
TEST(GgmlQuantize, RoundTripIsWithinTheQuantizationStep) {
  std::mt19937 gen(7);
  for (float scale : {1e-2f, 1.0f, 100.0f}) {
    std::normal_distribution<float> normal(0.0f, scale);
    std::vector<float> x(32 * 64);
    for (float& v : x) v = normal(gen);
    for (GgmlType type : kQuantizable) {
      SCOPED_TRACE(std::string(ggml_type_name(type)) + " at scale " + std::to_string(scale));
      std::vector<uint8_t> q = quantize(type, x);
      std::vector<float> y(x.size());
      dequantize_to_f32(type, q.data(), int64_t(x.size()), y.data());
      const double f16_rel = std::ldexp(1.0, -11);
      for (size_t b0 = 0; b0 < x.size(); b0 += 32) {
        const float* xb = x.data() + b0;
        double mn = *std::min_element(xb, xb + 32), mx = *std::max_element(xb, xb + 32);
        double amax = std::max(-mn, mx);
        double signed_max = -mn > mx ? mn : mx;
        for (size_t j = 0; j < 32; ++j) {
          double xv = xb[j], err = std::fabs(xv - double(y[b0 + j]));
          double tol = 1e-6 * amax;
          switch (type) {
            case GgmlType::F32: tol = 0; break;
            case GgmlType::F16: tol = std::max(std::fabs(xv) * f16_rel, std::ldexp(1.0, -25)); break;
            case GgmlType::BF16: tol = std::fabs(xv) * std::ldexp(1.0, -8); break;
            case GgmlType::Q8_0: {
              double d = amax / 127;
              tol += 0.5 * d + 127 * d * f16_rel;
              break;
            }
            case GgmlType::Q4_0:
            case GgmlType::Q5_0: {
              double half = type == GgmlType::Q4_0 ? 8 : 16, d = signed_max / -half;
              // The top quant is half - 1: values rounding past it are clipped, a full step away.
              bool clipped = xv / d + half >= 2 * half - 0.5;
              tol += (clipped ? 1.0 : 0.5) * std::fabs(d) + half * std::fabs(d) * f16_rel;
              break;
            }
            case GgmlType::Q4_1:
            case GgmlType::Q5_1: {
              double q_max = type == GgmlType::Q4_1 ? 15 : 31, d = (mx - mn) / q_max;
              tol += 0.5 * d + q_max * d * f16_rel + std::fabs(mn) * f16_rel;
              break;
            }
            default: FAIL() << "no bound for this type";
          }
          ASSERT_LE(err, tol) << "element " << b0 + j << ": x " << xv << ", got " << y[b0 + j];
        }
      }
    }
  }
}

TEST(GgmlQuantize, UnsupportedTypesAndSizesAreNamed) {
  for (GgmlType type : kQuantizable) EXPECT_TRUE(ggml_quantizable(type)) << ggml_type_name(type);
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_1, GgmlType::IQ2_XXS,
                        GgmlType::I32, GgmlType::F64})
    EXPECT_FALSE(ggml_quantizable(type)) << ggml_type_name(type);

  std::vector<float> x(512, 1.0f);
  std::vector<uint8_t> out(4096);
  expect_error([&] { quantize_from_f32(GgmlType::Q4_K, x.data(), 256, out.data()); },
               {"quantize", "Q4_K is not supported", "Q8_0"});
  expect_error([&] { quantize_from_f32(GgmlType::I32, x.data(), 4, out.data()); },
               {"quantize", "I32 is not supported"});
  expect_error([&] { quantize_from_f32(GgmlType::Q8_0, x.data(), 33, out.data()); },
               {"Q8_0", "33 elements", "block size 32"});
  expect_error([&] { quantize_from_f32(GgmlType::Q4_1, x.data(), -32, out.data()); },
               {"Q4_1", "-32 elements"});
  expect_error([&] { quantize_from_f32(static_cast<GgmlType>(99), x.data(), 32, out.data()); },
               {"unknown GGML type id 99"});
  EXPECT_FALSE(ggml_quantizable(static_cast<GgmlType>(99)));
}

}  // namespace
}  // namespace wick::io
