// Parsing and checking OpenAI request bodies.
#include "wick/serve/openai_request.h"

#include <cctype>
#include <cmath>
#include <limits>
#include <sstream>

namespace wick::serve {

using json = nlohmann::json;

namespace {

const char* type_for_status(int status) {
  switch (status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 409:
      return "conflict_error";
    case 413:
      return "invalid_request_error";
    case 429:
      return "rate_limit_error";
    case 503:
      return "service_unavailable_error";
    default:
      return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

const char* json_type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

[[noreturn]] void wrong_type(const std::string& param, const char* expected, const json& v) {
  throw ApiError(400, "'" + param + "' must be " + expected + ", got " + json_type_name(v), param, "invalid_type");
}

[[noreturn]] void bad_value(const std::string& param, const std::string& message) {
  throw ApiError(400, "'" + param + "' " + message, param, "invalid_value");
}

std::string number_str(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// Typed access to the fields of one request object; absent and null fields read as absent.
class Fields {
 public:
  explicit Fields(const json& object) : object_(object) {}

  const json* get(const std::string& key) const {
    auto it = object_.find(key);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }

  std::optional<double> number(const std::string& key, double lo, double hi, bool lo_open = false) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_number()) wrong_type(key, "a number", *v);
    double x = v->get<double>();
    if (!(lo_open ? x > lo : x >= lo) || !(x <= hi))
      bad_value(key, "must be in " + std::string(lo_open ? "(" : "[") + number_str(lo) + ", " + number_str(hi) +
                         "], got " + number_str(x));
    return x;
  }

  std::optional<int64_t> integer(const std::string& key, int64_t lo, int64_t hi) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_number()) wrong_type(key, "an integer", *v);
    double x = v->get<double>();
    if (std::floor(x) != x) wrong_type(key, "an integer", *v);
    if (x < double(lo) || x > double(hi))
      bad_value(key, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + number_str(x));
    return v->is_number_integer() ? v->get<int64_t>() : int64_t(x);
  }

  std::optional<bool> boolean(const std::string& key) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) wrong_type(key, "a boolean", *v);
    return v->get<bool>();
  }

  std::optional<std::string> string(const std::string& key) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) wrong_type(key, "a string", *v);
    return v->get<std::string>();
  }

  std::string required_string(const std::string& key) const {
    std::optional<std::string> s = string(key);
    if (!s) throw ApiError(400, "'" + key + "' is required", key, "missing_required_parameter");
    return *s;
  }

  // A feature this server does not have: present and not empty/false is an error.
  void refuse(const std::string& key, const std::string& why) const {
    const json* v = get(key);
    if (!v || (v->is_array() && v->empty()) || (v->is_object() && v->empty()) || (v->is_boolean() && !v->get<bool>()))
      return;
    throw ApiError(400, "'" + key + "' is not supported: " + why, key, "unsupported_parameter");
  }

 private:
  const json& object_;
};

constexpr int64_t kMaxChoices = 16;  // n
constexpr size_t kMaxPrompts = 64;   // prompts of one completions request
constexpr size_t kMaxStops = 16;
constexpr size_t kMaxEmbeddingInputs = 2048;

std::vector<int32_t> token_ids(const json& v, const std::string& param) {
  std::vector<int32_t> ids;
  for (const json& t : v) {
    if (!t.is_number_integer()) wrong_type(param, "an array of token ids (integers)", t);
    int64_t id = t.get<int64_t>();
    if (id < 0 || id > std::numeric_limits<int32_t>::max()) bad_value(param, "holds token id " + std::to_string(id));
    ids.push_back(int32_t(id));
  }
  return ids;
}

// A string, a list of strings, a list of token ids or a list of lists of token ids.
std::vector<Prompt> prompts(const json& v, const std::string& param, size_t max_count) {
  std::vector<Prompt> out;
  if (v.is_string()) {
    out.emplace_back(v.get<std::string>());
  } else if (v.is_array() && !v.empty() && v[0].is_number()) {
    out.emplace_back(token_ids(v, param));
  } else if (v.is_array() && !v.empty()) {
    for (const json& item : v) {
      if (item.is_string())
        out.emplace_back(item.get<std::string>());
      else if (item.is_array() && !item.empty())
        out.emplace_back(token_ids(item, param));
      else
        wrong_type(param, "a string, an array of strings, or (an array of) non-empty arrays of token ids", item);
    }
  } else if (v.is_array()) {
    bad_value(param, "must not be an empty array");
  } else {
    wrong_type(param, "a string, an array of strings, or (an array of) arrays of token ids", v);
  }
  if (out.size() > max_count)
    bad_value(param,
              "holds " + std::to_string(out.size()) + " inputs; at most " + std::to_string(max_count) + " are allowed");
  return out;
}

