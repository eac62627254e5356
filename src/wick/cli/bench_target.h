// What `wick bench` times, kept apart from the timing: a prompt processed into an empty KV cache,
// and greedy decode steps over a batch of sequences. Another decode engine is benchmarked by
// implementing BenchTarget for it; cmd_bench.cpp only calls these three functions and reads clocks.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "wick/models/decoder.h"

namespace wick::cli {

class BenchTarget {
 public:
  virtual ~BenchTarget() = default;
  // Processes `prompt` (one sequence) into an empty KV cache, as the prefill of a generation does.
  // Returns once the device has finished.
  virtual void prefill(const std::vector<int32_t>& prompt) = 0;
  // The untimed setup of a decode test: every sequence but its last token goes into a fresh KV cache
  // with room for `steps` more tokens; the last tokens are what the first decode step feeds.
  virtual void prepare_decode(const std::vector<std::vector<int32_t>>& sequences, int64_t steps) = 0;
  // The `steps` greedy steps prepared: each feeds one token per sequence and hands the chosen ids
  // to the host, as a streaming generator does. Returns once the device has finished.
  virtual void decode(int64_t steps) = 0;
};

// DecoderModel::forward over its KV cache, with argmax on the device.
std::unique_ptr<BenchTarget> make_forward_bench_target(const models::DecoderModel& model);

// The inference runtime (runtime/decoder_runner.h: paged KV cache, CUDA-graph steps), the path of
// `wick generate`, `wick chat` and `wick serve`, sized for `max_batch` sequences of `max_context`
// positions; greedy ids by argmax on the device, read back every step. With `adapters` > 0, that
// many random LoRA adapters of rank `adapter_rank` on all linear modules are resident and the
// sequences use them in turn (sequence i: adapter i mod adapters), as a server mixing adapters
// runs them.
std::unique_ptr<BenchTarget> make_runtime_bench_target(models::DecoderModel& model, int64_t max_batch,
                                                       int64_t max_context, int adapters = 0,
                                                       int64_t adapter_rank = 16);

}  // namespace wick::cli
