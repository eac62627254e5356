// The OpenAI API's request bodies (chat completions, completions, embeddings) parsed and checked
// into plain structs. Every problem is an ApiError with the HTTP status and the OpenAI error fields
// (`message`, `type`, `param`, `code`) a client expects. Fields this server does not know are
// ignored, as vLLM and llama-server do; known fields of the wrong type or out of range are errors,
// and so are features it does not have (tools, logit_bias, response formats other than text).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace wick::serve {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message, std::string param = "", std::string code = "");
  int status() const { return status_; }
  // "invalid_request_error", "authentication_error", "permission_error", "not_found_error", ...
  const std::string& type() const { return type_; }
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }
  // {"error": {"message", "type", "param", "code"}} (param and code null when empty).
  nlohmann::json body() const;

 private:
  int status_;
  std::string type_, param_, code_;
};

// The body parsed as a JSON object, or ApiError 400.
nlohmann::json parse_json_object(const std::string& body);

// Sampling fields as the client gave them; absent ones take the model's defaults later.
struct SamplingFields {
  std::optional<double> temperature, top_p, min_p, repetition_penalty;
  std::optional<int64_t> top_k;
  double presence_penalty = 0, frequency_penalty = 0;
  std::optional<int64_t> seed;
};

// What chat completions and completions share.
struct GenerationFields {
  std::string model;
  std::optional<int64_t> max_tokens;  // max_tokens or max_completion_tokens
  SamplingFields sampling;
  std::vector<std::string> stop;
  int64_t n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  int logprobs = -1;           // -1: none; else the number of alternatives per token (0..20)
  bool ignore_eos = false;
};

struct ChatRequest {
  GenerationFields fields;
  nlohmann::ordered_json messages;  // [{"role", "content", ("name")}], content as one string
};

using Prompt = std::variant<std::string, std::vector<int32_t>>;

struct CompletionRequest {
  GenerationFields fields;
  std::vector<Prompt> prompts;  // one choice group per prompt
};

struct EmbeddingRequest {
  std::string model;
  std::vector<Prompt> inputs;
  bool base64 = false;  // encoding_format "base64": little-endian float32, base64-encoded
  std::optional<int64_t> dimensions;
};

ChatRequest parse_chat_request(const nlohmann::json& body);
CompletionRequest parse_completion_request(const nlohmann::json& body);
EmbeddingRequest parse_embedding_request(const nlohmann::json& body);

// POST /v1/adapters: {"name", "path"}.
struct AdapterLoadRequest {
  std::string name, path;
};
AdapterLoadRequest parse_adapter_request(const nlohmann::json& body);
// Adapter names: letters, digits, '.', '_' and '-' (a ':' would be read as base:adapter).
void check_adapter_name(const std::string& name, const std::string& param);

}  // namespace wick::serve
