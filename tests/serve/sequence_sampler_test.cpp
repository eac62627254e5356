// Per-sequence sampling: OpenAI's presence and frequency penalties (hand-worked greedy choices),
// logprobs against a float64 log-softmax, seeded draws.
#include "wick/serve/sequence_sampler.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace wick::serve;

namespace {

std::vector<int32_t> greedy_run(const std::vector<float>& logits, SamplingParams p, int steps) {
  SequenceSampler sampler(p, {0});
  std::vector<int32_t> ids;
  for (int i = 0; i < steps; ++i) ids.push_back(sampler.next(logits.data(), int64_t(logits.size()), 0).id);
  return ids;
}

}  // namespace

TEST(SequenceSampler, FrequencyPenaltyGrowsWithEachRepeat) {
  // Token 1 (1.0) loses 0.2 per use; token 2 (0.9) too: they alternate.
  SamplingParams p;
  p.frequency_penalty = 0.2;
  EXPECT_EQ(greedy_run({0, 1.0f, 0.9f, 0}, p, 4), (std::vector<int32_t>{1, 2, 1, 2}));
}

TEST(SequenceSampler, PresencePenaltyIsPaidOnce) {
  // After one use, token 1 sits at 0.4 for good: above token 3 (0.3), and token 2 falls to -0.1.
  SamplingParams p;
  p.presence_penalty = 0.6;
  EXPECT_EQ(greedy_run({0, 1.0f, 0.5f, 0.3f}, p, 4), (std::vector<int32_t>{1, 2, 1, 1}));
}

TEST(SequenceSampler, PenaltiesIgnoreThePrompt) {
  SamplingParams p;
  p.presence_penalty = 2;
  SequenceSampler sampler(p, {1, 1, 1});
  std::vector<float> logits{0, 1.0f, 0.5f};
  EXPECT_EQ(sampler.next(logits.data(), 3, 0).id, 1);
}

TEST(SequenceSampler, LogprobsAreTheLogSoftmaxOfTheModelsLogits) {
  std::vector<float> logits{0.5f, -1.25f, 3.0f, 2.0f, 2.0f, -7.5f};
  double total = 0;
  for (float v : logits) total += std::exp(double(v));
  auto reference = [&](int id) { return std::log(std::exp(double(logits[id])) / total); };
  SamplingParams p;
  p.frequency_penalty = 1.5;  // changes the choice, not the reported distribution
  SequenceSampler sampler(p, {0});
  TokenEvent first = sampler.next(logits.data(), 6, 4);
  EXPECT_EQ(first.id, 2);
  EXPECT_NEAR(first.logprob, reference(2), 1e-6);
  ASSERT_EQ(first.top_logprobs.size(), 4u);
  std::vector<int32_t> order;
  for (const TokenLogprob& t : first.top_logprobs) {
    order.push_back(t.id);
    EXPECT_NEAR(t.logprob, reference(t.id), 1e-6);
  }
  EXPECT_EQ(order, (std::vector<int32_t>{2, 3, 4, 0}));  // ties keep the lower id first
  TokenEvent second = sampler.next(logits.data(), 6, 0);
  EXPECT_EQ(second.id, 3);  // 3.0 - 1.5 < 2.0
  EXPECT_NEAR(second.logprob, reference(3), 1e-6);
  EXPECT_TRUE(second.top_logprobs.empty());
}

TEST(SequenceSampler, SeededDrawsRepeat) {
  std::vector<float> logits(50);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = float(std::sin(double(i)));
  auto draw = [&](uint64_t seed) {
    SamplingParams p;
    p.temperature = 1.0;
    p.seed = seed;
    SequenceSampler sampler(p, {0});
    std::vector<int32_t> ids;
    for (int i = 0; i < 20; ++i) ids.push_back(sampler.next(logits.data(), 50, 0).id);
    return ids;
  };
  EXPECT_EQ(draw(7), draw(7));
  EXPECT_NE(draw(7), draw(8));
}
