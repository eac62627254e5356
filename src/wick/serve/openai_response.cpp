// OpenAI response and chunk bodies.
#include "wick/serve/openai_response.h"

#include <random>

namespace wick::serve {

using json = nlohmann::json;

namespace {

// Invalid UTF-8 (a token that holds part of a character) is written with U+FFFD.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string token_text(const tok::Tokenizer& tokenizer, int32_t id) { return tokenizer.decode({id}, false); }

json utf8_bytes(const std::string& s) {
  json out = json::array();
  for (unsigned char c : s) out.push_back(int(c));
  return out;
}

json chat_token(const tok::Tokenizer& tokenizer, int32_t id, float logprob) {
  std::string text = token_text(tokenizer, id);
  return {{"token", text}, {"logprob", logprob}, {"bytes", utf8_bytes(text)}};
}

}  // namespace

std::string new_response_id(const std::string& prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += kHex[rng() % 16];
  return id;
}

json usage_json(int64_t prompt_tokens, int64_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

json chat_logprobs(const std::vector<TokenEvent>& tokens, const tok::Tokenizer& tokenizer) {
  json content = json::array();
  for (const TokenEvent& t : tokens) {
    json entry = chat_token(tokenizer, t.id, t.logprob);
    json top = json::array();
    for (const TokenLogprob& alt : t.top_logprobs) top.push_back(chat_token(tokenizer, alt.id, alt.logprob));
    entry["top_logprobs"] = std::move(top);
    content.push_back(std::move(entry));
  }
  return {{"content", std::move(content)}};
}

json completion_logprobs(const std::vector<TokenEvent>& tokens, const tok::Tokenizer& tokenizer, size_t offset,
                         size_t* end_offset) {
  json texts = json::array(), logprobs = json::array(), tops = json::array(), offsets = json::array();
  for (const TokenEvent& t : tokens) {
    std::string text = token_text(tokenizer, t.id);
    texts.push_back(text);
    logprobs.push_back(t.logprob);
    json top = json::object();
    for (const TokenLogprob& alt : t.top_logprobs) top[token_text(tokenizer, alt.id)] = alt.logprob;
    tops.push_back(std::move(top));
    offsets.push_back(offset);
    offset += text.size();
  }
  if (end_offset) *end_offset = offset;
  return {{"tokens", texts}, {"token_logprobs", logprobs}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json stream_chunk(const ResponseHeader& h, int64_t index, const std::string& text, bool first, const json& logprobs,
                  const std::optional<std::string>& finish_reason) {
  json choice = {{"index", index}};
  if (h.chat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || (first && !finish_reason)) delta["content"] = text;
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = text;
  }
  choice["logprobs"] = logprobs;
  choice["finish_reason"] = finish_reason ? json(*finish_reason) : json(nullptr);
  return {{"id", h.id},
          {"object", h.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", h.created},
          {"model", h.model},
          {"choices", json::array({std::move(choice)})}};
}

json usage_chunk(const ResponseHeader& h, int64_t prompt_tokens, int64_t completion_tokens) {
  return {{"id", h.id},
          {"object", h.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", h.created},
          {"model", h.model},
          {"choices", json::array()},
          {"usage", usage_json(prompt_tokens, completion_tokens)}};
}

json response_choice(const ResponseHeader& h, int64_t index, const std::string& text, const json& logprobs,
                     const std::string& finish_reason) {
  json choice = {{"index", index}};
  if (h.chat)
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  else
    choice["text"] = text;
  choice["logprobs"] = logprobs;
  choice["finish_reason"] = finish_reason;
  return choice;
}

json response_body(const ResponseHeader& h, json choices, int64_t prompt_tokens, int64_t completion_tokens) {
  return {{"id", h.id},
          {"object", h.chat ? "chat.completion" : "text_completion"},
          {"created", h.created},
          {"model", h.model},
          {"choices", std::move(choices)},
          {"usage", usage_json(prompt_tokens, completion_tokens)}};
}

std::string base64_encode(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t chunk = uint32_t(static_cast<unsigned char>(bytes[i])) << 16;
    if (i + 1 < bytes.size()) chunk |= uint32_t(static_cast<unsigned char>(bytes[i + 1])) << 8;
    if (i + 2 < bytes.size()) chunk |= uint32_t(static_cast<unsigned char>(bytes[i + 2]));
    out += kAlphabet[(chunk >> 18) & 63];
    out += kAlphabet[(chunk >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(chunk >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[chunk & 63] : '=';
  }
  return out;
}

std::string sse_event(const json& payload) { return "data: " + dump(payload) + "\n\n"; }

}  // namespace wick::serve
