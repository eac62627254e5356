// runtime::generate's reports on the tiny Qwen2 fixture: log-probabilities and their alternatives
// against float64 log-softmax of DecoderModel::forward's logits over the whole generated sequence
// (the one-pass reference path), and the prompt's progress reported once per prefill chunk.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "wick/core/ops.h"
#include "wick/models/decoder.h"
#include "wick/runtime/decoder_runner.h"
#include "wick/runtime/generator.h"

using namespace wick;

namespace {

std::string tiny() { return std::string(WICK_TEST_DATA_DIR) + "/models/qwen2_tied"; }

runtime::RunnerOptions small_options() {
  runtime::RunnerOptions o;
  o.max_batch = 4;
  o.max_context = 64;
  o.block_size = 4;
  return o;
}

TEST(Generator, LogprobsAreLogSoftmaxOfTheModelsLogits) {
  auto model = models::DecoderModel::load(tiny(), Device::cpu(), Dtype::F32);
  runtime::DecoderRunner runner(model, small_options());
  const int k = 5;
  std::vector<runtime::TokenLogprobs> greedy_lp, sampled_lp;
  runtime::GenerationJob greedy;
  greedy.prompt = {5, 9, 33, 2, 7};
  greedy.options.max_tokens = 6;
  greedy.options.sampling.temperature = 0;
  greedy.logprobs = &greedy_lp;
  greedy.top_logprobs = k;
  runtime::GenerationJob sampled = greedy;
  sampled.options.sampling = models::SamplingOptions{0.9, 0, 1.0, 0.0, 1.0, 7};
  sampled.logprobs = &sampled_lp;
  auto results = runtime::generate(runner, nullptr, {greedy, sampled});
  // Sampling with logprobs draws as the scheduler's own sampler does: the same ids without them.
  runtime::GenerationJob plain = sampled;
  plain.logprobs = nullptr;
  EXPECT_EQ(runtime::generate(runner, nullptr, {plain})[0].ids, results[1].ids);
  for (size_t j = 0; j < 2; ++j) {
    const auto& ids = results[j].ids;
    const auto& lp = j == 0 ? greedy_lp : sampled_lp;
    ASSERT_EQ(lp.size(), ids.size());
    std::vector<int64_t> sequence(greedy.prompt.begin(), greedy.prompt.end());
    sequence.insert(sequence.end(), ids.begin(), ids.end());
    int64_t n = int64_t(sequence.size()), vocab = model.config().vocab_size;
    std::vector<float> logits =
        model.forward(Tensor::from_vector(sequence, {1, n}, Device::cpu())).to_vector<float>();  // [1, n, vocab]
    for (size_t i = 0; i < ids.size(); ++i) {
      const float* row = logits.data() + (int64_t(greedy.prompt.size()) - 1 + int64_t(i)) * vocab;
      double top = *std::max_element(row, row + vocab), sum = 0;
      for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(row[v]) - top);
      auto log_p = [&](int32_t id) { return double(row[id]) - top - std::log(sum); };
      EXPECT_EQ(lp[i].id, ids[i]);
      EXPECT_NEAR(lp[i].logprob, log_p(ids[i]), 1e-4) << "job " << j << " token " << i;
      std::vector<int32_t> order(static_cast<size_t>(vocab));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
      ASSERT_EQ(lp[i].top.size(), size_t(k));
      for (int r = 0; r < k; ++r) {
        EXPECT_NEAR(lp[i].top[size_t(r)].second, log_p(order[size_t(r)]), 1e-4) << "job " << j << " token " << i;
        EXPECT_NEAR(lp[i].top[size_t(r)].second, log_p(lp[i].top[size_t(r)].first), 1e-4);
      }
      if (j == 0) EXPECT_EQ(lp[i].top[0].first, ids[i]) << "greedy picks the most likely token";
    }
  }
}

TEST(Generator, PrefillProgressIsReportedPerChunk) {
  auto model = models::DecoderModel::load(tiny(), Device::cpu(), Dtype::F32);
  runtime::DecoderRunner runner(model, small_options());
  runtime::GenerationJob job;
  for (int i = 0; i < 20; ++i) job.prompt.push_back(3 + i);
  job.options.max_tokens = 3;
  job.options.sampling.temperature = 0;
  std::vector<std::pair<int64_t, int64_t>> seen;
  job.on_prefill = [&](int64_t done, int64_t total) { seen.emplace_back(done, total); };
  runtime::SchedulerOptions chunks;
  chunks.max_step_tokens = 8;
  auto chunked = runtime::generate(runner, nullptr, {job}, chunks);
  EXPECT_EQ(seen, (std::vector<std::pair<int64_t, int64_t>>{{8, 20}, {16, 20}, {20, 20}}));
  job.on_prefill = nullptr;
  EXPECT_EQ(runtime::generate(runner, nullptr, {job})[0].ids, chunked[0].ids);
}

}  // namespace
