// Text generation through the batching runner, for the command line and library users: each job
// (prompt, options, adapter slot, streaming callback) runs through the scheduler to completion;
// many jobs run together in one batch. The results match models::generate's (same sampling,
// EOS, stop strings and streaming events).
#pragma once

#include <atomic>
#include <functional>
#include <vector>

#include "wick/models/generate.h"
#include "wick/runtime/scheduler.h"

namespace wick::runtime {

struct GenerationJob {
  std::vector<int32_t> prompt;
  models::GenerateOptions options;
  int adapter_slot = -1;
  std::function<void(const models::TokenEvent&)> on_token;  // streaming, optional
  // Optional: once set (e.g. by a SIGINT handler), the job ends at the next step with
  // finish_reason "cancelled", keeping what it generated.
  const std::atomic<bool>* interrupt = nullptr;
};

// Runs the jobs to completion; `tokenizer` may be null (ids only: no text, no stop strings).
// Throws the first error a job met.
std::vector<models::GenerateResult> generate(DecoderRunner& runner, const tok::Tokenizer* tokenizer,
                                             const std::vector<GenerationJob>& jobs,
                                             const SchedulerOptions& options = {});

}  // namespace wick::runtime