GenerationFields generation_fields(const Fields& f, bool chat) {
  GenerationFields g;
  g.model = f.required_string("model");
  std::optional<int64_t> max_tokens = f.integer("max_tokens", 1, std::numeric_limits<int32_t>::max());
  if (chat) {
    std::optional<int64_t> max_completion = f.integer("max_completion_tokens", 1, std::numeric_limits<int32_t>::max());
    if (max_tokens && max_completion && *max_tokens != *max_completion)
      throw ApiError(400, "'max_tokens' and 'max_completion_tokens' disagree; give one", "max_completion_tokens");
    g.max_tokens = max_completion ? max_completion : max_tokens;
  } else {
    g.max_tokens = max_tokens;
  }
  SamplingFields& s = g.sampling;
  s.temperature = f.number("temperature", 0, 2);
  s.top_p = f.number("top_p", 0, 1, /*lo_open=*/true);
  s.min_p = f.number("min_p", 0, 1);
  s.repetition_penalty = f.number("repetition_penalty", 0, 10, /*lo_open=*/true);
  if (std::optional<int64_t> k = f.integer("top_k", -1, std::numeric_limits<int32_t>::max())) s.top_k = *k < 0 ? 0 : *k;
  s.presence_penalty = f.number("presence_penalty", -2, 2).value_or(0);
  s.frequency_penalty = f.number("frequency_penalty", -2, 2).value_or(0);
  s.seed = f.integer("seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
  if (const json* stop = f.get("stop")) {
    if (stop->is_string()) {
      g.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      for (const json& s : *stop) {
        if (!s.is_string()) wrong_type("stop", "a string or an array of strings", s);
        g.stop.push_back(s.get<std::string>());
      }
    } else {
      wrong_type("stop", "a string or an array of strings", *stop);
    }
    if (g.stop.size() > kMaxStops) bad_value("stop", "holds more than " + std::to_string(kMaxStops) + " strings");
    for (const std::string& s : g.stop)
      if (s.empty()) bad_value("stop", "must not hold an empty string");
  }
  g.n = f.integer("n", 1, kMaxChoices).value_or(1);
  g.stream = f.boolean("stream").value_or(false);
  if (const json* options = f.get("stream_options")) {
    if (!options->is_object()) wrong_type("stream_options", "an object", *options);
    Fields o(*options);
    g.include_usage = o.boolean("include_usage").value_or(false);
  }
  if (chat) {
    bool logprobs = f.boolean("logprobs").value_or(false);
    std::optional<int64_t> top = f.integer("top_logprobs", 0, 20);
    if (top && !logprobs) bad_value("top_logprobs", "needs 'logprobs': true");
    g.logprobs = logprobs ? int(top.value_or(0)) : -1;
  } else {
    if (std::optional<int64_t> lp = f.integer("logprobs", 0, 20)) g.logprobs = int(*lp);
  }
  g.ignore_eos = f.boolean("ignore_eos").value_or(false);
  f.refuse("logit_bias", "this server cannot bias logits");
  f.refuse("tools", "this server does not call tools");
  f.refuse("functions", "this server does not call functions");
  if (const json* format = f.get("response_format")) {
    if (!format->is_object()) wrong_type("response_format", "an object", *format);
    std::string type = Fields(*format).string("type").value_or("text");
    if (type != "text")
      throw ApiError(400, "'response_format' of type '" + type + "' is not supported: only 'text'", "response_format",
                     "unsupported_parameter");
  }
  return g;
}

// One message's content as a single string: a string, or the texts of a list of text parts.
std::string message_content(const json& content, const std::string& param) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) wrong_type(param, "a string or an array of content parts", content);
  std::string text;
  for (const json& part : content) {
    if (!part.is_object()) wrong_type(param, "an array of content parts (objects)", part);
    Fields p(part);
    std::string type = p.required_string("type");
    if (type != "text") bad_value(param, "holds a part of type '" + type + "'; only text parts are supported");
    text += p.required_string("text");
  }
  return text;
}

}  // namespace

