// The token-level inference engine behind `wick serve`: requests of token ids in, streams of token
// events out. Text (detokenization, stop strings, chat templates) is the HTTP layer's job; an engine
// only schedules sequences over one loaded decoder and its LoRA adapters. Every method is safe to
// call from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "wick/base/error.h"

namespace wick::serve {

struct SamplingParams {
  double temperature = 0.0;         // 0: greedy
  int64_t top_k = 0;                // 0: off
  double top_p = 1.0;               // 1: off; in (0, 1]
  double min_p = 0.0;               // 0: off; in [0, 1]
  double repetition_penalty = 1.0;  // transformers' (over prompt and output); 1: off; > 0
  double presence_penalty = 0.0;    // OpenAI's (over output tokens only); in [-2, 2]
  double frequency_penalty = 0.0;   // OpenAI's (over output tokens only); in [-2, 2]
  uint64_t seed = 0;                // the sequence's own random stream
};

struct GenerationRequest {
  std::vector<int32_t> prompt;  // non-empty, ids < vocab_size(), shorter than context_length()
  int64_t max_tokens = 16;      // >= 1; prompt.size() + max_tokens <= context_length()
  SamplingParams sampling;
  std::string adapter;      // "" = the base model alone
  bool ignore_eos = false;  // EOS ids are generated like any token
  int top_logprobs = 0;     // 0..20 most likely alternatives reported with each token
};

struct TokenLogprob {
  int32_t id;
  float logprob;  // log-softmax of the model's logits, before any penalty or temperature
};

struct TokenEvent {
  int32_t id;
  float logprob;
  std::vector<TokenLogprob> top_logprobs;  // the request's top_logprobs, most likely first
};

enum class FinishReason {
  kLength,     // max_tokens generated
  kEos,        // an EOS id was drawn (not reported as a token)
  kCancelled,  // cancel() or the engine's shutdown
  kError,      // the engine failed; SequenceUpdate::error says why
};
const char* finish_reason_name(FinishReason reason);

struct SequenceUpdate {
  std::vector<TokenEvent> tokens;      // new since the last wait(), in order
  std::optional<FinishReason> finish;  // set once the sequence ended (after its last tokens)
  std::string error;                   // FinishReason::kError's message
};

// One sequence's channel from the engine (producer) to its reader (consumer).
class SequenceHandle {
 public:
  // Reader: what arrived since the last call, waiting up to `timeout` when nothing has. Once the
  // sequence finished, every call returns at once with `finish` set.
  SequenceUpdate wait(std::chrono::milliseconds timeout);
  // Reader: stop generating (client gone, stop string found). The engine frees the sequence at its
  // next step and finishes it with kCancelled (unless it already finished otherwise).
  void cancel();

  // Engine: whether cancel() was called.
  bool cancel_requested() const;
  void push(TokenEvent event);
  // Engine: the last call for this sequence; later pushes and finishes are ignored.
  void finish(FinishReason reason, std::string error = {});
  bool finished() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<TokenEvent> pending_;
  std::optional<FinishReason> finish_;
  std::string error_;
  bool cancel_requested_ = false;
};

// Failures of submit() and of the adapter calls, each with the HTTP status it maps to.
class EngineError : public Error {
 public:
  enum class Kind {
    kInvalidRequest,  // 400: empty prompt, id outside the vocabulary, prompt + max_tokens over the context
    kNotFound,        // 404: unknown adapter
    kConflict,        // 409: adapter name taken, adapter limit reached
    kOverloaded,      // 429: the queue is full
    kUnavailable,     // 503: shutting down
  };
  EngineError(Kind kind, const std::string& message) : Error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

struct EngineStats {
  int64_t requests_submitted = 0, requests_finished = 0;
  int64_t prompt_tokens = 0, generated_tokens = 0;  // totals since start
  int64_t queue_length = 0;                         // admitted, not yet running
  int64_t running = 0;                              // sequences in the running batch
  int64_t kv_blocks_used = 0, kv_blocks_total = 0;  // KV cache blocks held by sequences / available
};

// What `wick serve` asks of any engine. Options an engine cannot honour are rejected at
// construction, never ignored.
struct EngineOptions {
  int64_t context_length = 0;  // longest prompt + output; 0: the model's max_position_embeddings
  int64_t max_queue = 256;     // admitted requests waiting to run; beyond it submit() is kOverloaded
  int64_t max_batch = 1;       // sequences run together
  int64_t max_loras = 8;       // adapters loaded at once
};

class Engine {
 public:
  virtual ~Engine() = default;

  // Admits a request (checked at once: errors are EngineError) and returns its channel.
  virtual std::shared_ptr<SequenceHandle> submit(GenerationRequest request) = 0;

  virtual int64_t context_length() const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual std::vector<int32_t> eos_ids() const = 0;

  virtual std::vector<std::string> adapters() const = 0;  // sorted names
  // A PEFT adapter folder under `name`; requests naming it may follow at once.
  virtual void load_adapter(const std::string& name, const std::string& dir) = 0;
  // Requests already running with it finish with it; queued ones fail (kError).
  virtual void unload_adapter(const std::string& name) = 0;

  virtual EngineStats stats() const = 0;

  // Stops admitting (submit() throws kUnavailable), lets admitted sequences finish for up to
  // `grace`, cancels what is left, and returns once the engine is idle. Idempotent.
  virtual void shutdown(std::chrono::milliseconds grace) = 0;
};

// The context an engine serves: `requested` tokens (--ctx), or the model's own context when 0.
int64_t resolve_context_length(int64_t model_context, int64_t requested);

// The checks every engine applies in submit(); throws EngineError(kInvalidRequest).
void check_request(const GenerationRequest& request, int64_t context_length, int64_t vocab_size);

}  // namespace wick::serve
