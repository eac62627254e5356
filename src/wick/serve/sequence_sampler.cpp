// Per-sequence sampling with OpenAI's penalties and logprobs.
#include "wick/serve/sequence_sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace wick::serve {

namespace {

models::SamplingOptions sampler_options(const SamplingParams& p) {
  models::SamplingOptions o;
  o.temperature = p.temperature;
  o.top_k = p.top_k;
  o.top_p = p.top_p;
  o.min_p = p.min_p;
  o.repetition_penalty = p.repetition_penalty;
  o.seed = p.seed;
  return o;
}

// log(sum(exp(logits))), in double.
double log_sum_exp(const float* logits, int64_t vocab) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < vocab; ++i) m = std::max(m, double(logits[i]));
  if (std::isinf(m)) return m;
  double total = 0;
  for (int64_t i = 0; i < vocab; ++i) total += std::exp(double(logits[i]) - m);
  return m + std::log(total);
}

}  // namespace

std::vector<TokenLogprob> top_logprobs(const float* logits, int64_t vocab, int k, double* log_normalizer) {
  double norm = log_sum_exp(logits, vocab);
  if (log_normalizer) *log_normalizer = norm;
  k = int(std::min<int64_t>(k, vocab));
  std::vector<TokenLogprob> out;
  if (k <= 0) return out;
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  for (int i = 0; i < k; ++i) out.push_back({order[i], float(double(logits[order[i]]) - norm)});
  return out;
}

SequenceSampler::SequenceSampler(const SamplingParams& params, const std::vector<int32_t>& prompt)
    : params_(params), sampler_(sampler_options(params)), history_(prompt) {}

TokenEvent SequenceSampler::next(const float* logits, int64_t vocab, int top_k_logprobs) {
  std::vector<float> scores(logits, logits + vocab);
  // OpenAI: logit -= count * frequency_penalty + (count > 0) * presence_penalty, output tokens only.
  if (params_.presence_penalty != 0 || params_.frequency_penalty != 0)
    for (const auto& [id, count] : generated_)
      if (id >= 0 && id < vocab)
        scores[id] -= float(double(count) * params_.frequency_penalty + params_.presence_penalty);
  int32_t id = sampler_.sample(scores, history_);
  double norm = 0;
  TokenEvent event;
  event.top_logprobs = top_logprobs(logits, vocab, top_k_logprobs, &norm);
  event.id = id;
  event.logprob = float(double(logits[id]) - norm);
  history_.push_back(id);
  ++generated_[id];
  return event;
}

}  // namespace wick::serve
