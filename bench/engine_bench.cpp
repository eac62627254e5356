// Seed micro-workloads of the engine (PERFORMANCE.md, A) on the CPU and, when present, the GPU.
// Each iteration includes a device synchronisation, so figures are host-to-host like the PyTorch
// peer in bench/peers/engine_peer.py. Run both with scripts/bench-engine.sh.
#include <benchmark/benchmark.h>

#include <cmath>

#include "wick/core/autograd.h"
#include "wick/core/backend_hooks.h"
#include "wick/core/graph.h"
#include "wick/core/ops.h"
#include "wick/models/sampler.h"

using namespace wick;

namespace {

Device device_of(const benchmark::State& state) { return state.range(0) ? Device::cuda(0) : Device::cpu(); }

void finish(const Tensor& t) {
  t.eval();
  synchronize(t.device());
}

void BM_Add1024(benchmark::State& state) {
  Device d = device_of(state);
  Tensor a = normal({1024}, 0, 1, Dtype::F32, d), b = normal({1024}, 0, 1, Dtype::F32, d);
  for (auto _ : state) finish(a + b);
}

void BM_Matmul(benchmark::State& state, bool lazy) {
  Device d = device_of(state);
  int64_t n = state.range(1);
  Tensor a = normal({n, n}, 0, 1, Dtype::F32, d), b = normal({n, n}, 0, 1, Dtype::F32, d);
  ExecModeScope mode(lazy ? ExecMode::Lazy : ExecMode::Eager);
  for (auto _ : state) finish(matmul(a, b));
}

// x[1,128,512] A[8,512] B[512,8] scale 2: three ops against the fused kernel.
void BM_LoraDelta(benchmark::State& state, bool fused) {
  Device d = device_of(state);
  Tensor x = normal({1, 128, 512}, 0, 1, Dtype::F32, d);
  Tensor a = normal({8, 512}, 0, 0.05, Dtype::F32, d), b = normal({512, 8}, 0, 0.05, Dtype::F32, d);
  for (auto _ : state) {
    if (fused) finish(lora_delta(x, a, b, 2.0));
    else finish(reference::lora_delta(x, a, b, 2.0));
  }
}

// A LoRA linear layer forward: x W^T + 2 (x A^T) B^T with W [n, n], rank r, 4x16 tokens.
void BM_LoraLayerForward(benchmark::State& state) {
  Device d = device_of(state);
  int64_t n = state.range(1), r = state.range(2);
  Tensor x = normal({4, 16, n}, 0, 1, Dtype::F32, d), w = normal({n, n}, 0, 0.02, Dtype::F32, d);
  Tensor a = normal({r, n}, 0, 0.02, Dtype::F32, d), b = normal({n, r}, 0, 0.02, Dtype::F32, d);
  for (auto _ : state) finish(linear(x, w) + lora_delta(x, a, b, 2.0));
}

// Forward + backward to A and B (W frozen) of the same layer, 4 x tokens.
void BM_LoraLayerTrain(benchmark::State& state) {
  Device d = device_of(state);
  int64_t n = state.range(1), r = state.range(2), tokens = state.range(3);
  Tensor x = normal({4, tokens, n}, 0, 1, Dtype::F32, d), w = normal({n, n}, 0, 0.02, Dtype::F32, d);
  Tensor a = normal({r, n}, 0, 0.02, Dtype::F32, d), b = normal({n, r}, 0, 0.02, Dtype::F32, d);
  Tensor target = normal({4, tokens, n}, 0, 1, Dtype::F32, d);
  for (auto _ : state) {
    auto [loss, grads] = value_and_grad(
        [&](const std::vector<Tensor>& p) { return mean(square(linear(x, w) + lora_delta(x, p[0], p[1], 2.0) - target)); },
        {a, b});
    eval(grads);
    synchronize(d);
  }
}

// KV-cache append for Qwen2.5-0.5B: 24 layers, 2 KV heads x 64, one token into a 1024 cache.
void BM_KvAppend(benchmark::State& state) {
  Device d = device_of(state);
  std::vector<Tensor> keys, values;
  for (int l = 0; l < 24; ++l) {
    keys.push_back(zeros({1, 2, 1024, 64}, Dtype::F32, d));
    values.push_back(zeros({1, 2, 1024, 64}, Dtype::F32, d));
  }
  Tensor k = normal({1, 2, 1, 64}, 0, 1, Dtype::F32, d), v = normal({1, 2, 1, 64}, 0, 1, Dtype::F32, d);
  int64_t pos = 0;
  for (auto _ : state) {
    for (int l = 0; l < 24; ++l) {
      keys[l] = slice_update(std::move(keys[l]), k, {0, 0, pos, 0});
      values[l] = slice_update(std::move(values[l]), v, {0, 0, pos, 0});
    }
    synchronize(d);
    pos = (pos + 1) % 1024;
  }
}

// AdamW update of a 512x512 parameter written with ops (eager: one pass per op; lazy: fused).
void BM_AdamWStep(benchmark::State& state, bool lazy) {
  Device d = device_of(state);
  Tensor p = normal({512, 512}, 0, 1, Dtype::F32, d), g = normal({512, 512}, 0, 1, Dtype::F32, d);
  Tensor m = zeros({512, 512}, Dtype::F32, d), v = zeros({512, 512}, Dtype::F32, d);
  const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
  int step = 0;
  ExecModeScope mode(lazy ? ExecMode::Lazy : ExecMode::Eager);
  for (auto _ : state) {
    ++step;
    m = m * b1 + g * (1 - b1);
    v = v * b2 + g * g * (1 - b2);
    double c1 = 1 - std::pow(b1, step), c2 = 1 - std::pow(b2, step);
    p = p * (1 - lr * wd) - (m / c1) / (sqrt(v / c2) + eps) * lr;
    eval({m, v, p});
    synchronize(d);
  }
}

// The same step as one adamw_update node (what train::AdamW runs).
void BM_AdamWUpdate(benchmark::State& state) {
  Device d = device_of(state);
  Tensor p = normal({512, 512}, 0, 1, Dtype::F32, d), g = normal({512, 512}, 0, 1, Dtype::F32, d);
  Tensor m = zeros({512, 512}, Dtype::F32, d), v = zeros({512, 512}, Dtype::F32, d);
  AdamWHyper h{.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01};
  int64_t step = 0;
  for (auto _ : state) {
    AdamWTensors r = adamw_update({p}, {g}, {m}, {v}, {++step}, h);
    p = r.params[0], m = r.m[0], v = r.v[0];
    eval({p, m, v});
    synchronize(d);
  }
}

// Choosing a token from logits that live on the device (host to host, as a generator needs it).
// kind: 0 greedy, 1 top-k (arg), 2 top-p (arg / 100), 3 temperature 0.7.
void BM_Sample(benchmark::State& state) {
  Device d = device_of(state);
  int64_t vocab = state.range(1), kind = state.range(2), arg = state.range(3);
  Tensor logits = normal({vocab}, 0, 3, Dtype::F32, d).eval();
  models::SamplingOptions o;
  o.temperature = kind == 0 ? 0.0 : (kind == 3 ? 0.7 : 1.0);
  if (kind == 1) o.top_k = arg;
  if (kind == 2) o.top_p = double(arg) / 100.0;
  models::Sampler sampler(o);
  std::vector<int32_t> history;
  for (auto _ : state) benchmark::DoNotOptimize(sampler.sample(logits.to_vector<float>(), history));
}

void register_all() {
  std::vector<int64_t> devices{0};
  if (cuda::available()) devices.push_back(1);
  for (int64_t dev : devices) {
    const char* tag = dev ? "cuda" : "cpu";
    auto reg = [&](const std::string& name, auto fn) {
      return benchmark::RegisterBenchmark((name + "/" + tag).c_str(), fn)->UseRealTime()->Unit(benchmark::kMicrosecond);
    };
    reg("add_1024", BM_Add1024)->Args({dev});
    for (int64_t n : {64, 128}) {
      reg("matmul_" + std::to_string(n) + "/eager", [](benchmark::State& s) { BM_Matmul(s, false); })->Args({dev, n});
      reg("matmul_" + std::to_string(n) + "/lazy", [](benchmark::State& s) { BM_Matmul(s, true); })->Args({dev, n});
    }
    reg("lora_delta_1x128x512_r8/unfused", [](benchmark::State& s) { BM_LoraDelta(s, false); })->Args({dev});
    reg("lora_delta_1x128x512_r8/fused", [](benchmark::State& s) { BM_LoraDelta(s, true); })->Args({dev});
    reg("lora_layer_fwd_4x16/512_r8", BM_LoraLayerForward)->Args({dev, 512, 8});
    reg("lora_layer_fwd_4x16/1024_r8", BM_LoraLayerForward)->Args({dev, 1024, 8});
    reg("lora_layer_fwd_4x16/2048_r8", BM_LoraLayerForward)->Args({dev, 2048, 8});
    reg("lora_layer_fwd_4x16/512_r16", BM_LoraLayerForward)->Args({dev, 512, 16});
    reg("lora_layer_fwdbwd_4x16/512_r8", BM_LoraLayerTrain)->Args({dev, 512, 8, 16});
    reg("lora_layer_train_4x64/512_r8", BM_LoraLayerTrain)->Args({dev, 512, 8, 64});
    reg("kv_append_qwen05b_24layers", BM_KvAppend)->Args({dev});
    reg("adamw_512x512/eager", [](benchmark::State& s) { BM_AdamWStep(s, false); })->Args({dev});
    reg("adamw_512x512/lazy", [](benchmark::State& s) { BM_AdamWStep(s, true); })->Args({dev});
    reg("adamw_512x512/update", BM_AdamWUpdate)->Args({dev});
    for (int64_t vocab : {1000, 32000, 100000}) {
      std::string v = std::to_string(vocab);
      reg("sample_greedy_" + v, BM_Sample)->Args({dev, vocab, 0, 0});
      reg("sample_top_p0.9_" + v, BM_Sample)->Args({dev, vocab, 2, 90});
    }
    for (int64_t k : {10, 40, 50}) reg("sample_top_k" + std::to_string(k) + "_32000", BM_Sample)->Args({dev, 32000, 1, k});
    reg("sample_top_p0.95_32000", BM_Sample)->Args({dev, 32000, 2, 95});
    reg("sample_temperature0.7_32000", BM_Sample)->Args({dev, 32000, 3, 0});
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
