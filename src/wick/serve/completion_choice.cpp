// Token events to text pieces and finish reasons for one choice.
#include "wick/serve/completion_choice.h"

namespace wick::serve {

CompletionChoice::CompletionChoice(std::shared_ptr<SequenceHandle> handle, const tok::Tokenizer& tokenizer,
                                   std::vector<std::string> stop)
    : handle_(std::move(handle)), text_(tokenizer, std::move(stop)) {}

CompletionChoice::~CompletionChoice() {
  if (!done_) handle_->cancel();
}

CompletionChoice::Delta CompletionChoice::poll(std::chrono::milliseconds timeout) {
  Delta delta;
  if (done_) return delta;
  SequenceUpdate update = handle_->wait(timeout);
  delta.arrived = int64_t(update.tokens.size());
  for (TokenEvent& event : update.tokens) {
    int32_t id = event.id;
    events_.push_back(std::move(event));
    if (text_.add(id)) {
      handle_->cancel();  // the tokens still coming would only be cut off
      break;
    }
  }
  if (text_.stopped()) {
    delta.finish_reason = "stop";
  } else if (update.finish) {
    text_.finish();
    switch (*update.finish) {
      case FinishReason::kEos:
        delta.finish_reason = "stop";
        break;
      case FinishReason::kLength:
        delta.finish_reason = "length";
        break;
      case FinishReason::kCancelled:
        delta.finish_reason = "cancelled";
        break;
      case FinishReason::kError:
        delta.finish_reason = "error";
        delta.error = update.error;
        break;
    }
  }
  delta.text = text_.take();
  size_t released = text_.released_tokens();
  for (; handed_out_ < released && handed_out_ < events_.size(); ++handed_out_)
    delta.tokens.push_back(events_[handed_out_]);
  if (delta.finish_reason) done_ = true;
  return delta;
}

}  // namespace wick::serve
