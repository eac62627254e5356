// One choice of a completion request as the HTTP layer sees it: the engine's token events turned
// into text pieces (stop strings cancel the sequence), the tokens behind each piece (for
// logprobs), and the OpenAI finish reason.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "wick/serve/completion_text.h"
#include "wick/serve/engine.h"

namespace wick::serve {

class CompletionChoice {
 public:
  CompletionChoice(std::shared_ptr<SequenceHandle> handle, const tok::Tokenizer& tokenizer,
                   std::vector<std::string> stop);
  // A choice dropped before its end (client gone, another choice failed) cancels its sequence.
  ~CompletionChoice();
  CompletionChoice(const CompletionChoice&) = delete;
  CompletionChoice& operator=(const CompletionChoice&) = delete;

  struct Delta {
    std::string text;                          // new text
    std::vector<TokenEvent> tokens;            // the tokens whose text is now entirely handed out
    std::optional<std::string> finish_reason;  // "stop", "length", "cancelled" or "error"; once
    std::string error;                         // the engine's message with "error"
    int64_t arrived = 0;                       // token events received by this poll
  };
  // What happened since the last poll, waiting up to `timeout` for something to happen.
  Delta poll(std::chrono::milliseconds timeout);

  bool done() const { return done_; }
  // The client is gone: the engine stops this sequence.
  void cancel() { handle_->cancel(); }
  std::string text() const { return text_.text(); }
  // Tokens of the returned text (usage's completion_tokens).
  size_t completion_tokens() const { return text_.tokens_in_text(); }

 private:
  std::shared_ptr<SequenceHandle> handle_;
  CompletionText text_;
  std::vector<TokenEvent> events_;
  size_t handed_out_ = 0;  // events_ already returned in a Delta
  bool done_ = false;
};

}  // namespace wick::serve
