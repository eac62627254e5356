// Sampling semantics against distributions computed here from the definitions in transformers'
// logits processors, against goldens made by those processors, and seeded draws against them.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "wick/base/error.h"
#include "wick/models/sampler.h"

using namespace wick::models;

namespace {

std::vector<double> softmax(const std::vector<double>& s) {
  double m = *std::max_element(s.begin(), s.end()), total = 0;
  std::vector<double> p;
  for (double v : s) p.push_back(std::exp(v - m));
  for (double v : p) total += v;
  for (double& v : p) v /= total;
  return p;
}

std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(float(std::log(p)));
  return l;
}

void expect_near(const std::vector<double>& got, const std::vector<double>& want, double tol = 1e-6) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "token " << i;
}

TEST(Sampler, TopPKeepsTheSmallestHeadAboveP) {
  // Sorted ascending 0.1, 0.1, 0.3, 0.5 with cumulative 0.1, 0.2, 0.5, 1.0: top_p 0.75 drops the
  // tail whose cumulative mass is <= 0.25.
  SamplingOptions o;
  o.top_p = 0.75;
  expect_near(next_token_probabilities(logits_of({0.1, 0.5, 0.1, 0.3}), {}, o), {0, 0.625, 0, 0.375});
}

TEST(Sampler, TopKKeepsTiesWithTheKthScore) {
  SamplingOptions o;
  o.top_k = 2;
  std::vector<float> l{1.0f, 3.0f, 2.0f, 2.0f, 0.5f};
  auto p = next_token_probabilities(l, {}, o);
  auto want = softmax({-INFINITY, 3, 2, 2, -INFINITY});
  want[0] = want[4] = 0;
  expect_near(p, want);
}

TEST(Sampler, MinPScalesWithTheTopProbability) {
  SamplingOptions o;
  o.min_p = 0.5;
  // Top is 0.4: tokens below 0.2 go.
  expect_near(next_token_probabilities(logits_of({0.4, 0.25, 0.14, 0.21}), {}, o),
              {0.4 / 0.86, 0.25 / 0.86, 0, 0.21 / 0.86});
}

TEST(Sampler, TemperatureDividesTheLogits) {
  SamplingOptions o;
  o.temperature = 0.5;
  expect_near(next_token_probabilities({1.0f, 2.0f, -1.0f}, {}, o), softmax({2, 4, -2}));
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegativeOncePerDistinctId) {
  SamplingOptions o;
  o.repetition_penalty = 2.0;
  std::vector<float> l{2.0f, -1.0f, 0.5f, 1.0f};
  // Token 0 appears three times and token 1 twice: each is penalised once.
  auto p = next_token_probabilities(l, {0, 1, 0, 1, 0}, o);
  expect_near(p, softmax({1.0, -2.0, 0.5, 1.0}));
}

TEST(Sampler, GreedyTakesTheFirstMaximumAfterThePenalty) {
  SamplingOptions o;
  o.temperature = 0;
  o.repetition_penalty = 4.0;
  Sampler s(o);
  EXPECT_EQ(s.sample({5.0f, 3.0f, 3.0f}, {}), 0);
  EXPECT_EQ(s.sample({5.0f, 3.0f, 3.0f}, {0}), 1);  // 5 / 4 < 3
}

TEST(Sampler, SeededDrawsFollowTheDistributionAndRepeat) {
  SamplingOptions o;
  o.temperature = 0.8;
  o.top_k = 4;
  o.top_p = 0.95;
  o.seed = 1234;
  std::vector<float> l{1.0f, 0.2f, -0.5f, 2.0f, 0.9f, -3.0f};
  auto want = next_token_probabilities(l, {}, o);
  Sampler a(o), b(o);
  const int n = 40000;
  std::map<int, int> counts;
  for (int i = 0; i < n; ++i) {
    int32_t x = a.sample(l, {});
    ASSERT_EQ(x, b.sample(l, {}));
    counts[x]++;
  }
  for (size_t t = 0; t < want.size(); ++t) {
    double freq = double(counts[int(t)]) / n;
    double sigma = std::sqrt(want[t] * (1 - want[t]) / n);
    EXPECT_NEAR(freq, want[t], 5 * sigma + 1e-9) << "token " << t;
  }
}

TEST(Sampler, BadOptionsAreNamed) {
  SamplingOptions o;
  o.top_p = 0;
  EXPECT_THROW(next_token_probabilities({1.0f}, {}, o), wick::Error);
  o.top_p = 1;
  o.temperature = -1;
  try {
    next_token_probabilities({1.0f}, {}, o);
    FAIL();
  } catch (const wick::Error& e) {
    EXPECT_NE(std::string(e.what()).find("temperature"), std::string::npos);
  }
}

}  // namespace

namespace {

// The distribution after penalties and warpers equals transformers' logits processors
// (goldens by scripts/golden/sampling_golden.py).
TEST(Sampler, MatchesTransformersLogitsProcessors) {
  std::ifstream in(std::string(WICK_TEST_DATA_DIR) + "/sampling_golden.json");
  ASSERT_TRUE(in.good()) << "missing tests/data/sampling_golden.json";
  nlohmann::json cases = nlohmann::json::parse(in);
  ASSERT_GE(cases.size(), 7u);
  for (const auto& c : cases) {
    SamplingOptions o;
    const auto& opt = c["options"];
    o.repetition_penalty = opt.value("repetition_penalty", 1.0);
    o.temperature = opt.value("temperature", 1.0);
    o.top_k = opt.value("top_k", 0);
    o.top_p = opt.value("top_p", 1.0);
    o.min_p = opt.value("min_p", 0.0);
    std::vector<float> logits = c["logits"].get<std::vector<float>>();
    std::vector<int32_t> history = c["history"].get<std::vector<int32_t>>();
    auto want = c["probabilities"].get<std::vector<double>>();
    auto got = next_token_probabilities(logits, history, o);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << opt.dump() << " token " << i;
  }
}

}  // namespace
