// Continuous batching over a DecoderRunner: sequences wait in a queue, are admitted while the
// batch and the KV pool have room (blocks are reserved for the prompt and every token the sequence
// may generate, so a running sequence never stalls for memory), and every step runs the decode of
// all running sequences together with prefill chunks of newly admitted ones under a token budget.
// Finished and cancelled sequences leave at once and free their blocks. Token-level: text, stop
// strings and streaming belong to the caller (runtime/generator.h, the server).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "wick/models/sampler.h"
#include "wick/runtime/decoder_runner.h"

namespace wick::runtime {

struct SequenceParams {
  std::vector<int32_t> prompt;
  int64_t max_tokens = 128;
  models::SamplingOptions sampling;
  std::vector<int32_t> eos_ids;  // any ends the sequence (not emitted) unless ignore_eos
  bool ignore_eos = false;
  int adapter_slot = -1;
};

enum class Finish { None, Length, Eos, Cancelled, Error };
const char* finish_name(Finish f);  // "length", "eos", "cancelled", "error"

struct SequenceCallbacks {
  // Optional: picks the next token from the row's logits (copied to the host) in place of the
  // scheduler's own sampler (which follows SequenceParams::sampling); for samplers the scheduler
  // lacks (OpenAI's penalties, top logprobs). `tokens` holds the prompt and the generated ids.
  std::function<int32_t(const float* logits, int64_t vocab, const std::vector<int32_t>& tokens)> choose;
  // Each generated token with its log-probability under the sampling distribution (0 when
  // `choose` picked it).
  std::function<void(int32_t id, double logprob)> on_token;
  // After each step that ran a chunk of the prompt: positions of the prompt now in the cache, of
  // `total` (for progress reports on long prompts).
  std::function<void(int64_t done, int64_t total)> on_prefill;
  // Exactly once, last; `error` is set for Finish::Error.
  std::function<void(Finish reason, const std::string& error)> on_finish;
};

class Sequence {
 public:
  // Asks the scheduler to drop the sequence at its next step (from any thread).
  void cancel() { cancelled_.store(true); }
  int64_t generated() const { return int64_t(tokens_.size()) - int64_t(params_.prompt.size()); }

 private:
  friend class Scheduler;
  SequenceParams params_;
  SequenceCallbacks callbacks_;
  std::atomic<bool> cancelled_{false};
  std::vector<int32_t> tokens_;  // prompt, then generated ids
  std::vector<int32_t> blocks_;
  int64_t cached_ = 0;  // positions whose keys/values are in the cache
  models::Sampler sampler_{models::SamplingOptions{}};
  bool admitted_ = false;
};

struct SchedulerOptions {
  int64_t max_step_tokens = 2048;  // tokens (decode rows + prefill chunks) of one step
  int64_t max_waiting = 1024;      // queue bound; add() refuses past it
};

struct SchedulerStats {
  int64_t waiting = 0, running = 0, blocks_used = 0, blocks_total = 0;
  int64_t last_batch = 0;  // rows of the last step
};

class Scheduler {
 public:
  Scheduler(DecoderRunner& runner, const SchedulerOptions& options);

  // Queues a sequence; throws for a request that can never run (empty prompt, prompt + 1 token past
  // the context, a bad adapter slot, bad sampling options) or when the queue is full (QueueFull).
  std::shared_ptr<Sequence> add(SequenceParams params, SequenceCallbacks callbacks);
  // Runs one step; false when there was nothing to run.
  bool step();
  bool idle() const { return waiting_.empty() && running_.empty(); }
  SchedulerStats stats() const;
  // Finishes every queued and running sequence as cancelled.
  void cancel_all();

  struct QueueFull : Error {
    using Error::Error;
  };

 private:
  void finish(const std::shared_ptr<Sequence>& s, Finish reason, const std::string& error = {});
  void admit();
  // The next token of each sequence whose row completed its pending tokens.
  void sample(const Tensor& logits, const std::vector<std::shared_ptr<Sequence>>& done_rows);

  DecoderRunner& runner_;
  SchedulerOptions options_;
  std::deque<std::shared_ptr<Sequence>> waiting_;
  std::vector<std::shared_ptr<Sequence>> running_;
  int64_t last_batch_ = 0;
};

}  // namespace wick::runtime
