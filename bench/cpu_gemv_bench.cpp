// The CPU's decode products of K-quant blocks, one weight row after another on one thread: the f32
// kernel (weights dequantized in registers), the 8-bit kernel on 32-value activation blocks
// (Q8Block), and the K-quant kernels on 256-value blocks (Q8KBlock) for each instruction set this
// CPU runs, on a [rows, 1536] matrix of random blocks, in cache (2,048 rows) and from memory
// (131,072 rows, 100+ MB). Prints G weights/s (the best of the repetitions) and each kernel's ratio
// to the f32 one, measured in the same run. Then the prompts' kernels of Q4_K, Q5_K and Q6_K (weights
// in lanes, quant_dot.h) on 64 activation rows against 2,048 weight rows: G multiply-adds/s.
//   cpu_gemv_bench [--cols N] [--reps N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "wick/backend/cpu/quant_dot.h"
#include "wick/base/half.h"

using namespace wick;

namespace {

// Random blocks whose f16 scales are small normal numbers (random bytes there would give infinities).
std::vector<uint8_t> random_rows(ggml::GgmlType type, int64_t rows, int64_t cols) {
  const size_t bytes = ggml::ggml_nbytes(type, cols) * size_t(rows), block = ggml::ggml_nbytes(type, 256);
  std::vector<uint8_t> w(bytes);
  std::mt19937 gen(1);
  for (uint8_t& b : w) b = uint8_t(gen());
  const uint16_t scale = f16::from_float(0.01f);
  // Where each type keeps its f16 d (and dmin).
  std::vector<size_t> at;
  switch (type) {
    case ggml::GgmlType::Q2_K: at = {80, 82}; break;
    case ggml::GgmlType::Q3_K: at = {108}; break;
    case ggml::GgmlType::Q6_K: at = {208}; break;
    default: at = {0, 2}; break;  // Q4_K, Q5_K
  }
  for (size_t b = 0; b < bytes; b += block)
    for (size_t o : at) std::memcpy(&w[b + o], &scale, 2);
  return w;
}

double best_seconds(int reps, const std::function<void()>& f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t cols = 1536;
  int reps = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--cols")) cols = std::atol(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
  }
  if (cols <= 0 || cols % 256 != 0) {
    std::fprintf(stderr, "--cols must be a positive multiple of 256\n");
    return 2;
  }
  std::vector<float> x(static_cast<size_t>(cols));
  std::mt19937 gen(2);
  std::normal_distribution<float> normal;
  for (float& v : x) v = normal(gen);
  std::vector<cpu::Q8Block> x32(size_t(cols / 32));
  cpu::quantize_row_q8(x.data(), cols, x32.data());
  std::vector<cpu::Q8KBlock> x256(size_t(cols / 256));
  cpu::quantize_row_q8k(x.data(), cols, x256.data());

  std::vector<std::pair<std::string, cpu::KDotIsa>> isas = {{"K scalar", cpu::KDotIsa::kScalar}};
  if (cpu::k_dot_best_isa() >= cpu::KDotIsa::kAvx2) isas.push_back({"K avx2", cpu::KDotIsa::kAvx2});
  if (cpu::k_dot_best_isa() >= cpu::KDotIsa::kAvx512Vnni) isas.push_back({"K avx512-vnni", cpu::KDotIsa::kAvx512Vnni});

  std::printf("| type | rows | kernel | G weights/s | / f32 |\n|---|---:|---|---:|---:|\n");
  using ggml::GgmlType;
  for (GgmlType type : {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K})
    for (int64_t rows : {int64_t(2048), int64_t(131072)}) {
      const std::vector<uint8_t> w = random_rows(type, rows, cols);
      const size_t row_bytes = ggml::ggml_nbytes(type, cols);
      std::vector<float> out(static_cast<size_t>(rows));
      const int r = rows > 10000 ? std::max(3, reps / 4) : reps;
      const double weights = double(rows) * double(cols);
      auto report = [&](const std::string& kernel, double seconds, double f32_seconds) {
        std::printf("| %s | %ld | %s | %.1f | %.2fx |\n", std::string(ggml::ggml_type_name(type)).c_str(), long(rows), kernel.c_str(),
                    weights / seconds / 1e9, f32_seconds / seconds);
      };
      const cpu::RowDotF32Fn f32 = cpu::row_dot_f32_kernel(type);
      const double t_f32 = best_seconds(r, [&] {
        for (int64_t i = 0; i < rows; ++i) f32(w.data() + size_t(i) * row_bytes, x.data(), cols, 1, cols, &out[size_t(i)]);
      });
      report("f32", t_f32, t_f32);
      const cpu::RowDotFn q8 = cpu::row_dot_kernel(type);
      report("8-bit, 32-value blocks", best_seconds(r, [&] {
               for (int64_t i = 0; i < rows; ++i) out[size_t(i)] = q8(w.data() + size_t(i) * row_bytes, x32.data(), cols);
             }),
             t_f32);
      for (const auto& [name, isa] : isas) {
        const cpu::RowsDotKFn k = cpu::rows_dot_k_kernel(type, isa);
        report(name, best_seconds(r, [&] { k(w.data(), row_bytes, rows, x256.data(), cols, out.data()); }), t_f32);
      }
    }

  if (!cpu::k_lanes_available()) return 0;
  const int64_t m = 64, rows = 2048;
  std::vector<cpu::Q8KLanesBlock> xl(size_t(m * cols / 256));
  for (int64_t i = 0; i < m; ++i) {
    std::vector<float> xi(static_cast<size_t>(cols));
    for (float& v : xi) v = normal(gen);
    cpu::quantize_row_q8k_lanes(xi.data(), cols, xl.data() + i * cols / 256);
  }
  std::printf("\n| type | kernel, weights in lanes, %ld activation rows | G multiply-adds/s |\n|---|---|---:|\n", long(m));
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    const std::vector<uint8_t> file = random_rows(type, rows, cols);
    std::vector<uint8_t> w(file.size());
    cpu::k_lanes_pack(type, file.data(), int64_t(file.size() / ggml::ggml_nbytes(type, 256)), w.data());
    const size_t row_bytes = ggml::ggml_nbytes(type, cols);
    std::vector<float> out(size_t(m * rows));
    for (const auto& [name, isa] : isas) {
      if (isa == cpu::KDotIsa::kScalar) continue;
      const cpu::RowsDotLanesFn k = cpu::rows_dot_lanes_kernel(type, isa);
      const double t = best_seconds(std::max(3, reps / 4), [&] { k(w.data(), row_bytes, rows, xl.data(), m, cols, out.data(), rows); });
      std::printf("| %s | %s | %.1f |\n", std::string(ggml::ggml_type_name(type)).c_str(), name.c_str(),
                  double(m) * double(rows) * double(cols) / t / 1e9);
    }
  }
  return 0;
}
