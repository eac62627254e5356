// OpenAI request bodies: what parses, and every bad input's status, param and code.
#include "wick/serve/openai_request.h"

#include <gtest/gtest.h>

using namespace wick::serve;
using json = nlohmann::json;

namespace {

struct Expected {
  int status;
  std::string param, code;
};

template <typename Parse>
void expect_error(Parse parse, const std::string& body, const Expected& want) {
  try {
    parse(parse_json_object(body));
    ADD_FAILURE() << "accepted: " << body;
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), want.status) << body << ": " << e.what();
    EXPECT_EQ(e.param(), want.param) << body << ": " << e.what();
    EXPECT_EQ(e.code(), want.code) << body << ": " << e.what();
    json b = e.body();
    EXPECT_EQ(b["error"]["message"], e.what());
    EXPECT_EQ(b["error"]["type"], want.status == 400 ? "invalid_request_error" : b["error"]["type"]);
  }
}

const auto chat = [](const json& j) { return parse_chat_request(j); };
const auto completion = [](const json& j) { return parse_completion_request(j); };
const auto embedding = [](const json& j) { return parse_embedding_request(j); };

}  // namespace

TEST(OpenAIRequest, ChatFieldsParse) {
  ChatRequest r = parse_chat_request(parse_json_object(R"({
    "model": "m", "messages": [{"role": "developer", "content": "be brief"},
                               {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]}],
    "max_completion_tokens": 7, "temperature": 0.5, "top_p": 0.9, "seed": -3, "stop": "\n", "n": 2,
    "logprobs": true, "top_logprobs": 3, "presence_penalty": 1, "frequency_penalty": -0.5, "stream": true,
    "stream_options": {"include_usage": true}, "ignore_eos": true, "response_format": {"type": "text"},
    "user": "someone", "tools": []})"));
  EXPECT_EQ(r.fields.model, "m");
  EXPECT_EQ(r.messages[0]["role"], "system");
  EXPECT_EQ(r.messages[1]["content"], "hi there");
  EXPECT_EQ(r.fields.max_tokens, 7);
  EXPECT_EQ(r.fields.sampling.temperature, 0.5);
  EXPECT_EQ(r.fields.sampling.top_p, 0.9);
  EXPECT_EQ(r.fields.sampling.seed, -3);
  EXPECT_EQ(r.fields.stop, std::vector<std::string>{"\n"});
  EXPECT_EQ(r.fields.n, 2);
  EXPECT_EQ(r.fields.logprobs, 3);
  EXPECT_EQ(r.fields.sampling.presence_penalty, 1);
  EXPECT_EQ(r.fields.sampling.frequency_penalty, -0.5);
  EXPECT_TRUE(r.fields.stream && r.fields.include_usage && r.fields.ignore_eos);
  EXPECT_FALSE(r.fields.sampling.top_k.has_value());
}

TEST(OpenAIRequest, CompletionPromptsInEveryForm) {
  auto prompts = [](const std::string& p) {
    return parse_completion_request(parse_json_object(R"({"model": "m", "prompt": )" + p + "}")).prompts;
  };
  EXPECT_EQ(std::get<std::string>(prompts(R"("a")")[0]), "a");
  EXPECT_EQ(prompts(R"(["a", "b"])").size(), 2u);
  EXPECT_EQ(std::get<std::vector<int32_t>>(prompts("[1, 2, 3]")[0]), (std::vector<int32_t>{1, 2, 3}));
  auto many = prompts("[[1], [2, 3]]");
  ASSERT_EQ(many.size(), 2u);
  EXPECT_EQ(std::get<std::vector<int32_t>>(many[1]), (std::vector<int32_t>{2, 3}));
  CompletionRequest r = parse_completion_request(parse_json_object(R"({"model": "m", "prompt": "x", "logprobs": 2})"));
  EXPECT_EQ(r.fields.logprobs, 2);
}

TEST(OpenAIRequest, BadBodiesAreNamed) {
  expect_error(chat, "{not json", {400, "", "invalid_json"});
  expect_error(chat, "[1, 2]", {400, "", "invalid_json"});
  expect_error(chat, R"({"messages": [{"role": "user", "content": "x"}]})",
               {400, "model", "missing_required_parameter"});
  expect_error(chat, R"({"model": 5, "messages": []})", {400, "model", "invalid_type"});
  expect_error(chat, R"({"model": "m"})", {400, "messages", "missing_required_parameter"});
  expect_error(chat, R"({"model": "m", "messages": "hi"})", {400, "messages", "invalid_type"});
  expect_error(chat, R"({"model": "m", "messages": []})", {400, "messages", "invalid_value"});
  expect_error(chat, R"({"model": "m", "messages": [{"role": "robot", "content": "x"}]})",
               {400, "messages[0].role", "invalid_value"});
  expect_error(chat, R"({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]})",
               {400, "messages[0].content", "invalid_value"});
}

