// The CPU backend's GEMM (backend/cpu/gemm.h), split across the thread pool in blocks of columns
// or rows: every transposition, leading dimensions wider than the matrices (views into larger
// buffers), sizes that are not multiples of the blocks, products too small to split, and
// several thread counts, against float64 sums; elements outside C are never written. With bf16
// operands (the AVX512-BF16 kernel, and the precision setting), against float64 sums of the operands
// rounded to bf16.
#include "wick/backend/cpu/gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "wick/backend/cpu/thread_pool.h"
#include "wick/base/error.h"

namespace wick {
namespace {

struct ThreadCount {
  int saved = cpu::num_threads();
  ~ThreadCount() { cpu::set_num_threads(saved); }
};

using GemmFn = void (*)(bool, bool, int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, float*,
                        int64_t);

// The reference's operand: as it is, or rounded to bf16.
template <typename T>
double operand(T x, bool bf16) {
  if constexpr (std::is_same_v<T, float>) return bf16 ? double(cpu::bf16_rounded(x)) : double(x);
  return double(x);
}

template <typename T>
void check_products(double rtol, GemmFn bf16_gemm = nullptr) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> dist(-1, 1);
  struct Case {
    int64_t m, n, k;
  };
  // Tall (split by rows), wide (by columns), square, a product below the split threshold, k = 1.
  // With bf16 operands: blocks of 12 rows and 32 columns with partial ones, odd k, products above
  // the size from which the precision setting rounds, and rows of A too many for one pass (k 4001:
  // 48 rows a pass).
  const Case cases[] = {{301, 37, 129}, {23, 517, 131}, {150, 150, 150}, {5, 7, 9},  {97, 211, 1},
                        {1, 1000, 700}, {67, 45, 701},  {252, 96, 577},  {13, 33, 64}, {24, 64, 2},
                        {100, 40, 4001}};
  for (int threads : {1, 2, 3})
    for (const Case& c : cases)
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          cpu::set_num_threads(threads);
          // Stored A is [m, k] (or [k, m] when transposed), B [k, n] (or [n, k]); each with 3 spare
          // columns, and C with 5, which must keep their values.
          int64_t ar = ta ? c.k : c.m, ac = ta ? c.m : c.k, br = tb ? c.n : c.k, bc = tb ? c.k : c.n;
          int64_t lda = ac + 3, ldb = bc + 3, ldc = c.n + 5;
          std::vector<T> a(size_t(ar * lda)), b(size_t(br * ldb)), out(size_t(c.m * ldc), T(-7));
          for (T& x : a) x = T(dist(rng));
          for (T& x : b) x = T(dist(rng));
          bool rounded = false;
          if constexpr (std::is_same_v<T, float>) {
            if (bf16_gemm) {
              bf16_gemm(ta, tb, c.m, c.n, c.k, a.data(), lda, b.data(), ldb, out.data(), ldc);
              rounded = bf16_gemm == &cpu::gemm_bf16 || cpu::uses_bf16_operands(c.m, c.n, c.k);
            }
          }
          if (!bf16_gemm) cpu::gemm(ta, tb, c.m, c.n, c.k, a.data(), lda, b.data(), ldb, out.data(), ldc);
          std::string what = str_cat("m ", c.m, " n ", c.n, " k ", c.k, " ta ", ta, " tb ", tb, " threads ", threads,
                                     rounded ? " (bf16 operands)" : "");
          for (int64_t i = 0; i < c.m; ++i) {
            for (int64_t j = 0; j < c.n; ++j) {
              double ref = 0, mag = 0;
              for (int64_t p = 0; p < c.k; ++p) {
                double x = operand(ta ? a[size_t(p * lda + i)] : a[size_t(i * lda + p)], rounded);
                double y = operand(tb ? b[size_t(j * ldb + p)] : b[size_t(p * ldb + j)], rounded);
                ref += x * y;
                mag += std::abs(x * y);
              }
              ASSERT_NEAR(double(out[size_t(i * ldc + j)]), ref, rtol * mag + 1e-30)
                  << what << " at " << i << ", " << j;
            }
            for (int64_t j = c.n; j < ldc; ++j)
              ASSERT_EQ(out[size_t(i * ldc + j)], T(-7)) << what << " spare column " << j;
          }
        }
}

TEST(Gemm, FloatProductsMatchFloat64ForEveryLayoutAndThreadCount) {
  ThreadCount restore;
  check_products<float>(1e-5);
}

TEST(Gemm, DoubleProductsMatchFloat64ForEveryLayoutAndThreadCount) {
  ThreadCount restore;
  check_products<double>(1e-12);
}

TEST(Gemm, Bf16RoundsToNearestWithTiesToEven) {
  // 1 + 2^-8 is halfway between bf16's 1 and 1 + 2^-7: to the even 1. 1 + 3 * 2^-8: up, to 1 + 2^-6.
  EXPECT_EQ(cpu::bf16_rounded(1.0f + 0x1p-8f), 1.0f);
  EXPECT_EQ(cpu::bf16_rounded(1.0f + 3 * 0x1p-8f), 1.0f + 0x1p-6f);
  EXPECT_EQ(cpu::bf16_rounded(1.0f + 0x1p-8f + 0x1p-20f), 1.0f + 0x1p-7f);
  EXPECT_EQ(cpu::bf16_rounded(-3.0f), -3.0f);
  EXPECT_EQ(cpu::round_to_bf16(65504.0f), 0x4780);  // 65504 = 1.9990234375 * 2^15: up to 2^16
  EXPECT_EQ(cpu::round_to_bf16(0x1.fffffep127f), 0x7f80);  // past bf16's largest: infinity
  EXPECT_TRUE(std::isnan(cpu::bf16_rounded(std::nanf(""))));
  EXPECT_EQ(cpu::bf16_rounded(std::numeric_limits<float>::infinity()), std::numeric_limits<float>::infinity());
}

TEST(Gemm, Bf16OperandKernelMatchesFloat64OfRoundedOperands) {
  if (!cpu::bf16_dot_supported()) GTEST_SKIP() << "this CPU has no AVX512-BF16";
  ThreadCount restore;
  check_products<float>(1e-5, &cpu::gemm_bf16);
}

// The precision setting: large products with rounded operands (by the kernel where the CPU has
// it, else through the f32 GEMM), small ones exact; back to f32 when set so.
TEST(Gemm, Bf16PrecisionSettingRoundsLargeProductsOnly) {
  ThreadCount restore;
  struct Precision {
    ~Precision() { cpu::set_matmul_precision(cpu::MatmulPrecision::kF32); }
  } reset;
  cpu::set_matmul_precision(cpu::MatmulPrecision::kBf16);
  EXPECT_TRUE(cpu::uses_bf16_operands(67, 45, 701));
  EXPECT_FALSE(cpu::uses_bf16_operands(5, 7, 9));
  check_products<float>(1e-5, &cpu::gemm);
  cpu::set_matmul_precision(cpu::MatmulPrecision::kF32);
  EXPECT_FALSE(cpu::uses_bf16_operands(67, 45, 701));
}

}  // namespace
}  // namespace wick
