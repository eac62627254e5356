// Per-op GPU time (WICK_PROFILE=1): a pair of CUDA events around each op run on a device, summed
// by primitive name and by name + output shape; report() prints the tables, largest first.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "wick/backend/cuda/runtime.h"
#include "wick/core/backend_hooks.h"

namespace wick::cuda {

namespace {

struct Span {
  cudaEvent_t start, stop;
  std::string name, shape;
};

struct Profiler {
  bool enabled = std::getenv("WICK_PROFILE") != nullptr && std::string(std::getenv("WICK_PROFILE")) != "0";
  std::vector<Span> spans;
  std::vector<cudaEvent_t> spare;
  std::map<std::string, std::pair<double, long>> by_name, by_shape;  // ms, count

  cudaEvent_t event() {
    if (!spare.empty()) {
      cudaEvent_t e = spare.back();
      spare.pop_back();
      return e;
    }
    cudaEvent_t e;
    WICK_CUDA_CHECK(cudaEventCreate(&e));
    return e;
  }
  // Folds finished spans into the tables (keeps the event count bounded).
  void drain() {
    for (Span& s : spans) {
      cudaEventSynchronize(s.stop);
      float ms = 0;
      cudaEventElapsedTime(&ms, s.start, s.stop);
      auto& a = by_name[s.name];
      a.first += ms, a.second += 1;
      auto& b = by_shape[s.name + " " + s.shape];
      b.first += ms, b.second += 1;
      spare.push_back(s.start);
      spare.push_back(s.stop);
    }
    spans.clear();
  }
};

Profiler& profiler() {
  static Profiler p;
  return p;
}

void print_table(const char* title, const std::map<std::string, std::pair<double, long>>& table, size_t rows) {
  std::vector<std::pair<std::string, std::pair<double, long>>> v(table.begin(), table.end());
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  double total = 0;
  for (const auto& e : v) total += e.second.first;
  std::fprintf(stderr, "wick profile, %s: %.1f ms in all\n", title, total);
  for (size_t i = 0; i < std::min(rows, v.size()); ++i)
    std::fprintf(stderr, "  %5.1f%% %10.2f ms %8ld  %s\n", 100 * v[i].second.first / total, v[i].second.first,
                 v[i].second.second, v[i].first.c_str());
}

}  // namespace

bool profiling() { return profiler().enabled; }

void profile_begin(int device, void** token) {
  Profiler& p = profiler();
  cudaEvent_t e = p.event();
  WICK_CUDA_CHECK(cudaEventRecord(e, stream(device)));
  *token = e;
}

void profile_end(int device, void* token, const char* name, const std::string& shape) {
  Profiler& p = profiler();
  cudaEvent_t e = p.event();
  WICK_CUDA_CHECK(cudaEventRecord(e, stream(device)));
  p.spans.push_back({static_cast<cudaEvent_t>(token), e, name, shape});
  if (p.spans.size() >= 4096) p.drain();
}

void profile_reset() {
  Profiler& p = profiler();
  p.drain();
  p.by_name.clear();
  p.by_shape.clear();
}

void profile_report() {
  Profiler& p = profiler();
  if (!p.enabled) return;
  p.drain();
  print_table("GPU time by op", p.by_name, 30);
  print_table("GPU time by op and output shape", p.by_shape, 40);
}

}  // namespace wick::cuda