TEST(OpenAIRequest, BadParametersAreNamed) {
  const std::string m = R"("model": "m", "messages": [{"role": "user", "content": "x"}])";
  auto body = [&](const std::string& extra) { return "{" + m + ", " + extra + "}"; };
  expect_error(chat, body(R"("max_tokens": 0)"), {400, "max_tokens", "invalid_value"});
  expect_error(chat, body(R"("max_tokens": -5)"), {400, "max_tokens", "invalid_value"});
  expect_error(chat, body(R"("max_tokens": "ten")"), {400, "max_tokens", "invalid_type"});
  expect_error(chat, body(R"("max_tokens": 2.5)"), {400, "max_tokens", "invalid_type"});
  expect_error(chat, body(R"("temperature": -0.1)"), {400, "temperature", "invalid_value"});
  expect_error(chat, body(R"("temperature": 1e9)"), {400, "temperature", "invalid_value"});
  expect_error(chat, body(R"("temperature": "hot")"), {400, "temperature", "invalid_type"});
  expect_error(chat, body(R"("top_p": 0)"), {400, "top_p", "invalid_value"});
  expect_error(chat, body(R"("top_p": 1.5)"), {400, "top_p", "invalid_value"});
  expect_error(chat, body(R"("n": 17)"), {400, "n", "invalid_value"});
  expect_error(chat, body(R"("n": 0)"), {400, "n", "invalid_value"});
  expect_error(chat, body(R"("presence_penalty": 3)"), {400, "presence_penalty", "invalid_value"});
  expect_error(chat, body(R"("frequency_penalty": -2.5)"), {400, "frequency_penalty", "invalid_value"});
  expect_error(chat, body(R"("stop": 5)"), {400, "stop", "invalid_type"});
  expect_error(chat, body(R"("stop": [""])"), {400, "stop", "invalid_value"});
  expect_error(chat, body(R"("top_logprobs": 3)"), {400, "top_logprobs", "invalid_value"});
  expect_error(chat, body(R"("logprobs": true, "top_logprobs": 21)"), {400, "top_logprobs", "invalid_value"});
  expect_error(chat, body(R"("stream": "yes")"), {400, "stream", "invalid_type"});
  expect_error(chat, body(R"("response_format": {"type": "json_object"})"),
               {400, "response_format", "unsupported_parameter"});
  expect_error(chat, body(R"("tools": [{"type": "function"}])"), {400, "tools", "unsupported_parameter"});
  expect_error(chat, body(R"("logit_bias": {"5": 10})"), {400, "logit_bias", "unsupported_parameter"});
  expect_error(chat, body(R"("max_tokens": 5, "max_completion_tokens": 6)"), {400, "max_completion_tokens", ""});
  expect_error(completion, R"({"model": "m", "prompt": "x", "echo": true})", {400, "echo", "unsupported_parameter"});
  expect_error(completion, R"({"model": "m", "prompt": []})", {400, "prompt", "invalid_value"});
  expect_error(completion, R"({"model": "m", "prompt": [1, "a"]})", {400, "prompt", "invalid_type"});
  expect_error(completion, R"({"model": "m", "prompt": [1, -2]})", {400, "prompt", "invalid_value"});
  expect_error(completion, R"({"model": "m", "prompt": "x", "logprobs": 21})", {400, "logprobs", "invalid_value"});
  expect_error(embedding, R"({"model": "m"})", {400, "input", "missing_required_parameter"});
  expect_error(embedding, R"({"model": "m", "input": {"a": 1}})", {400, "input", "invalid_type"});
  expect_error(embedding, R"({"model": "m", "input": "a", "encoding_format": "hex"})",
               {400, "encoding_format", "invalid_value"});
}

TEST(OpenAIRequest, AdapterNames) {
  AdapterLoadRequest r = parse_adapter_request(parse_json_object(R"({"name": "pirate-v1.2_b", "path": "/x"})"));
  EXPECT_EQ(r.name, "pirate-v1.2_b");
  expect_error(parse_adapter_request, R"({"name": "a:b", "path": "/x"})", {400, "name", "invalid_value"});
  expect_error(parse_adapter_request, R"({"name": "a"})", {400, "path", "missing_required_parameter"});
}
