// Streaming detokenization with stop strings.
#include "wick/serve/completion_text.h"

#include <algorithm>

namespace wick::serve {

CompletionText::CompletionText(const tok::Tokenizer& tokenizer, std::vector<std::string> stop)
    : decoder_(tokenizer, /*skip_special_tokens=*/true) {
  for (std::string& s : stop)
    if (!s.empty()) stop_.push_back(std::move(s));
}

bool CompletionText::add(int32_t id) {
  WICK_CHECK(!stopped_ && !finished_, "CompletionText: a token after the completion ended");
  ids_.push_back(id);
  decoded_ += decoder_.step(id);
  token_end_.push_back(decoded_.size());
  find_stop();
  return stopped_;
}

void CompletionText::finish() {
  if (finished_) return;
  finished_ = true;
  if (stopped_) return;
  decoded_ += decoder_.finish();
  if (!token_end_.empty()) token_end_.back() = decoded_.size();
  find_stop();
}

void CompletionText::find_stop() {
  if (stopped_ || stop_.empty()) return;
  size_t earliest = std::string::npos;
  size_t longest = 0;
  for (const std::string& s : stop_) {
    earliest = std::min(earliest, decoded_.find(s, searched_));
    longest = std::max(longest, s.size());
  }
  if (earliest != std::string::npos) {
    stopped_ = true;
    stop_at_ = earliest;
    return;
  }
  // A stop string found later must end in text not seen yet, so it starts at most longest - 1
  // bytes before the current end.
  if (decoded_.size() >= longest) searched_ = std::max(searched_, decoded_.size() - longest + 1);
}

size_t CompletionText::safe_end() const {
  if (stopped_ || finished_) return text_end();
  size_t held = 0;
  for (const std::string& s : stop_)
    for (size_t n = std::min(s.size() - 1, decoded_.size()); n > held; --n)
      if (decoded_.compare(decoded_.size() - n, n, s, 0, n) == 0) {
        held = n;
        break;
      }
  return decoded_.size() - held;
}

std::string CompletionText::take() {
  size_t end = safe_end();
  if (end <= released_) return {};
  std::string piece = decoded_.substr(released_, end - released_);
  released_ = end;
  return piece;
}

size_t CompletionText::tokens_in_text() const {
  // Without a stop every token belongs to the text, also trailing ones that decode to nothing.
  if (!stopped_) return ids_.size();
  if (stop_at_ == 0) return 0;
  // The first token whose text reaches the stop; the tokens after it add nothing to the text.
  return size_t(std::lower_bound(token_end_.begin(), token_end_.end(), stop_at_) - token_end_.begin()) + 1;
}

size_t CompletionText::released_tokens() const {
  if (stopped_ || finished_) return tokens_in_text();
  return size_t(std::upper_bound(token_end_.begin(), token_end_.end(), released_) - token_end_.begin());
}

}  // namespace wick::serve
