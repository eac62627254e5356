// One completion's text as its tokens arrive: UTF-8-safe streaming detokenization (special tokens
// skipped), stop strings found across token boundaries, text held back only while it could still
// be the start of a stop string, and which tokens make up the text that is returned (so token
// counts and logprobs agree with the text).
#pragma once

#include <string>
#include <vector>

#include "wick/tokenizer/tokenizer.h"

namespace wick::serve {

class CompletionText {
 public:
  // `tokenizer` must outlive this object. Empty stop strings are ignored.
  CompletionText(const tok::Tokenizer& tokenizer, std::vector<std::string> stop);

  // Adds the next generated token. Returns true when the text now contains a stop string: the
  // text ends before it, and no more tokens should be added.
  bool add(int32_t id);
  // No more tokens will come: releases what was held back.
  void finish();

  // Text ready to hand out that was not handed out before (complete UTF-8, never part of a stop
  // string).
  std::string take();
  // Tokens whose text was handed out entirely by take(), counted from the first token; after
  // finish() or a stop, every token of the returned text.
  size_t released_tokens() const;

  bool stopped() const { return stopped_; }
  // The text returned to the client: everything decoded, up to the first stop string.
  std::string text() const { return decoded_.substr(0, text_end()); }
  // How many tokens produce text(): the shortest prefix of the tokens whose decoded text covers it.
  size_t tokens_in_text() const;
  const std::vector<int32_t>& tokens() const { return ids_; }

 private:
  void find_stop();
  size_t text_end() const { return stopped_ ? stop_at_ : decoded_.size(); }
  // Where text may be released up to: before any suffix that is a prefix of a stop string.
  size_t safe_end() const;

  tok::StreamingDecoder decoder_;
  std::vector<std::string> stop_;
  std::vector<int32_t> ids_;
  std::vector<size_t> token_end_;  // decoded_.size() after each token
  std::string decoded_;
  size_t searched_ = 0;  // stop strings cannot start before this offset any more
  size_t released_ = 0;  // bytes handed out by take()
  size_t stop_at_ = 0;
  bool stopped_ = false, finished_ = false;
};

}  // namespace wick::serve
