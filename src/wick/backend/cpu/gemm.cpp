// The CPU backend's GEMM (see gemm.h): blocks of C across the thread pool, each one OpenBLAS call.
#include "wick/backend/cpu/gemm.h"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <vector>

#include "wick/backend/cpu/thread_pool.h"

namespace wick::cpu {

namespace {

void blas(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
          float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n), int(k),
              1.0f, a, int(lda), b, int(ldb), 0.0f, c, int(ldc));
}
void blas(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, const double* b,
          int64_t ldb, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n), int(k),
              1.0, a, int(lda), b, int(ldb), 0.0, c, int(ldc));
}

// Products of fewer multiply-adds run as one call: a block must pay for packing its operands.
constexpr int64_t kMinParallelWork = int64_t(1) << 21;
// Blocks are whole multiples of this many rows or columns (OpenBLAS's register tiles).
constexpr int64_t kBlockAlign = 16;

template <typename T>
void split_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb,
                T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  int threads = num_threads();
  if (threads <= 1 || k == 0 || m * n * k < kMinParallelWork) {
    blas(ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
    return;
  }
  // Each block packs the operand it shares with the others again, so split the longer side of C:
  // columns when C is wider than tall (every block repacks op(A), the smaller operand), else rows.
  bool by_columns = n >= m;
  int64_t extent = by_columns ? n : m;
  int64_t units = (extent + kBlockAlign - 1) / kBlockAlign;
  // Two blocks per thread even out a thread that starts late, without packing the shared operand
  // many times over.
  int64_t blocks = std::min<int64_t>(units, int64_t(threads) * 2);
  int64_t per_block = (units + blocks - 1) / blocks;
  parallel_for(units, per_block, [&](int64_t u0, int64_t u1) {
    int64_t i0 = u0 * kBlockAlign, i1 = std::min(extent, u1 * kBlockAlign);
    if (by_columns) {
      const T* bp = tb ? b + i0 * ldb : b + i0;
      blas(ta, tb, m, i1 - i0, k, a, lda, bp, ldb, c + i0, ldc);
    } else {
      const T* ap = ta ? a + i0 : a + i0 * lda;
      blas(ta, tb, i1 - i0, n, k, ap, lda, b, ldb, c + i0 * ldc, ldc);
    }
  });
}

std::atomic<MatmulPrecision> g_precision{MatmulPrecision::kF32};

// op(X) [rows, cols] of X stored as it is or transposed, rounded to bf16, as a dense f32 matrix.
std::vector<float> rounded_copy(const float* x, int64_t ld, bool trans, int64_t rows, int64_t cols) {
  std::vector<float> out(size_t(rows * cols));
  parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t c = 0; c < cols; ++c) out[size_t(r * cols + c)] = bf16_rounded(trans ? x[c * ld + r] : x[r * ld + c]);
  });
  return out;
}

}  // namespace

void set_matmul_precision(MatmulPrecision precision) { g_precision.store(precision, std::memory_order_relaxed); }
MatmulPrecision matmul_precision() { return g_precision.load(std::memory_order_relaxed); }

bool bf16_sized(int64_t m, int64_t n, int64_t k) { return m >= 8 && n >= 16 && m * n * k >= kMinParallelWork; }

bool uses_bf16_operands(int64_t m, int64_t n, int64_t k) {
  return matmul_precision() == MatmulPrecision::kBf16 && bf16_sized(m, n, k);
}

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
          float* c, int64_t ldc) {
  if (!uses_bf16_operands(m, n, k)) {
    split_gemm(ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
  } else if (bf16_dot_supported()) {
    gemm_bf16(ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
  } else {
    std::vector<float> ra = rounded_copy(a, lda, ta, m, k), rb = rounded_copy(b, ldb, tb, k, n);
    split_gemm(false, false, m, n, k, ra.data(), k, rb.data(), n, c, ldc);
  }
}
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, const double* b,
          int64_t ldb, double* c, int64_t ldc) {
  split_gemm(ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
}

}  // namespace wick::cpu
