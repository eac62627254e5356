// sample_tokens on the GPU at decode shapes: Qwen2.5's vocabulary (151936 tokens), 1, 8 and 64
// rows, for greedy rows, top-p 0.9 and top-k 40 + top-p 0.95. Logits are shaped like a language
// model's (a few tokens far above a normal bulk); top-p also runs over flat logits, its worst case
// (most of the vocabulary survives, so the kernel works over the whole row in float64).
// Columns (µs per call): "call" is the median of 200 calls each bracketed by CUDA events (launch
// included), "kernel" the mean over 200 calls queued back to back; "host" is the path this op
// replaces, the median of copying the logits to the host and running models::Sampler on each row,
// and "ratio" host / call.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "wick/backend/cuda/runtime.h"
#include "wick/core/backend_hooks.h"
#include "wick/core/ops.h"
#include "wick/models/sampler.h"

using namespace wick;

namespace {

constexpr int64_t kVocab = 151936;
constexpr int kCalls = 200;

struct Case {
  std::string name;
  double temperature, top_k, top_p;
  bool peaked;
};

std::vector<float> make_logits(std::mt19937_64& rng, int64_t rows, bool peaked) {
  std::normal_distribution<double> normal(0, 1);
  std::uniform_int_distribution<int64_t> id(0, kVocab - 1);
  std::vector<float> l(static_cast<size_t>(rows * kVocab));
  for (float& x : l) x = float(peaked ? 2.5 * normal(rng) : normal(rng));
  if (peaked)
    for (int64_t r = 0; r < rows; ++r)
      for (int i = 0; i < 6; ++i) l[size_t(r * kVocab + id(rng))] += float(8 + 2 * i);
  return l;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail(what, ": ", cudaGetErrorString(e));
}

}  // namespace

int main() {
  if (!cuda::available()) {
    std::printf("no CUDA GPU\n");
    return 0;
  }
  std::vector<Case> cases = {{"greedy", 0, 0, 1, true},
                             {"top_p=0.9", 1, 0, 0.9, true},
                             {"top_k=40,top_p=0.95", 0.7, 40, 0.95, true},
                             {"top_p=0.9 (flat logits)", 1, 0, 0.9, false}};
  std::mt19937_64 rng(1);
  cudaStream_t stream = cuda::stream(0);
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  std::printf("%-26s %5s %10s %10s %10s %8s\n", "case (vocab 151936)", "rows", "call µs", "kernel µs", "host µs",
              "ratio");
  for (const Case& c : cases) {
    for (int64_t rows : {1, 8, 64}) {
      std::vector<float> host_logits = make_logits(rng, rows, c.peaked);
      std::vector<double> params, uniforms;
      std::vector<int32_t> history;
      std::uniform_real_distribution<double> unit(0.0, 1.0);
      for (int64_t r = 0; r < rows; ++r) {
        params.insert(params.end(), {c.temperature, c.top_k, c.top_p, 0.0, 1.1});
        uniforms.push_back(unit(rng));
        for (int i = 0; i < 64; ++i) history.push_back(int32_t(i * 997 % kVocab));
      }
      Device gpu = Device::cuda(0);
      Tensor logits = Tensor::from_vector(host_logits, {rows, kVocab}, gpu);
      Tensor p = Tensor::from_vector(params, {rows, 5}, gpu), h = Tensor::from_vector(history, {rows, 64}, gpu),
             u = Tensor::from_vector(uniforms, {rows}, gpu);
      for (int i = 0; i < 10; ++i) sample_tokens(logits, p, h, u).to_vector<double>();
      std::vector<double> per_call;
      for (int i = 0; i < kCalls; ++i) {
        check(cudaEventRecord(start, stream), "cudaEventRecord");
        Tensor out = sample_tokens(logits, p, h, u);
        check(cudaEventRecord(stop, stream), "cudaEventRecord");
        check(cudaEventSynchronize(stop), "cudaEventSynchronize");
        float ms = 0;
        check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
        per_call.push_back(1000.0 * ms);
      }
      {
        std::vector<Tensor> outs;
        check(cudaEventRecord(start, stream), "cudaEventRecord");
        for (int i = 0; i < kCalls; ++i) outs.push_back(sample_tokens(logits, p, h, u));
        check(cudaEventRecord(stop, stream), "cudaEventRecord");
        check(cudaEventSynchronize(stop), "cudaEventSynchronize");
      }
      float queued_ms = 0;
      check(cudaEventElapsedTime(&queued_ms, start, stop), "cudaEventElapsedTime");
      std::vector<double> host;
      for (int i = 0, runs = rows >= 64 ? 3 : 10; i < runs; ++i) {  // the host path is slow
        auto t0 = std::chrono::steady_clock::now();
        std::vector<float> copied = logits.to_vector<float>();
        for (int64_t r = 0; r < rows; ++r) {
          models::SamplingOptions o;
          o.temperature = c.temperature;
          o.top_k = int64_t(c.top_k);
          o.top_p = c.top_p;
          o.repetition_penalty = 1.1;
          models::Sampler sampler(o);
          std::vector<float> row(copied.begin() + r * kVocab, copied.begin() + (r + 1) * kVocab);
          sampler.sample(row, std::vector<int32_t>(history.begin() + r * 64, history.begin() + (r + 1) * 64));
        }
        host.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
      }
      double call = median(per_call), host_us = median(host);
      std::printf("%-26s %5lld %10.1f %10.1f %10.1f %7.1fx\n", c.name.c_str(), (long long)rows, call,
                  1000.0 * queued_ms / kCalls, host_us, host_us / call);
    }
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return 0;
}
