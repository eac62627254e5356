// Text generation through the batching runner, for the command line and library users: each job
// (prompt, options, adapter slot, streaming callback) runs through the scheduler to completion;
// many jobs run together in one batch. The results match models::generate's (same sampling,
// EOS, stop strings and streaming events).
#pragma once

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
};

// Runs the jobs to completion; `tokenizer` may be null (ids only: no text, no stop strings).
// Throws the first error a job met.
std::vector<models::GenerateResult> generate(DecoderRunner& runner, const tok::Tokenizer* tokenizer,
                                             const std::vector<GenerationJob>& jobs,
                                             const SchedulerOptions& options = {});

}  // namespace wick::runtime
