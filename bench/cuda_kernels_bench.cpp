// CUDA kernels at the shapes of the training workload (PERFORMANCE.md, D: Qwen2.5-0.5B, batch
// 8 x 512 tokens, bf16): attention forward/backward, norms, softmax, cross-entropy and the MLP
// GEMM. Each iteration synchronises the device; counters give the achieved rate (bytes/s for
// memory-bound kernels, FLOP/s for products) to set against the card's limits.
#include <benchmark/benchmark.h>

#include "wick/core/autograd.h"
#include "wick/core/backend_hooks.h"
#include "wick/core/ops.h"

using namespace wick;

namespace {

constexpr int64_t kBatch = 8, kSeq = 512, kHidden = 896, kHeads = 14, kKvHeads = 2, kHeadDim = 64, kMlp = 4864,
                  kVocab = 151936;

bool skip_without_gpu(benchmark::State& state) {
  if (cuda::available()) return false;
  state.SkipWithError("no CUDA GPU");
  return true;
}

Tensor rand_gpu(const Shape& shape, Dtype dtype = Dtype::BF16) {
  return astype(normal(shape, 0, 1, Dtype::F32, Device::cuda(0)), dtype).eval();
}

void finish(const Tensor& t) {
  t.eval();
  synchronize(t.device());
}

void rate(benchmark::State& state, double bytes, double flops) {
  if (bytes > 0) state.counters["bytes/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
  if (flops > 0) state.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_AttentionForward(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  Tensor q = rand_gpu({kBatch, kHeads, kSeq, kHeadDim}), k = rand_gpu({kBatch, kKvHeads, kSeq, kHeadDim}),
         v = rand_gpu({kBatch, kKvHeads, kSeq, kHeadDim});
  for (auto _ : state) finish(scaled_dot_product_attention(q, k, v, std::nullopt, true));
  rate(state, 0, 2.0 * 2 * kBatch * kHeads * kSeq * kSeq * kHeadDim / 2);  // causal: half the scores
}

void BM_AttentionForwardBackward(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  Tensor q = rand_gpu({kBatch, kHeads, kSeq, kHeadDim}), k = rand_gpu({kBatch, kKvHeads, kSeq, kHeadDim}),
         v = rand_gpu({kBatch, kKvHeads, kSeq, kHeadDim});
  for (auto _ : state) {
    auto [value, grads] = value_and_grad(
        [](const std::vector<Tensor>& x) {
          return sum(astype(scaled_dot_product_attention(x[0], x[1], x[2], std::nullopt, true), Dtype::F32));
        },
        {q, k, v});
    finish(grads[0]);
  }
  rate(state, 0, 2.0 * 7 * kBatch * kHeads * kSeq * kSeq * kHeadDim / 2);  // 2 forward + 5 backward products
}

void BM_RMSNorm(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  Tensor x = rand_gpu({kBatch * kSeq, kHidden}), w = rand_gpu({kHidden});
  for (auto _ : state) finish(rms_norm(x, w, 1e-6));
  rate(state, 2.0 * 2 * kBatch * kSeq * kHidden, 0);
}

void BM_Softmax(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  Tensor x = rand_gpu({kBatch * kHeads, kSeq, kSeq});
  for (auto _ : state) finish(softmax(x));
  rate(state, 2.0 * 2 * kBatch * kHeads * kSeq * kSeq, 0);
}

void BM_CrossEntropy(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  int64_t rows = state.range(0);
  Tensor logits = rand_gpu({rows, kVocab});
  Tensor targets = astype(arange(0, double(rows), 1, Dtype::I64, Device::cuda(0)) * 37.0, Dtype::I64).eval();
  for (auto _ : state) finish(cross_entropy(logits, targets));
  rate(state, 2.0 * rows * kVocab, 0);
}

void BM_SumOverTokens(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  Tensor x = rand_gpu({kBatch * kSeq, kHidden}, Dtype::F32);
  for (auto _ : state) finish(sum(x, {0}));
  rate(state, 4.0 * kBatch * kSeq * kHidden, 0);
}

void BM_MlpGemm(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  Tensor x = rand_gpu({kBatch * kSeq, kHidden}), w = rand_gpu({kMlp, kHidden});
  for (auto _ : state) finish(linear(x, w));
  rate(state, 0, 2.0 * kBatch * kSeq * kHidden * kMlp);
}

}  // namespace

BENCHMARK(BM_AttentionForward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AttentionForwardBackward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_RMSNorm)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Softmax)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_CrossEntropy)->Arg(1)->Arg(kBatch * kSeq)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_SumOverTokens)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_MlpGemm)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_MAIN();
