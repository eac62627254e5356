// Row-major matrix products of the CPU kernels, C[m, n] = op(A)[m, k] @ op(B)[k, n] (op: as stored or
// transposed, with leading dimensions), through OpenBLAS kept to one thread: a large product is split
// across the thread pool into blocks of C's columns (or rows, when C is taller than wide), one
// OpenBLAS call per block. One pool then runs every kernel, so no second set of threads spins
// between products, and a core that is busy elsewhere simply takes fewer blocks.
#pragma once

#include <cstdint>

namespace wick::cpu {

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
          float* c, int64_t ldc);
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, const double* b,
          int64_t ldb, double* c, int64_t ldc);

}  // namespace wick::cpu
