// Skinny products (backend/cuda/gemv*) at the decode shapes of Qwen2.5-0.5B, against the card's
// memory bandwidth and against cuBLASLt bf16 (cuda::gemm_nt) in the same run. Each case is a CUDA
// graph of launches over several copies of the weight (together over twice the L2 size, so every
// launch reads its weight from memory, as a decode step reads each layer's); the time per launch is
// the median over replays. Prints one row per case, a tuning sweep of the split at m = 1, then a
// summary. Bytes counted: the weight as stored (activations and outputs are a rounding error here).
//
//   build-gpu/bench/gemv_bench [--quick]      (--quick: m = 1 only, no sweep)
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "wick/backend/cuda/gemv.h"
#include "wick/backend/cuda/runtime.h"
#include "wick/core/backend_hooks.h"

using namespace wick;
using ggml::GgmlType;

namespace {

constexpr double kPeakBytesPerSecond = 4.3e12;  // H200 device-to-device copy, measured (bench/RESULTS.md)

#define CHECK(call) ::wick::cuda::check_cuda((call), #call, __FILE__, __LINE__)

struct LayerShape {
  const char* name;
  int64_t n, k;
};
// Qwen2.5-0.5B's decode products, and one large matrix whose k suits every block type (the model's
// k = 896 is no multiple of 256, so its K-quant files store those matrices in other types).
const LayerShape kShapes[] = {{"o_proj", 896, 896},   {"k/v_proj", 128, 896}, {"qkv", 1152, 896},
                              {"gate_up", 9728, 896}, {"down", 896, 4864},    {"lm_head", 151936, 896},
                              {"large", 32768, 4096}};
const GgmlType kMainTypes[] = {GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q4_0};
const GgmlType kOtherTypes[] = {GgmlType::F16,  GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                                GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q5_K};
const int64_t kRows[] = {1, 2, 4, 8, 16, 32, 64};

__device__ uint64_t mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
__device__ uint16_t half_bits(float v) { return __half_as_ushort(__float2half_rn(v)); }

// Random bytes, then (a second pass) dense 16-bit types get values in (-1, 1) and every f16 scale
// of a block type a value of magnitude 0.002..0.05 (random bytes there would give NaN and infinities).
__global__ void fill_random(uint8_t* w, int64_t bytes, uint64_t seed) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < bytes; i += int64_t(gridDim.x) * blockDim.x)
    w[i] = uint8_t(mix(seed ^ uint64_t(i)));
}
__global__ void fix_values(uint8_t* w, int64_t bytes, int kind, int block_bytes, int f0, int f1, uint64_t seed) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < bytes / 2;
       i += int64_t(gridDim.x) * blockDim.x) {
    float u = float(mix(seed + uint64_t(i) * 7919) >> 40) / float(1 << 24);  // [0, 1)
    if (kind == 1) {                                                         // bf16
      reinterpret_cast<uint16_t*>(w)[i] = __bfloat16_as_ushort(__float2bfloat16_rn(2 * u - 1));
    } else if (kind == 2) {  // f16
      reinterpret_cast<uint16_t*>(w)[i] = half_bits(2 * u - 1);
    } else if (kind == 3 && (2 * i) % block_bytes == 0) {  // the scales of the block starting here
      uint8_t* b = w + 2 * i;
      uint16_t h0 = half_bits((u < 0.5f ? -1 : 1) * (0.002f + 0.048f * u)), h1 = half_bits(0.002f + 0.048f * (1 - u));
      if (f0 >= 0) b[f0] = uint8_t(h0), b[f0 + 1] = uint8_t(h0 >> 8);
      if (f1 >= 0) b[f1] = uint8_t(h1), b[f1 + 1] = uint8_t(h1 >> 8);
    }
  }
}
void fill_weight(uint8_t* w, int64_t bytes, int kind, int block_bytes, int f0, int f1, uint64_t seed) {
  fill_random<<<1024, 256>>>(w, bytes, seed);
  CHECK(cudaGetLastError());
  fix_values<<<1024, 256>>>(w, bytes, kind, block_bytes, f0, f1, seed);
  CHECK(cudaGetLastError());
}

