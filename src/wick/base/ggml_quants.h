// GGML tensor element types (as stored in GGUF files), their dequantization to f32 / bf16 and the
// quantization of f32 into the 32-element block types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "wick/base/half.h"

namespace wick::ggml {

// Values are the on-disk type ids (ggml.h `enum ggml_type`).
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
};

struct GgmlTypeInfo {
  std::string_view name;
  int64_t block_size;   // elements per block (1 for plain types)
  size_t type_size;     // bytes per block
  bool dequantizable;   // whether dequantize_to_f32 handles it
};

// Layout of a known type; nullptr for an id this build does not know.
const GgmlTypeInfo* find_ggml_type(uint32_t id);
// Layout of a known type; throws wick::Error for an unknown id.
const GgmlTypeInfo& ggml_type_info(GgmlType type);
std::string_view ggml_type_name(GgmlType type);

// Bytes taken by `n_elements` elements (a multiple of the block size; throws otherwise).
size_t ggml_nbytes(GgmlType type, int64_t n_elements);

// Dequantizes `n_elements` elements (a multiple of the block size) from `src` into `dst`.
// Each block is expanded with the same float32 operations, in the same order, as the reference
// (gguf-py's numpy dequantizers), so results are bit-identical to it. Throws wick::Error for
// types without a dequantizer (named).
void dequantize_to_f32(GgmlType type, const uint8_t* src, int64_t n_elements, float* dst);

// The f16 stored little-endian at `p` (any alignment), as a float: a block's d, m or dmin.
inline float f16_at(const uint8_t* p) { return f16::to_float(uint16_t(p[0] | (p[1] << 8))); }
// The eight 6-bit scales and eight 6-bit mins of a Q4_K/Q5_K super-block from their 12 bytes.
void k_scale_min(const uint8_t* p, uint8_t sc[8], uint8_t mn[8]);
// Same, rounded to bfloat16 (round to nearest even) and returned as raw bf16 bits.
void dequantize_to_bf16(GgmlType type, const uint8_t* src, int64_t n_elements, uint16_t* dst);

// Whether quantize_from_f32 can produce `type` (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, and the plain
// F32/F16/BF16).
bool ggml_quantizable(GgmlType type);
// Quantizes `n_elements` (a multiple of the block size) from `src` into `dst` (ggml_nbytes(type,
// n_elements) bytes), with the same float32 operations as the reference (gguf-py's numpy
// quantizers, themselves bit-exact with ggml-quants.c), so the bytes are identical to it for finite
// input, with two caveats. A block so small that 1/d overflows (largest |x| below ~4e-37) gets
// quants 0, as numpy's float->int cast of inf/NaN gives on x86-64 (arm64 saturates instead). Where
// a block's min or max is a zero present with both signs, Q4_1/Q5_1 keep the first one met (as
// ggml-quants.c does) while numpy's vectorized min/max may return either, so the sign bit of d or
// m can differ. Throws wick::Error naming the type for types it cannot produce, and for a bad
// element count.
void quantize_from_f32(GgmlType type, const float* src, int64_t n_elements, uint8_t* dst);

}  // namespace wick::ggml
