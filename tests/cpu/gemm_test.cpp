// The CPU backend's GEMM (backend/cpu/gemm.h), split across the thread pool in blocks of columns
// or rows: every transposition, leading dimensions wider than the matrices (views into larger
// buffers), sizes that are not multiples of the blocks, products too small to split, and
// several thread counts, against float64 sums; elements outside C are never written.
#include "wick/backend/cpu/gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "wick/backend/cpu/thread_pool.h"
#include "wick/base/error.h"

namespace wick {
namespace {

struct ThreadCount {
  int saved = cpu::num_threads();
  ~ThreadCount() { cpu::set_num_threads(saved); }
};

template <typename T>
void check_products(double rtol) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> dist(-1, 1);
  struct Case {
    int64_t m, n, k;
  };
  // Tall (split by rows), wide (by columns), square, a product below the split threshold, k = 1.
  const Case cases[] = {{301, 37, 129}, {23, 517, 131}, {150, 150, 150}, {5, 7, 9}, {97, 211, 1}, {1, 1000, 700}};
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
          cpu::gemm(ta, tb, c.m, c.n, c.k, a.data(), lda, b.data(), ldb, out.data(), ldc);
          std::string what = str_cat("m ", c.m, " n ", c.n, " k ", c.k, " ta ", ta, " tb ", tb, " threads ", threads);
          for (int64_t i = 0; i < c.m; ++i) {
            for (int64_t j = 0; j < c.n; ++j) {
              double ref = 0, mag = 0;
              for (int64_t p = 0; p < c.k; ++p) {
                double x = double(ta ? a[size_t(p * lda + i)] : a[size_t(i * lda + p)]);
                double y = double(tb ? b[size_t(j * ldb + p)] : b[size_t(p * ldb + j)]);
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

}  // namespace
}  // namespace wick
