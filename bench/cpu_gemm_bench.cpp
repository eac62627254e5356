// The CPU's f32 GEMM (OpenBLAS on one thread per block, over the pool) against the same products
// with bf16 operands (gemm_bf16, AVX512-BF16), on the products of a LoRA training step over
// SmolLM2-135M (252 rows: 4 examples padded to 63 tokens; the projections forward, x W^T, and their
// input gradients backward, dy W), and of all-MiniLM-L6-v2 over 100 x 16 tokens (1,600 rows, more than
// one pass of the bf16 kernel's packed rows). Prints the median time of the repetitions, GFLOP/s and the ratio,
// measured in the same run, with the thread pool's threads (WICK_NUM_THREADS or every core).
//   cpu_gemm_bench [--reps N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "wick/backend/cpu/gemm.h"
#include "wick/backend/cpu/thread_pool.h"

using namespace wick;

namespace {

struct Shape {
  const char* what;
  int64_t m, n, k;
  bool tb;
};

double median_ms(int reps, const std::function<void()>& f) {
  f();  // warm-up: caches, the pool's threads, the packing buffers
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 30;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
  if (!cpu::bf16_dot_supported()) {
    std::printf("this CPU has no AVX512-BF16: nothing to compare\n");
    return 0;
  }
  const Shape shapes[] = {{"gate/up forward", 252, 1536, 576, true}, {"down forward", 252, 576, 1536, true},
                          {"q/o forward", 252, 576, 576, true},      {"k/v forward", 252, 192, 576, true},
                          {"gate/up backward", 252, 576, 1536, false}, {"down backward", 252, 1536, 576, false},
                          {"k/v backward", 252, 576, 192, false},    {"MiniLM up", 1600, 1536, 384, true},
                          {"MiniLM down", 1600, 384, 1536, true}};
  std::printf("%d threads, median of %d repetitions\n", cpu::num_threads(), reps);
  std::printf("| product | m | n | k | f32 ms | f32 GFLOP/s | bf16 operands ms | GFLOP/s | f32 / bf16 |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (const Shape& s : shapes) {
    std::vector<float> a(size_t(s.m * s.k)), b(size_t(s.n * s.k)), c(size_t(s.m * s.n));
    for (float& x : a) x = dist(gen);
    for (float& x : b) x = dist(gen);
    const int64_t ldb = s.tb ? s.k : s.n;
    double f32 = median_ms(reps, [&] { cpu::gemm(false, s.tb, s.m, s.n, s.k, a.data(), s.k, b.data(), ldb, c.data(), s.n); });
    double bf16 = median_ms(reps, [&] {
      cpu::gemm_bf16(false, s.tb, s.m, s.n, s.k, a.data(), s.k, b.data(), ldb, c.data(), s.n);
    });
    double flop = 2.0 * double(s.m) * double(s.n) * double(s.k);
    std::printf("| %s | %lld | %lld | %lld | %.3f | %.0f | %.3f | %.0f | %.2fx |\n", s.what, (long long)s.m,
                (long long)s.n, (long long)s.k, f32, flop / f32 / 1e6, bf16, flop / bf16 / 1e6, f32 / bf16);
  }
  return 0;
}
