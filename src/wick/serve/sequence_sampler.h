// Choosing one sequence's next token from the model's logits, for any engine: OpenAI's presence and
// frequency penalties (over the tokens generated so far), then models::Sampler (transformers'
// repetition penalty, temperature, top-k, top-p, min-p, a seeded draw), and the logprobs a client
// may ask for (log-softmax of the unmodified logits, as vLLM reports them).
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "wick/models/sampler.h"
#include "wick/serve/engine.h"

namespace wick::serve {

class SequenceSampler {
 public:
  SequenceSampler(const SamplingParams& params, const std::vector<int32_t>& prompt);

  // The next token of `logits` [vocab] (with its logprob and the `top_logprobs` most likely
  // alternatives), recorded as generated.
  TokenEvent next(const float* logits, int64_t vocab, int top_logprobs);

 private:
  SamplingParams params_;
  models::Sampler sampler_;
  std::vector<int32_t> history_;                    // prompt and generated ids
  std::unordered_map<int32_t, int64_t> generated_;  // generated id -> count
};

// The `k` largest entries of log_softmax(logits), most likely first (ties: lower id first).
std::vector<TokenLogprob> top_logprobs(const float* logits, int64_t vocab, int k, double* log_normalizer = nullptr);

}  // namespace wick::serve