ApiError::ApiError(int status, const std::string& message, std::string param, std::string code)
    : std::runtime_error(message),
      status_(status),
      type_(type_for_status(status)),
      param_(std::move(param)),
      code_(std::move(code)) {}

json ApiError::body() const {
  return {{"error",
           {{"message", what()},
            {"type", type_},
            {"param", param_.empty() ? json(nullptr) : json(param_)},
            {"code", code_.empty() ? json(nullptr) : json(code_)}}}};
}

json parse_json_object(const std::string& body) {
  json v = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (v.is_discarded()) throw ApiError(400, "the request body is not valid JSON", "", "invalid_json");
  if (!v.is_object()) throw ApiError(400, "the request body must be a JSON object", "", "invalid_json");
  return v;
}

ChatRequest parse_chat_request(const json& body) {
  Fields f(body);
  ChatRequest r;
  r.fields = generation_fields(f, /*chat=*/true);
  const json* messages = f.get("messages");
  if (!messages) throw ApiError(400, "'messages' is required", "messages", "missing_required_parameter");
  if (!messages->is_array()) wrong_type("messages", "an array", *messages);
  if (messages->empty()) bad_value("messages", "must hold at least one message");
  r.messages = nlohmann::ordered_json::array();
  for (size_t i = 0; i < messages->size(); ++i) {
    std::string param = "messages[" + std::to_string(i) + "]";
    const json& m = (*messages)[i];
    if (!m.is_object()) wrong_type(param, "an object", m);
    Fields mf(m);
    std::string role = mf.required_string("role");
    if (role == "developer") role = "system";  // OpenAI's newer name for system instructions
    if (role != "system" && role != "user" && role != "assistant")
      bad_value(param + ".role", "is '" + role + "'; expected system, developer, user or assistant");
    const json* content = mf.get("content");
    if (!content) bad_value(param + ".content", "is required");
    nlohmann::ordered_json out = {{"role", role}, {"content", message_content(*content, param + ".content")}};
    if (std::optional<std::string> name = mf.string("name")) out["name"] = *name;
    r.messages.push_back(std::move(out));
  }
  return r;
}

CompletionRequest parse_completion_request(const json& body) {
  Fields f(body);
  CompletionRequest r;
  r.fields = generation_fields(f, /*chat=*/false);
  const json* prompt = f.get("prompt");
  if (!prompt) throw ApiError(400, "'prompt' is required", "prompt", "missing_required_parameter");
  r.prompts = prompts(*prompt, "prompt", kMaxPrompts);
  if (f.boolean("echo").value_or(false))
    throw ApiError(400, "'echo' is not supported: the response holds only the completion", "echo",
                   "unsupported_parameter");
  if (f.get("suffix"))
    throw ApiError(400, "'suffix' is not supported (no fill-in-the-middle)", "suffix", "unsupported_parameter");
  if (std::optional<int64_t> best_of = f.integer("best_of", 1, kMaxChoices); best_of && *best_of != r.fields.n)
    throw ApiError(400, "'best_of' other than n is not supported", "best_of", "unsupported_parameter");
  return r;
}

EmbeddingRequest parse_embedding_request(const json& body) {
  Fields f(body);
  EmbeddingRequest r;
  r.model = f.required_string("model");
  const json* input = f.get("input");
  if (!input) throw ApiError(400, "'input' is required", "input", "missing_required_parameter");
  r.inputs = prompts(*input, "input", kMaxEmbeddingInputs);
  std::string format = f.string("encoding_format").value_or("float");
  if (format != "float" && format != "base64")
    bad_value("encoding_format", "must be 'float' or 'base64', got '" + format + "'");
  r.base64 = format == "base64";
  r.dimensions = f.integer("dimensions", 1, std::numeric_limits<int32_t>::max());
  return r;
}

void check_adapter_name(const std::string& name, const std::string& param) {
  if (name.empty() || name.size() > 128) bad_value(param, "must be 1 to 128 characters");
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      bad_value(param, "'" + name + "' may hold only letters, digits, '.', '_' and '-'");
}

AdapterLoadRequest parse_adapter_request(const json& body) {
  Fields f(body);
  AdapterLoadRequest r;
  r.name = f.required_string("name");
  r.path = f.required_string("path");
  check_adapter_name(r.name, "name");
  return r;
}

}  // namespace wick::serve
