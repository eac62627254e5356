// JSON bodies of the OpenAI API's responses and stream chunks (chat completions, completions),
// with logprobs in each endpoint's own layout.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "wick/serve/engine.h"
#include "wick/tokenizer/tokenizer.h"

namespace wick::serve {

// What every chunk and response of one request repeats.
struct ResponseHeader {
  std::string id;  // "chatcmpl-..." or "cmpl-..."
  int64_t created = 0;
  std::string model;
  bool chat = true;
};

// A fresh id with the endpoint's prefix ("chatcmpl-" or "cmpl-") and 24 random hex digits.
std::string new_response_id(const std::string& prefix);

nlohmann::json usage_json(int64_t prompt_tokens, int64_t completion_tokens);

// Chat: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}, ...]}.
nlohmann::json chat_logprobs(const std::vector<TokenEvent>& tokens, const tok::Tokenizer& tokenizer);
// Completions: {"tokens", "token_logprobs", "top_logprobs": [{token: logprob}], "text_offset"};
// `offset` is where the first token's text starts in the completion.
nlohmann::json completion_logprobs(const std::vector<TokenEvent>& tokens, const tok::Tokenizer& tokenizer,
                                   size_t offset, size_t* end_offset = nullptr);

// One stream chunk for one choice. Chat: `delta` is {"role"?, "content"?}; completions: `text`.
nlohmann::json stream_chunk(const ResponseHeader& header, int64_t index, const std::string& text, bool first,
                            const nlohmann::json& logprobs, const std::optional<std::string>& finish_reason);
// The chunk OpenAI sends last with stream_options.include_usage: no choices, the usage.
nlohmann::json usage_chunk(const ResponseHeader& header, int64_t prompt_tokens, int64_t completion_tokens);

// One finished choice of a non-streamed response.
nlohmann::json response_choice(const ResponseHeader& header, int64_t index, const std::string& text,
                               const nlohmann::json& logprobs, const std::string& finish_reason);
nlohmann::json response_body(const ResponseHeader& header, nlohmann::json choices, int64_t prompt_tokens,
                             int64_t completion_tokens);

// RFC 4648 base64 (embeddings' encoding_format "base64").
std::string base64_encode(const std::string& bytes);

// Server-sent event framing: "data: <json>\n\n".
std::string sse_event(const nlohmann::json& payload);

}  // namespace wick::serve
