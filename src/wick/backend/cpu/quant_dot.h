// Dot products of GGML weight blocks with activations quantized to 8 bits, on the CPU: the decode
// products of a model kept quantized (QuantizedMatmul with int8_activations). An activation row is
// cut into blocks of 32 values, each stored as int8 q = round(x / d) with d = max|x| / 127; the dot
// of a weight row with it is then a sum of integer products per 32 (or 16) values, scaled once per
// block. Every weight type is written as value_j = a * u_j + b over unsigned quants u_j, with (a,
// b) constant over 16 values, so
//   sum_j w_j x_j ~= d * (a * sum_j u_j q_j + b * sum_j q_j)
// which is why each activation block also carries the sums of its two halves.
// Kernels: portable scalar ones, and AVX2 ones (unsigned x signed byte products, _mm256_maddubs_epi16,
// whose int16 pair sums stay below 2 * 128 * 127 for every type here) chosen at run time.
#pragma once

#include <cstdint>

#include "wick/io/ggml_quants.h"

namespace wick::cpu {

// 32 activations quantized to 8 bits: x_j ~= d * q[j]; sum[h] = sum of q over values 16h..16h+15;
// ds = d * (sum[0] + sum[1]), the block's sum as the products see it (for the offset terms).
struct Q8Block {
  float d, ds;
  int16_t sum[2];
  int8_t q[32];
};

constexpr int64_t kQ8BlockSize = 32;

// Quantizes n values (a multiple of 32) into n / 32 blocks.
void quantize_row_q8(const float* x, int64_t n, Q8Block* out);

// sum_j W[j] * x[j] over one weight row of n values (a multiple of the type's block size) stored as
// GGML blocks, with x given as n / 32 Q8Blocks.
using RowDotFn = float (*)(const uint8_t* w, const Q8Block* x, int64_t n);

// Whether the 8-bit products handle `type` (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K).
bool int8_dot_supported(io::GgmlType type);

// Whether this machine runs the AVX2 kernels (AVX2, FMA and F16C).
bool int8_dot_simd_available();

// The row dot of `type`: the AVX2 kernel when `simd` and the machine has it (Q2_K and Q3_K have
// only the scalar one), else the scalar kernel. Throws for an unsupported type.
RowDotFn row_dot_kernel(io::GgmlType type, bool simd = true);

namespace detail {
RowDotFn row_dot_scalar(io::GgmlType type);
RowDotFn row_dot_avx2(io::GgmlType type);  // nullptr where there is none
}  // namespace detail

}  // namespace wick::cpu