// Offsets of the f16 fields of a block (-1: none).
void scale_fields(GgmlType type, int& f0, int& f1) {
  f0 = f1 = -1;
  switch (type) {
    case GgmlType::Q4_0:
    case GgmlType::Q5_0:
    case GgmlType::Q8_0: f0 = 0; break;
    case GgmlType::Q4_1:
    case GgmlType::Q5_1:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K: f0 = 0, f1 = 2; break;
    case GgmlType::Q2_K: f0 = 80, f1 = 82; break;
    case GgmlType::Q3_K: f0 = 108; break;
    case GgmlType::Q6_K: f0 = 208; break;
    default: break;
  }
}

int64_t unit_of(GgmlType type) { return ggml::ggml_type_info(type).block_size == 256 ? 256 : 32; }

// Several copies of a random weight, together at least twice the L2 (at least one copy).
struct Copies {
  std::vector<uint8_t*> ptrs;
  int64_t bytes = 0;
  ~Copies() {
    for (uint8_t* p : ptrs) cudaFree(p);
  }
};
void make_copies(Copies& c, GgmlType type, const LayerShape& s, int64_t l2_bytes) {
  c.bytes = int64_t(ggml::ggml_nbytes(type, s.n * s.k));
  int64_t count = std::max<int64_t>(1, (2 * l2_bytes + c.bytes - 1) / c.bytes);
  count = std::min<int64_t>(count, 4096);
  int kind = type == GgmlType::BF16 ? 1 : type == GgmlType::F16 ? 2 : 3, f0, f1;
  scale_fields(type, f0, f1);
  for (int64_t i = 0; i < count; ++i) {
    uint8_t* p = nullptr;
    CHECK(cudaMalloc(&p, size_t(c.bytes)));
    if (i == 0) {
      fill_weight(p, c.bytes, kind, int(ggml::ggml_type_info(type).type_size), f0, f1, 42);
    } else {
      CHECK(cudaMemcpy(p, c.ptrs[0], size_t(c.bytes), cudaMemcpyDeviceToDevice));
    }
    c.ptrs.push_back(p);
  }
  CHECK(cudaDeviceSynchronize());
}

// Median microseconds per launch of `launch(copy)` replayed as a graph over all copies.
template <class Launch>
double time_per_launch(cudaStream_t stream, const Copies& c, Launch launch) {
  launch(c.ptrs[0]);  // outside the capture, so that a lazily loaded kernel is loaded before it
  CHECK(cudaStreamSynchronize(stream));
  const int per_graph = int(std::max<size_t>(c.ptrs.size(), 16));
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < per_graph; ++i) launch(c.ptrs[size_t(i) % c.ptrs.size()]);
  CHECK(cudaStreamEndCapture(stream, &graph));
  CHECK(cudaGraphInstantiate(&exec, graph, 0));
  cudaEvent_t start, stop;
  CHECK(cudaEventCreate(&start));
  CHECK(cudaEventCreate(&stop));
  // A graph of many launches already averages over them: fewer replays keep the run short.
  const int replays = per_graph >= 256 ? 5 : 15;
  CHECK(cudaGraphLaunch(exec, stream));  // warm-up
  std::vector<float> ms;
  for (int i = 0; i < replays; ++i) {
    CHECK(cudaEventRecord(start, stream));
    CHECK(cudaGraphLaunch(exec, stream));
    CHECK(cudaEventRecord(stop, stream));
    CHECK(cudaEventSynchronize(stop));
    float t = 0;
    CHECK(cudaEventElapsedTime(&t, start, stop));
    ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  CHECK(cudaEventDestroy(start));
  CHECK(cudaEventDestroy(stop));
  CHECK(cudaGraphExecDestroy(exec));
  CHECK(cudaGraphDestroy(graph));
  return 1000.0 * ms[ms.size() / 2] / per_graph;
}

struct Row {
  std::string shape, type;
  int64_t m;
  double us, gbps;
};
std::vector<Row> g_rows;

