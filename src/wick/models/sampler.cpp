// Logits processors and warpers in transformers' order and semantics.
#include "wick/models/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_set>

#include "wick/base/error.h"

namespace wick::models {

namespace {

void check(const SamplingOptions& o, size_t vocab) {
  WICK_CHECK(vocab > 0, "sampling: empty logits");
  WICK_CHECK(o.temperature >= 0 && std::isfinite(o.temperature), "sampling: temperature must be >= 0, got ", o.temperature);
  WICK_CHECK(o.top_k >= 0, "sampling: top_k must be >= 0, got ", o.top_k);
  WICK_CHECK(o.top_p > 0 && o.top_p <= 1, "sampling: top_p must be in (0, 1], got ", o.top_p);
  WICK_CHECK(o.min_p >= 0 && o.min_p <= 1, "sampling: min_p must be in [0, 1], got ", o.min_p);
  WICK_CHECK(o.repetition_penalty > 0, "sampling: repetition_penalty must be > 0, got ", o.repetition_penalty);
}

// Divides positive logits and multiplies negative ones, once per distinct id seen.
void apply_repetition_penalty(std::vector<double>& s, const std::vector<int32_t>& history, double penalty) {
  if (penalty == 1.0) return;
  std::unordered_set<int32_t> seen(history.begin(), history.end());
  for (int32_t id : seen) {
    if (id < 0 || size_t(id) >= s.size()) continue;
    s[id] = s[id] < 0 ? s[id] * penalty : s[id] / penalty;
  }
}

std::vector<double> softmax(const std::vector<double>& s) {
  double m = -std::numeric_limits<double>::infinity();
  for (double v : s) m = std::max(m, v);
  std::vector<double> p(s.size());
  double total = 0;
  for (size_t i = 0; i < s.size(); ++i) total += p[i] = std::isinf(s[i]) && s[i] < 0 ? 0.0 : std::exp(s[i] - m);
  for (double& v : p) v /= total;
  return p;
}

const double kMasked = -std::numeric_limits<double>::infinity();

}  // namespace

std::vector<double> next_token_probabilities(std::vector<float> logits, const std::vector<int32_t>& history,
                                             const SamplingOptions& o) {
  check(o, logits.size());
  std::vector<double> s(logits.begin(), logits.end());
  apply_repetition_penalty(s, history, o.repetition_penalty);
  if (o.temperature > 0 && o.temperature != 1.0)
    for (double& v : s) v /= o.temperature;
  if (o.top_k > 0 && size_t(o.top_k) < s.size()) {
    // Everything below the k-th largest score goes (ties with it stay), as TopKLogitsWarper.
    std::vector<double> sorted = s;
    std::nth_element(sorted.begin(), sorted.begin() + (o.top_k - 1), sorted.end(), std::greater<>());
    double kth = sorted[o.top_k - 1];
    for (double& v : s)
      if (v < kth) v = kMasked;
  }
  if (o.top_p < 1.0) {
    // Going down from the most likely token, a token stays while the mass above it is below
    // top_p (the same set TopPLogitsWarper keeps: ascending cumulative mass > 1 - top_p). Only
    // the head of the order is needed, so it is sorted in growing chunks.
    std::vector<double> p = softmax(s);
    std::vector<size_t> order(s.size());
    std::iota(order.begin(), order.end(), 0);
    auto more_likely = [&](size_t a, size_t b) { return s[a] > s[b] || (s[a] == s[b] && a > b); };
    size_t m = std::min<size_t>(order.size(), 64);
    double head = 0;
    while (true) {
      std::partial_sort(order.begin(), order.begin() + m, order.end(), more_likely);
      head = 0;
      for (size_t i = 0; i < m; ++i) head += p[order[i]];
      if (head >= o.top_p || m == order.size()) break;
      m = std::min(order.size(), m * 4);
    }
    std::vector<bool> keep(s.size(), false);
    double above = 0;
    for (size_t i = 0; i < m && (i == 0 || above < o.top_p); ++i) {
      keep[order[i]] = true;
      above += p[order[i]];
    }
    for (size_t i = 0; i < s.size(); ++i)
      if (!keep[i]) s[i] = kMasked;
  }
  if (o.min_p > 0) {
    std::vector<double> p = softmax(s);
    double top = *std::max_element(p.begin(), p.end());
    for (size_t i = 0; i < s.size(); ++i)
      if (p[i] < o.min_p * top) s[i] = kMasked;
  }
  return softmax(s);
}

int32_t Sampler::sample(const std::vector<float>& logits, const std::vector<int32_t>& history, double* probability,
                        double* logprob) {
  if (options_.temperature == 0) {
    // Greedy: the first maximum of the penalised logits; the softmax only when asked for.
    check(options_, logits.size());
    std::vector<double> s(logits.begin(), logits.end());
    apply_repetition_penalty(s, history, options_.repetition_penalty);
    int32_t id = int32_t(std::max_element(s.begin(), s.end()) - s.begin());
    if (probability || logprob) {
      double total = 0;
      for (double v : s) total += std::isinf(v) && v < 0 ? 0.0 : std::exp(v - s[id]);
      double lp = -std::log(total);
      if (probability) *probability = std::exp(lp);
      if (logprob) *logprob = lp;
    }
    return id;
  }
  std::vector<double> p = next_token_probabilities(logits, history, options_);
  double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  double cum = 0;
  int32_t id = -1;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0) continue;
    cum += p[i];
    id = int32_t(i);
    if (u < cum) break;
  }
  WICK_CHECK(id >= 0, "sampling: every token was filtered out");
  if (probability) *probability = p[id];
  if (logprob) *logprob = std::log(p[id]);
  return id;
}

}  // namespace wick::models
