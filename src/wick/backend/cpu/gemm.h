// Row-major matrix products of the CPU kernels, C[m, n] = op(A)[m, k] @ op(B)[k, n] (op: as stored or
// transposed, with leading dimensions), through OpenBLAS kept to one thread: a large product is split
// across the thread pool into blocks of C's columns (or rows, when C is taller than wide), one
// OpenBLAS call per block. One pool then runs every kernel, so no second set of threads spins
// between products, and a core that is busy elsewhere simply takes fewer blocks.
//
// The precision of f32 products is a setting of the process, as PyTorch's
// torch.set_float32_matmul_precision: kF32 multiplies f32 values; kBf16 lets each product of at
// least 8 rows, 16 columns and 2^21 multiply-adds round its operands to bf16 (to nearest, ties to
// even) and sum their products in f32 (the sums' order is the kernel's), which CPUs with AVX512-BF16
// do at twice the rate of f32 (gemm_bf16); elsewhere the rounded operands go through the f32 GEMM,
// with the same values up to the order of the sums. Smaller products stay f32.
#pragma once

#include <cstdint>

namespace wick::cpu {

enum class MatmulPrecision { kF32, kBf16 };
void set_matmul_precision(MatmulPrecision precision);
MatmulPrecision matmul_precision();
// Whether a product is large enough for bf16 operands (8 rows, 16 columns, 2^21 multiply-adds).
bool bf16_sized(int64_t m, int64_t n, int64_t k);
// Whether gemm(float) rounds the operands of this product to bf16 (the precision and bf16_sized).
bool uses_bf16_operands(int64_t m, int64_t n, int64_t k);

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
          float* c, int64_t ldc);
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, const double* b,
          int64_t ldb, double* c, int64_t ldc);

// bf16 of an f32 value, to nearest with ties to even (NaN stays NaN), and that bf16 as f32.
uint16_t round_to_bf16(float v);
float bf16_rounded(float v);

// Whether this CPU has AVX512-BF16 dot products (with AVX512BW and VL).
bool bf16_dot_supported();
// C = op(A) op(B) with both operands rounded to bf16 and f32 sums, by AVX512-BF16 over the thread
// pool; only where bf16_dot_supported().
void gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
               int64_t ldb, float* c, int64_t ldc);

}  // namespace wick::cpu
