// Each fused kernel against the composition of basic ops it replaces (its `wick::reference::`
// oracle), forward and forward+backward, at the shapes of the training workload (PERFORMANCE.md,
// D: Qwen2.5-0.5B, 8 x 512 tokens, bf16) on the GPU, or smaller ones on the CPU.
#include <benchmark/benchmark.h>

#include "wick/core/autograd.h"
#include "wick/core/backend_hooks.h"
#include "wick/core/graph.h"
#include "wick/core/ops.h"

using namespace wick;

namespace {

bool gpu(const benchmark::State& s) { return s.range(0) == 1; }
Device device_of(const benchmark::State& s) { return gpu(s) ? Device::cuda(0) : Device::cpu(); }
// Tokens: 8 x 512 on the GPU, 4 x 64 on the CPU.
int64_t tokens(const benchmark::State& s) { return gpu(s) ? 8 * 512 : 4 * 64; }
Dtype dtype_of(const benchmark::State& s) { return gpu(s) ? Dtype::BF16 : Dtype::F32; }

Tensor rnd(const Shape& shape, const benchmark::State& s, double std = 1.0) {
  return astype(normal(shape, 0, std, Dtype::F32, device_of(s)), dtype_of(s)).eval();
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// Forward only (backward == false) or value_and_grad of sum(f(x) * w) with respect to all inputs.
void run(benchmark::State& state, const Fn& f, const std::vector<Tensor>& inputs, bool backward) {
  Tensor probe = f(inputs);
  Tensor w = rnd(probe.shape(), state, 0.01);
  auto once = [&] {
    if (!backward) {
      f(inputs).eval();
    } else {
      auto [v, g] = value_and_grad([&](const std::vector<Tensor>& x) { return sum(astype(f(x) * w, Dtype::F32)); }, inputs);
      eval(g);
    }
    synchronize(inputs[0].device());
  };
  once();
  for (auto _ : state) once();
}

void BM_RMSNorm(benchmark::State& s, bool fused, bool bwd) {
  Tensor x = rnd({tokens(s), 896}, s), w = rnd({896}, s);
  run(s, [&](auto& in) { return fused ? rms_norm(in[0], in[1], 1e-6) : reference::rms_norm(in[0], in[1], 1e-6); }, {x, w}, bwd);
}
void BM_LayerNorm(benchmark::State& s, bool fused, bool bwd) {
  Tensor x = rnd({tokens(s), 384}, s), w = rnd({384}, s), b = rnd({384}, s);
  run(s, [&](auto& in) { return fused ? layer_norm(in[0], in[1], in[2], 1e-12) : reference::layer_norm(in[0], in[1], in[2], 1e-12); },
      {x, w, b}, bwd);
}
void BM_Softmax(benchmark::State& s, bool fused, bool bwd) {
  Tensor x = rnd({tokens(s), 1024}, s);
  run(s, [&](auto& in) { return fused ? softmax(in[0]) : reference::softmax(in[0]); }, {x}, bwd);
}
void BM_SwiGLU(benchmark::State& s, bool fused, bool bwd) {
  Tensor a = rnd({tokens(s), 4864}, s), b = rnd({tokens(s), 4864}, s);
  run(s, [&](auto& in) { return fused ? swiglu(in[0], in[1]) : reference::swiglu(in[0], in[1]); }, {a, b}, bwd);
}
void BM_RoPE(benchmark::State& s, bool fused, bool bwd) {
  int64_t b = gpu(s) ? 8 : 4, t = gpu(s) ? 512 : 64;
  Tensor x = rnd({b, 14, t, 64}, s);
  Tensor pos = arange(0, double(t), 1, Dtype::I64, device_of(s));
  run(s, [&](auto& in) { return fused ? rope(in[0], pos) : reference::rope(in[0], pos, {}); }, {x}, bwd);
}
void BM_Attention(benchmark::State& s, bool fused, bool bwd) {
  int64_t b = gpu(s) ? 8 : 2, t = gpu(s) ? 512 : 64;
  Tensor q = rnd({b, 14, t, 64}, s), k = rnd({b, 2, t, 64}, s), v = rnd({b, 2, t, 64}, s);
  run(s, [&](auto& in) {
        return fused ? scaled_dot_product_attention(in[0], in[1], in[2], std::nullopt, true)
                     : reference::scaled_dot_product_attention(in[0], in[1], in[2], std::nullopt, true, std::nullopt);
      }, {q, k, v}, bwd);
}
void BM_CrossEntropy(benchmark::State& s, bool fused, bool bwd) {
  int64_t n = gpu(s) ? 2048 : 64, vocab = gpu(s) ? 151936 : 32000;
  Tensor logits = rnd({n, vocab}, s);
  Tensor targets = astype(uniform({n}, 0, double(vocab - 1), Dtype::F32, device_of(s)), Dtype::I64);
  run(s, [&](auto& in) {
        return fused ? cross_entropy(in[0], targets) : reference::cross_entropy(in[0], targets, -100, Reduction::Mean);
      }, {logits}, bwd);
}

void register_all() {
  std::vector<int64_t> devices{0};
  if (cuda::available()) devices.push_back(1);
  using Bench = void (*)(benchmark::State&, bool, bool);
  std::vector<std::pair<const char*, Bench>> all = {{"rms_norm", BM_RMSNorm}, {"layer_norm", BM_LayerNorm},
                                                    {"softmax", BM_Softmax},   {"swiglu", BM_SwiGLU},
                                                    {"rope", BM_RoPE},         {"attention_causal", BM_Attention},
                                                    {"cross_entropy", BM_CrossEntropy}};
  for (int64_t dev : devices)
    for (auto [name, fn] : all)
      for (bool bwd : {false, true})
        for (bool fused : {true, false}) {
          std::string label = std::string(name) + (bwd ? "/fwd+bwd/" : "/fwd/") + (fused ? "fused" : "composed") +
                              (dev ? "/cuda" : "/cpu");
          benchmark::RegisterBenchmark(label.c_str(), [fn, fused, bwd](benchmark::State& s) { fn(s, fused, bwd); })
              ->Args({dev})
              ->UseRealTime()
              ->Unit(benchmark::kMicrosecond);
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
