// Dot products of GGML weight rows with activations on the CPU: the decode products of a model kept
// quantized (QuantizedMatmul). Every weight type is written as value_j = a * u_j + b over unsigned
// quants u_j, with (a, b) constant over 16 values. Two families:
// - f32 activations (the default): the weights are dequantized in registers (a * u + b) and
//   multiplied with the activations in f32, the dequantize-then-multiply reference's products
//   summed in another order.
// - 8-bit activations (QuantizedMatmul with int8_activations, as llama.cpp's CPU backend does): an
//   activation row is cut into blocks of 32 values, each stored as int8 q = round(x / d) with
//   d = max|x| / 127; the dot of a weight row with it is then a sum of integer products per 32 (or
//   16) values, scaled once per block:
//     sum_j w_j x_j ~= d * (a * sum_j u_j q_j + b * sum_j q_j)
//   which is why each activation block also carries the sums of its two halves.
//   The K-quants (Q2_K ... Q6_K) have a second 8-bit form, the one their decode products use: blocks
//   of 256 activations (Q8KBlock), one per super-block, with one scale and the sums per 16 values;
//   a kernel sums the integer products of a whole super-block, each 16 or 32 weighted by its
//   integer scale, and converts to float once per super-block (quant_dot_k.h). Q4_K, Q5_K and Q6_K
//   have a faster form still, over their blocks reordered at load into lanes (Q8KLanesBlock below,
//   quant_dot_lanes.h), which takes their prompts as well as their decode steps.
// Both have portable scalar kernels and AVX2 ones chosen at run time (the 8-bit ones multiply
// unsigned by signed bytes with _mm256_maddubs_epi16, whose int16 pair sums stay below
// 2 * 128 * 127 for every type here).
#pragma once

#include <cstdint>

#include "wick/base/ggml_quants.h"

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

// 256 activations quantized to 8 bits, the activation block of the K-quant kernels: x_j ~= d * q[j],
// d = max|x| / 127; sum[k] = sum of q over values 16k..16k+15 (for the min and offset terms). Padded
// to 320 bytes, so that in an array aligned to 64 bytes every block's q is too.
struct Q8KBlock {
  int8_t q[256];
  int16_t sum[16];
  float d;
  uint8_t padding[28];
};
static_assert(sizeof(Q8KBlock) == 320);

constexpr int64_t kQ8KBlockSize = 256;

// Quantizes n values (a multiple of 256) into n / 256 blocks (with AVX2 where the machine has it:
// the same bytes as the scalar steps).
void quantize_row_q8k(const float* x, int64_t n, Q8KBlock* out);

// out[r] = sum_j W_r[j] * x[j] for r < rows: weight rows of n values (a multiple of 256) stored as
// K-quant super-blocks, row r at w + r * row_bytes, against one activation row given as n / 256
// Q8KBlocks.
using RowsDotKFn = void (*)(const uint8_t* w, size_t row_bytes, int64_t rows, const Q8KBlock* x, int64_t n, float* out);

// The instruction sets of the K-quant kernels, slowest first: portable code; AVX2 (with FMA and
// F16C); AVX2 with AVX512-VNNI on 256-bit registers (AVX512VL), which fuses the int16 multiply-adds.
enum class KDotIsa { kScalar, kAvx2, kAvx512Vnni };

// The best of those this machine runs.
KDotIsa k_dot_best_isa();

// Whether `type` has K-quant kernels (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K).
bool k_dot_supported(ggml::GgmlType type);

// The K-quant kernel of `type` for `isa` (at most k_dot_best_isa()). Throws for a type that is not a
// K-quant or an isa this machine lacks.
RowsDotKFn rows_dot_k_kernel(ggml::GgmlType type, KDotIsa isa = k_dot_best_isa());

// The lane layout of Q4_K, Q5_K and Q6_K: the same blocks with their quants reordered (scales, mins
// and d where the file has them) so that 32-bit lane k of each 32-byte vector holds sub-block k's
// quants only, the layout of the CPU's prompt and decode kernels for those types (quant_dot_lanes.h
// says why and spells the order out). Weights are reordered once, at load; the activations' 8-bit
// blocks are ordered to match: q[64t + 32h + 4k + j] = round(x[32k + 8t + 4h + j] / d); s16[k] and
// s16[8 + k] = 32 * the sums of q over values 32k .. 32k + 15 and 32k + 16 .. 32k + 31 (Q6_K's
// offset terms); ds32[k] = d * the sum over 32k .. 32k + 31 (Q4_K's and Q5_K's mins). 384 bytes,
// aligned to 64 so that q never straddles cache lines.
struct alignas(64) Q8KLanesBlock {
  int8_t q[256];
  int32_t s16[16];
  float ds32[8];
  float d;
  uint8_t padding[28];
};
static_assert(sizeof(Q8KLanesBlock) == 384);

