// Random GGML blocks for the quantized-weight tests: random bytes for the quants and scales, with
// every f16 scale field (d, dmin, m) replaced by a finite value of a realistic size so that the
// dequantized values are finite and varied.
#pragma once

#include <cstring>
#include <random>
#include <vector>

#include "wick/base/half.h"
#include "wick/core/quantized.h"

namespace wick::testing {

// Byte offsets of the f16 fields of one block of `type`.
inline std::vector<int> f16_fields(ggml::GgmlType type) {
  using ggml::GgmlType;
  switch (type) {
    case GgmlType::Q4_0: case GgmlType::Q5_0: case GgmlType::Q8_0: return {0};
    case GgmlType::Q4_1: case GgmlType::Q5_1: case GgmlType::Q4_K: case GgmlType::Q5_K: return {0, 2};
    case GgmlType::Q2_K: return {80, 82};
    case GgmlType::Q3_K: return {108};
    case GgmlType::Q6_K: return {208};
    default: return {};
  }
}

inline const std::vector<ggml::GgmlType>& block_types() {
  using ggml::GgmlType;
  static const std::vector<GgmlType> types{GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                                           GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K,
                                           GgmlType::Q5_K, GgmlType::Q6_K};
  return types;
}

// Blocks of a [rows, cols] matrix of `type` (on the CPU), seeded.
inline QuantizedMatrix random_blocks(ggml::GgmlType type, int64_t rows, int64_t cols, uint64_t seed) {
  const ggml::GgmlTypeInfo& info = ggml::ggml_type_info(type);
  int64_t row_bytes = cols / info.block_size * int64_t(info.type_size);
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(0.002f, 0.05f);
  std::vector<uint8_t> data(size_t(rows * row_bytes));
  for (uint8_t& b : data) b = uint8_t(byte(gen));
  for (size_t at = 0; at < data.size(); at += info.type_size)
    for (int off : f16_fields(type)) {
      uint16_t h = f16::from_float(byte(gen) % 2 ? scale(gen) : -scale(gen));
      std::memcpy(&data[at + size_t(off)], &h, 2);
    }
  Tensor blocks = Tensor::from_data(data.data(), {rows, row_bytes}, Dtype::U8, Device::cpu());
  return quantized_matrix(blocks, type, rows, cols);
}

}  // namespace wick::testing
