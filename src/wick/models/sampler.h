// Choosing the next token from logits with transformers' semantics: repetition penalty, then
// temperature, top-k, top-p and min-p, then a seeded draw (or the argmax when greedy).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace wick::models {

struct SamplingOptions {
  double temperature = 1.0;  // 0: greedy
  int64_t top_k = 0;         // 0: off
  double top_p = 1.0;        // 1: off
  double min_p = 0.0;        // 0: off
  double repetition_penalty = 1.0;  // 1: off
  uint64_t seed = 0;
};

// The distribution left after the penalties and filters, as probabilities over the vocabulary
// (zeros where filtered). `history` holds the ids seen so far (prompt and generated).
std::vector<double> next_token_probabilities(std::vector<float> logits, const std::vector<int32_t>& history,
                                             const SamplingOptions& options);

class Sampler {
 public:
  explicit Sampler(SamplingOptions options) : options_(options), rng_(options.seed) {}
  // The next token id; `probability` and `logprob` of the chosen token under the final
  // distribution (for greedy: under softmax of the penalised logits).
  int32_t sample(const std::vector<float>& logits, const std::vector<int32_t>& history, double* probability = nullptr,
                 double* logprob = nullptr);

 private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
};

}  // namespace wick::models
