// The sequence channel shared by every engine, and the request checks every engine applies.
#include "wick/serve/engine.h"

namespace wick::serve {

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength:
      return "length";
    case FinishReason::kEos:
      return "eos";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kError:
      return "error";
  }
  return "error";
}

SequenceUpdate SequenceHandle::wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return !pending_.empty() || finish_.has_value(); });
  SequenceUpdate update;
  update.tokens.swap(pending_);
  if (finish_) {
    update.finish = finish_;
    update.error = error_;
  }
  return update;
}

void SequenceHandle::cancel() {
  std::lock_guard<std::mutex> lock(mutex_);
  cancel_requested_ = true;
}

bool SequenceHandle::cancel_requested() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cancel_requested_;
}

void SequenceHandle::push(TokenEvent event) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finish_) return;
    pending_.push_back(std::move(event));
  }
  changed_.notify_all();
}

void SequenceHandle::finish(FinishReason reason, std::string error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finish_) return;
    finish_ = reason;
    error_ = std::move(error);
  }
  changed_.notify_all();
}

bool SequenceHandle::finished() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return finish_.has_value();
}

int64_t resolve_context_length(int64_t model_context, int64_t requested) {
  WICK_CHECK(requested >= 0, "serve: --ctx must be positive, got ", requested);
  if (requested == 0) {
    WICK_CHECK(model_context > 0, "serve: the model's config gives no context length; set --ctx");
    return model_context;
  }
  WICK_CHECK(model_context <= 0 || requested <= model_context, "serve: --ctx ", requested,
             " exceeds the model's context of ", model_context, " tokens");
  return requested;
}

void check_request(const GenerationRequest& r, int64_t context_length, int64_t vocab_size) {
  using Kind = EngineError::Kind;
  auto invalid = [](const auto&... parts) { throw EngineError(Kind::kInvalidRequest, str_cat(parts...)); };
  if (r.prompt.empty()) invalid("the prompt is empty");
  for (int32_t id : r.prompt)
    if (id < 0 || id >= vocab_size) invalid("prompt token ", id, " is outside the vocabulary of ", vocab_size);
  if (r.max_tokens < 1) invalid("max_tokens must be at least 1, got ", r.max_tokens);
  int64_t prompt = int64_t(r.prompt.size());
  if (prompt >= context_length)
    invalid("the prompt has ", prompt, " tokens; this model's context is ", context_length, " tokens");
  if (prompt + r.max_tokens > context_length)
    invalid("the prompt (", prompt, " tokens) plus max_tokens (", r.max_tokens, ") exceeds this model's context of ",
            context_length, " tokens");
  if (r.top_logprobs < 0 || r.top_logprobs > 20) invalid("top_logprobs must be in [0, 20], got ", r.top_logprobs);
  const SamplingParams& s = r.sampling;
  if (!(s.temperature >= 0 && s.temperature <= 100)) invalid("temperature must be in [0, 100], got ", s.temperature);
  if (s.top_k < 0) invalid("top_k must be >= 0, got ", s.top_k);
  if (!(s.top_p > 0 && s.top_p <= 1)) invalid("top_p must be in (0, 1], got ", s.top_p);
  if (!(s.min_p >= 0 && s.min_p <= 1)) invalid("min_p must be in [0, 1], got ", s.min_p);
  if (!(s.repetition_penalty > 0 && s.repetition_penalty <= 100))
    invalid("repetition_penalty must be in (0, 100], got ", s.repetition_penalty);
  if (!(s.presence_penalty >= -2 && s.presence_penalty <= 2))
    invalid("presence_penalty must be in [-2, 2], got ", s.presence_penalty);
  if (!(s.frequency_penalty >= -2 && s.frequency_penalty <= 2))
    invalid("frequency_penalty must be in [-2, 2], got ", s.frequency_penalty);
}

}  // namespace wick::serve