// Whether `type` has a lane layout (Q4_K, Q5_K, Q6_K).
bool k_lanes_type(ggml::GgmlType type);
// Whether this machine runs the lane kernels (AVX2, FMA and F16C).
bool k_lanes_available();
// n_blocks blocks of `type` from the file's layout into lanes, and back (src and dst may be the same
// buffer). Throws for a type without lanes.
void k_lanes_pack(ggml::GgmlType type, const uint8_t* src, int64_t n_blocks, uint8_t* dst);
void k_lanes_unpack(ggml::GgmlType type, const uint8_t* src, int64_t n_blocks, uint8_t* dst);
// Quantizes n values (a multiple of 256) into n / 256 lane blocks: the values of quantize_row_q8k,
// reordered.
void quantize_row_q8k_lanes(const float* x, int64_t n, Q8KLanesBlock* out);

// out[i * out_stride + r] = sum_j W_r[j] * x_i[j] for r < rows and m >= 1 activation rows x_i = x +
// i * n / 256: weight rows of n values (a multiple of 256) in lanes, row r at w + r * row_bytes. A
// row's result is the same bits whichever rows are multiplied with it.
using RowsDotLanesFn = void (*)(const uint8_t* w, size_t row_bytes, int64_t rows, const Q8KLanesBlock* x, int64_t m,
                                int64_t n, float* out, int64_t out_stride);
// The lane kernel of `type` for `isa` (kAvx2 or kAvx512Vnni, at most k_dot_best_isa(); both give the
// same bits). Throws for a type without lanes or an isa this machine lacks or that has none.
RowsDotLanesFn rows_dot_lanes_kernel(ggml::GgmlType type, KDotIsa isa = k_dot_best_isa());

// Whether the 8-bit products handle `type` (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K).
bool int8_dot_supported(ggml::GgmlType type);

// Whether this machine runs the AVX2 kernels (AVX2, FMA and F16C).
bool int8_dot_simd_available();

// The row dot of `type`: the AVX2 kernel when `simd` and the machine has it (Q2_K and Q3_K have
// only the scalar one), else the scalar kernel. Throws for an unsupported type.
RowDotFn row_dot_kernel(ggml::GgmlType type, bool simd = true);

// out[i] = sum_j W[j] * x[i * ldx + j] for i < m (1 to kF32DotMaxRows): one weight row of n values
// (a multiple of the type's block size) stored as GGML blocks, dequantized in registers, against m
// rows of f32 activations; each block is decoded once for the m rows.
using RowDotF32Fn = void (*)(const uint8_t* w, const float* x, int64_t ldx, int m, int64_t n, float* out);
constexpr int kF32DotMaxRows = 4;

// Whether the f32 products handle `type` (the same types as the 8-bit ones).
bool f32_dot_supported(ggml::GgmlType type);

// The f32 row dot of `type`: AVX2 when `simd` and the machine has it, else scalar. Throws for an
// unsupported type.
RowDotF32Fn row_dot_f32_kernel(ggml::GgmlType type, bool simd = true);

namespace detail {
RowDotFn row_dot_scalar(ggml::GgmlType type);
RowDotFn row_dot_avx2(ggml::GgmlType type);  // nullptr where there is none
RowDotF32Fn row_dot_f32_scalar(ggml::GgmlType type);
RowDotF32Fn row_dot_f32_avx2(ggml::GgmlType type);  // nullptr where there is none
RowsDotKFn rows_dot_k_avx2(ggml::GgmlType type);     // nullptr where there is none
RowsDotKFn rows_dot_k_vnni(ggml::GgmlType type);     // nullptr where there is none
RowsDotLanesFn rows_dot_lanes_avx2(ggml::GgmlType type);   // nullptr where there is none
RowsDotLanesFn rows_dot_lanes_vnni(ggml::GgmlType type);   // nullptr where there is none
void quantize_row_q8k_scalar(const float* x, int64_t n, Q8KBlock* out);
void quantize_row_q8k_avx2(const float* x, int64_t n, Q8KBlock* out);  // called only with AVX2

// 32 weights of one block in the form both families share: value_j = a[j / 16] * u[j] + b[j / 16].
struct Sub {
  uint8_t u[32];
  float a[2], b[2];
  void affine(float a_all, float b_all) {
    a[0] = a[1] = a_all;
    b[0] = b[1] = b_all;
  }
};
// Decodes 32-value group `s` of the block at `blk` (s = 0 for the 32-value types; 0 to 7 for the
// K-quants' 256-value super-blocks).
using SubDecodeFn = void (*)(const uint8_t* blk, int s, Sub& out);
// The decoder of `type`, its block size and bytes per block; nullptr for an unsupported type.
SubDecodeFn sub_decoder(ggml::GgmlType type);
}  // namespace detail

}  // namespace wick::cpu