void print_row(const LayerShape& s, const std::string& type, int64_t m, int64_t bytes, double us) {
  double gbps = double(bytes) / (us * 1e-6) / 1e9;
  std::printf("%-9s %6lldx%-5lld %-12s %3lld %9.2f %8.0f %6.1f%%\n", s.name, (long long)s.n, (long long)s.k,
              type.c_str(), (long long)m, us, gbps, 100 * gbps * 1e9 / kPeakBytesPerSecond);
  g_rows.push_back({s.name, type, m, us, gbps});
}

struct Buffers {
  void* x = nullptr;
  void* y = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  const auto started = std::chrono::steady_clock::now();
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  if (!cuda::available()) {
    std::printf("gemv_bench: no CUDA GPU\n");
    return 1;
  }
  cudaStream_t stream = cuda::stream(0);
  cudaDeviceProp prop{};
  CHECK(cudaGetDeviceProperties(&prop, 0));
  const int sms = prop.multiProcessorCount;
  const int64_t l2 = prop.l2CacheSize;
  std::printf("gemv_bench on %s: %d SMs, L2 %lld MB; peak taken as %.1f TB/s\n", prop.name, sms, (long long)(l2 >> 20),
              kPeakBytesPerSecond / 1e12);
  const std::vector<int64_t> rows =
      quick ? std::vector<int64_t>{1} : std::vector<int64_t>(std::begin(kRows), std::end(kRows));

  Buffers buf;
  const size_t x_bytes = 64 * 4864 * 4, y_bytes = size_t(64) * 151936 * 4;
  CHECK(cudaMalloc(&buf.x, x_bytes));
  CHECK(cudaMalloc(&buf.y, y_bytes));
  fill_weight(static_cast<uint8_t*>(buf.x), int64_t(x_bytes), 1, 2, -1, -1, 7);  // bf16 values
  CHECK(cudaDeviceSynchronize());

  std::printf("\n%-9s %-12s %-12s %3s %9s %8s %7s\n", "layer", "n x k", "weight", "m", "us", "GB/s", "of peak");
  auto run_type = [&](GgmlType type, const std::vector<int64_t>& ms) {
    for (const LayerShape& s : kShapes) {
      std::string name(ggml::ggml_type_name(type));
      if (s.k % unit_of(type) != 0) {
        std::printf("%-9s %6lldx%-5lld %-12s   -  (k %% 256 != 0: GGUF files store this matrix in another type)\n",
                    s.name, (long long)s.n, (long long)s.k, name.c_str());
        continue;
      }
      Copies c;
      make_copies(c, type, s, l2);
      Dtype x_dtype = type == GgmlType::F16 ? Dtype::F16 : Dtype::BF16;
      for (int64_t m : ms) {
        double us = time_per_launch(stream, c, [&](const uint8_t* w) {
          cuda::skinny_matmul({w, type, s.n, s.k}, buf.x, x_dtype, m, buf.y, x_dtype, nullptr, Dtype::F32, stream);
        });
        print_row(s, name, m, c.bytes, us);
      }
    }
  };
  for (GgmlType type : kMainTypes) run_type(type, rows);
  for (GgmlType type : kOtherTypes) run_type(type, {1});

  // The in-run baseline: cuBLASLt bf16 through the backend's gemm_nt, same shapes and rows.
  for (const LayerShape& s : kShapes) {
    Copies c;
    make_copies(c, GgmlType::BF16, s, l2);
    for (int64_t m : rows) {
      double us = time_per_launch(stream, c, [&](const uint8_t* w) {
        cuda::gemm_nt(Dtype::BF16, m, s.n, s.k, buf.x, w, buf.y, 1.0f, 0.0f, 0);
      });
      print_row(s, "cublasLt", m, c.bytes, us);
    }
  }

