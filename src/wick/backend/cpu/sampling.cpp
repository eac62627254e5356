// CPU evaluation of sample_tokens: float64, one row at a time, with the processors in
// models::Sampler's order and the same floating-point steps, so its choices and log-probabilities
// are the host sampler's. It is also the reference the CUDA kernel is tested against.
#include "wick/core/ops/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "wick/backend/cpu/strided.h"

namespace wick {

using cpu::cdata;
using cpu::mdata;

namespace {

constexpr double kMasked = -INFINITY;

bool is_masked(double s) { return std::isinf(s) && s < 0; }

// softmax(s) with masked scores at probability 0.
std::vector<double> probabilities(const std::vector<double>& s) {
  double m = kMasked;
  for (double v : s) m = std::max(m, v);
  std::vector<double> p(s.size());
  double total = 0;
  for (size_t i = 0; i < s.size(); ++i) total += p[i] = is_masked(s[i]) ? 0.0 : std::exp(s[i] - m);
  for (double& v : p) v /= total;
  return p;
}

// Keeps the most likely tokens while the mass before each is below top_p. Tokens are ranked by
// score, equal scores by larger index first; only the head of the ranking is sorted, in chunks
// that grow until they hold top_p of the mass.
void apply_top_p(std::vector<double>& s, double top_p) {
  std::vector<double> p = probabilities(s);
  std::vector<size_t> order(s.size());
  std::iota(order.begin(), order.end(), 0);
  auto ranks_before = [&](size_t a, size_t b) { return s[a] > s[b] || (s[a] == s[b] && a > b); };
  size_t head = std::min<size_t>(order.size(), 64);
  while (true) {
    std::partial_sort(order.begin(), order.begin() + head, order.end(), ranks_before);
    double mass = 0;
    for (size_t i = 0; i < head; ++i) mass += p[order[i]];
    if (mass >= top_p || head == order.size()) break;
    head = std::min(order.size(), head * 4);
  }
  std::vector<char> keep(s.size(), 0);
  double before = 0;
  for (size_t i = 0; i < head && (i == 0 || before < top_p); ++i) {
    keep[order[i]] = 1;
    before += p[order[i]];
  }
  for (size_t i = 0; i < s.size(); ++i)
    if (!keep[i]) s[i] = kMasked;
}

struct Choice {
  int32_t id;
  double logprob;
};

Choice sample_row(std::vector<double>& s, const double* params, double u) {
  double temperature = params[kSampleTemperature], top_k = params[kSampleTopK], top_p = params[kSampleTopP],
         min_p = params[kSampleMinP];
  if (temperature == 0) {
    int32_t id = int32_t(std::max_element(s.begin(), s.end()) - s.begin());
    double total = 0;
    for (double v : s) total += is_masked(v) ? 0.0 : std::exp(v - s[id]);
    return {id, -std::log(total)};
  }
  if (temperature != 1.0)
    for (double& v : s) v /= temperature;
  if (top_k > 0 && top_k < double(s.size())) {
    // Everything below the k-th largest score goes; ties with it stay.
    size_t k = size_t(top_k);
    std::vector<double> sorted = s;
    std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<>());
    double kth = sorted[k - 1];
    for (double& v : s)
      if (v < kth) v = kMasked;
  }
  if (top_p < 1.0) apply_top_p(s, top_p);
  if (min_p > 0) {
    std::vector<double> p = probabilities(s);
    double top = *std::max_element(p.begin(), p.end());
    for (size_t i = 0; i < s.size(); ++i)
      if (p[i] < min_p * top) s[i] = kMasked;
  }
  std::vector<double> p = probabilities(s);
  double cumulative = 0;
  int32_t id = -1;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0) continue;
    cumulative += p[i];
    id = int32_t(i);
    if (u < cumulative) break;
  }
  return {id, std::log(p[size_t(id)])};  // id >= 0: the largest score always survives the filters
}

}  // namespace

void SampleTokens::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor logits = cpu::contiguous_copy(in[0]), params = cpu::contiguous_copy(in[1]);
  Tensor history = cpu::contiguous_copy(in[2]), uniforms = cpu::contiguous_copy(in[3]);
  out.allocate();
  int64_t rows = logits.shape(0), vocab = logits.shape(1), seen = history.shape(1);
  const float* pl = cdata<float>(logits);
  const double* pp = cdata<double>(params);
  const int32_t* ph = cdata<int32_t>(history);
  const double* pu = cdata<double>(uniforms);
  double* po = mdata<double>(out);
  std::vector<double> s(static_cast<size_t>(vocab));
  std::vector<int32_t> ids;
  for (int64_t r = 0; r < rows; ++r) {
    const double* row_params = pp + r * kSampleParamCount;
    std::string bad = sampling_params_error(row_params);
    WICK_CHECK(bad.empty(), sampling_error_message(r, bad));
    bool greedy = row_params[kSampleTemperature] == 0;
    WICK_CHECK(greedy || (pu[r] >= 0 && pu[r] < 1),
               sampling_error_message(r, str_cat("uniforms must be in [0, 1) for a sampled row, got ", pu[r])));
    const float* row = pl + r * vocab;
    for (int64_t j = 0; j < vocab; ++j) {
      WICK_CHECK(!std::isnan(row[j]) && row[j] != INFINITY,
                 sampling_error_message(r, str_cat("logits hold ", row[j], " at column ", j)));
      s[size_t(j)] = double(row[j]);
    }
    // The repetition penalty applies once per distinct id seen.
    ids.assign(ph + r * seen, ph + (r + 1) * seen);
    for (int32_t id : ids)
      WICK_CHECK(id >= -1 && id < vocab,
                 sampling_error_message(r, str_cat("history holds id ", id, ", outside [0, ", vocab, ") (-1 pads)")));
    double penalty = row_params[kSampleRepetitionPenalty];
    if (penalty != 1.0) {
      std::sort(ids.begin(), ids.end());
      ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
      for (int32_t id : ids) {
        if (id < 0) continue;
        double& v = s[size_t(id)];
        v = v < 0 ? v * penalty : v / penalty;
      }
    }
    // Scores that overflow would turn the softmax into NaN: an error rather than a token.
    double largest = *std::max_element(s.begin(), s.end()), temperature = row_params[kSampleTemperature];
    WICK_CHECK(largest != kMasked,
               sampling_error_message(r, "no token has a finite logit after the repetition penalty"));
    WICK_CHECK(std::isfinite(largest) && (greedy || std::isfinite(largest / temperature)),
               sampling_error_message(r, "repetition_penalty and temperature make a logit overflow to infinity"));
    Choice c = sample_row(s, row_params, pu[r]);
    po[2 * r] = double(c.id);
    po[2 * r + 1] = c.logprob;
  }
}

}  // namespace wick
