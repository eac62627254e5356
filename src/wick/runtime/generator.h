// Text generation through the batching runner, for the command line and library users: each job
// (prompt, options, adapter slot, streaming callback) runs through the scheduler to completion;
// many jobs run together in one batch. The results match models::generate's (same sampling,
// EOS, stop strings and streaming events).
#pragma once

#include <atomic>
#include <functional>
#include <utility>
#include <vector>

#include "wick/models/generate.h"
#include "wick/runtime/scheduler.h"

namespace wick::runtime {

// A generated token's log-probability under the model (log-softmax of its unmodified logits, as
// OpenAI's API and vLLM report them) and the most likely alternatives, most likely first.
struct TokenLogprobs {
  int32_t id;
  double logprob;
  std::vector<std::pair<int32_t, double>> top;
};

struct GenerationJob {
  std::vector<int32_t> prompt;
  models::GenerateOptions options;
  int adapter_slot = -1;
  std::function<void(const models::TokenEvent&)> on_token;  // streaming, optional
  // Optional: once set (e.g. by a SIGINT handler), the job ends at the next step with
  // finish_reason "cancelled", keeping what it generated.
  const std::atomic<bool>* interrupt = nullptr;
  // Optional: after each chunk of the prompt is processed, positions done of the prompt's total.
  std::function<void(int64_t done, int64_t total)> on_prefill;
  // Optional: receives each result id's log-probability and its `top_logprobs` most likely
  // alternatives (one entry per id of the result).
  std::vector<TokenLogprobs>* logprobs = nullptr;
  int top_logprobs = 0;
};

// Runs the jobs to completion; `tokenizer` may be null (ids only: no text, no stop strings).
// A result's ids are those whose text lies wholly within its text: when a stop string ends the
// text, the tokens that spell it (and one that straddles its start) are left out.
// Throws the first error a job met.
std::vector<models::GenerateResult> generate(DecoderRunner& runner, const tok::Tokenizer* tokenizer,
                                             const std::vector<GenerationJob>& jobs,
                                             const SchedulerOptions& options = {});

}  // namespace wick::runtime