  // Tuning sweep at m = 1: the split skinny_config picks against the best of a grid.
  if (!quick) {
    std::printf("\nsplit sweep, m = 1 (chosen: x_tiles/k_warps/tiles_per_block of skinny_config)\n");
    for (GgmlType type : {GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
      for (const LayerShape& s : kShapes) {
        if (s.k % unit_of(type) != 0) continue;
        Copies c;
        make_copies(c, type, s, l2);
        cuda::SkinnyWeight probe{c.ptrs[0], type, s.n, s.k};
        cuda::SkinnyConfig chosen = cuda::skinny_config(probe, 1, Dtype::BF16, sms);
        double chosen_us = 0, best_us = 1e30;
        cuda::SkinnyConfig best{};
        for (int kw : {1, 2, 4, 8, 16}) {
          for (int tpb : {1, 4}) {
            cuda::SkinnyConfig cfg{1, kw, tpb};
            if (32 * kw * tpb > 512) continue;
            bool is_chosen = cfg.k_warps == chosen.k_warps && cfg.tiles_per_block == chosen.tiles_per_block;
            auto launch = [&](const uint8_t* w) {
              cuda::skinny_matmul({w, type, s.n, s.k}, buf.x, Dtype::BF16, 1, buf.y, Dtype::BF16, nullptr, Dtype::F32,
                                  stream, cfg);
            };
            try {
              launch(c.ptrs[0]);  // outside the capture: a split this type cannot take throws here
            } catch (const Error&) {
              continue;
            }
            double us = time_per_launch(stream, c, launch);
            if (us < best_us) best_us = us, best = cfg;
            if (is_chosen) chosen_us = us;
          }
        }
        if (chosen_us == 0) {
          chosen_us = time_per_launch(stream, c, [&](const uint8_t* w) {
            cuda::skinny_matmul({w, type, s.n, s.k}, buf.x, Dtype::BF16, 1, buf.y, Dtype::BF16, nullptr, Dtype::F32,
                                stream, chosen);
          });
        }
        std::printf("%-9s %-5s chosen %2d/%d %8.2f us %6.1f%%   best %2d/%d %8.2f us %6.1f%%\n", s.name,
                    std::string(ggml::ggml_type_name(type)).c_str(), chosen.k_warps, chosen.tiles_per_block, chosen_us,
                    100.0 * double(c.bytes) / (chosen_us * 1e-6) / kPeakBytesPerSecond, best.k_warps,
                    best.tiles_per_block, best_us, 100.0 * double(c.bytes) / (best_us * 1e-6) / kPeakBytesPerSecond);
      }
    }
  }

  // Summary: m = 1 against the 75% goal, growth with m, the ratio to cuBLASLt.
  auto find = [&](const std::string& shape, const std::string& type, int64_t m) -> const Row* {
    for (const Row& r : g_rows)
      if (r.shape == shape && r.type == type && r.m == m) return &r;
    return nullptr;
  };
  std::printf("\nsummary: %% of %.1f TB/s at m = 1, (time at m = 64 / m = 1), [cuBLASLt bf16 time / ours at m = 1]\n",
              kPeakBytesPerSecond / 1e12);
  std::printf("%-9s", "layer");
  for (GgmlType type : kMainTypes) std::printf(" %-19s", std::string(ggml::ggml_type_name(type)).c_str());
  std::printf("\n");
  for (const LayerShape& s : kShapes) {
    std::printf("%-9s", s.name);
    for (GgmlType type : kMainTypes) {
      const std::string name(ggml::ggml_type_name(type));
      const Row *r1 = find(s.name, name, 1), *r64 = find(s.name, name, 64), *cb = find(s.name, "cublasLt", 1);
      if (r1 == nullptr) {
        std::printf(" %-19s", "n/a");
        continue;
      }
      char cell[64];
      std::snprintf(cell, sizeof cell, "%3.0f%% (x%.1f) [%.1f]", 100 * r1->gbps * 1e9 / kPeakBytesPerSecond,
                    r64 ? r64->us / r1->us : 0.0, cb ? cb->us / r1->us : 0.0);
      std::printf(" %-19s", cell);
    }
    std::printf("\n");
  }
  CHECK(cudaFree(buf.x));
  CHECK(cudaFree(buf.y));
  std::printf("gemv_bench: %.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  return 0;
}
