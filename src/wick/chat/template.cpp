// ChatTemplate: parses once, renders with the variables transformers passes to chat templates.
#include "wick/chat/template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "wick/base/error.h"
#include "wick/chat/jinja_ast.h"
#include "wick/chat/jinja_builtins.h"
#include "wick/chat/jinja_context.h"
#include "wick/chat/jinja_lexer.h"
#include "wick/chat/jinja_parser.h"

namespace wick::chat {

using jinja::Value;
using jinja::ValueDict;

struct ChatTemplate::Program {
  explicit Program(std::string raw) : raw_source(std::move(raw)), source(raw_source), body(jinja::parse(source, jinja::tokenize(source))) {}
  std::string raw_source;
  jinja::SourceText source;
  jinja::Body body;
};

ChatTemplate::ChatTemplate(std::string source) : program_(std::make_shared<const Program>(std::move(source))) {}
ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(const ChatTemplate&) = default;
ChatTemplate& ChatTemplate::operator=(const ChatTemplate&) = default;

const std::string& ChatTemplate::source() const { return program_->raw_source; }

namespace {

// transformers' _alias_reasoning_fields: a message's reasoning (reasoning_content, thinking or
// reasoning, first present) is also passed as `thinking` (first key) and `reasoning_content`.
nlohmann::ordered_json alias_reasoning(nlohmann::ordered_json message) {
  const nlohmann::ordered_json* reasoning = nullptr;
  for (const char* key : {"reasoning_content", "thinking", "reasoning"}) {
    if (message.contains(key)) {
      reasoning = &message[key];
      break;
    }
  }
  if (reasoning == nullptr) return message;
  nlohmann::ordered_json aliased = nlohmann::ordered_json::object();
  aliased["thinking"] = *reasoning;
  for (const auto& [k, v] : message.items()) aliased[k] = v;  // an existing key keeps its first position
  aliased["reasoning_content"] = *reasoning;
  return aliased;
}

}  // namespace

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                 const TemplateOptions& options) const {
  if (!messages.is_array()) fail("chat template: messages must be a JSON array, got ", messages.type_name());
  nlohmann::ordered_json chat = nlohmann::ordered_json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    if (!m.is_object()) fail("chat template: messages[", i, "] must be an object, got ", m.type_name());
    nlohmann::ordered_json kept = nlohmann::ordered_json::object();
    for (const auto& [k, v] : m.items())
      if (!v.is_null()) kept[k] = v;  // transformers drops None-valued keys before rendering
    chat.push_back(alias_reasoning(std::move(kept)));
  }
  if (!options.extra.is_object()) fail("chat template: extra variables must be a JSON object");

  ValueDict vars = jinja::make_globals();
  vars.set(Value::string("messages"), Value::from_json(chat));
  vars.set(Value::string("tools"), Value::from_json(options.tools));
  vars.set(Value::string("documents"), Value::none());
  vars.set(Value::string("add_generation_prompt"), Value::boolean(add_generation_prompt));
  if (options.bos_token) vars.set(Value::string("bos_token"), Value::string(*options.bos_token));
  if (options.eos_token) vars.set(Value::string("eos_token"), Value::string(*options.eos_token));
  for (const auto& [k, v] : options.extra.items()) vars.set(Value::string(k), Value::from_json(v));

  jinja::Context ctx(program_->source, vars);
  std::string out;
  jinja::render_body(program_->body, ctx, out);
  return out;
}

namespace {

// A special token is a string or an AddedToken object {"content": "...", ...}.
std::optional<std::string> token_string(const nlohmann::json& config, const char* field) {
  auto it = config.find(field);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  fail("tokenizer_config.json: field '", field, "' must be a string or an AddedToken object, got ", it->type_name());
}

}  // namespace

ChatTemplateConfig chat_template_config_from_json(const nlohmann::json& config, const std::string& name) {
  if (!config.is_object()) fail("tokenizer_config.json: expected a JSON object");
  ChatTemplateConfig out;
  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) fail("tokenizer_config.json: no 'chat_template' field");
  if (it->is_string()) {
    out.chat_template = it->get<std::string>();
  } else if (it->is_array()) {
    std::string names;
    for (const auto& entry : *it) {
      if (!entry.is_object() || !entry.contains("name") || !entry.contains("template") || !entry["name"].is_string() ||
          !entry["template"].is_string())
        fail("tokenizer_config.json: 'chat_template' list entries must be {\"name\", \"template\"} objects");
      if (entry["name"] == name) {
        out.chat_template = entry["template"].get<std::string>();
        break;
      }
      names += (names.empty() ? "" : ", ") + entry["name"].get<std::string>();
    }
    if (out.chat_template.empty()) fail("tokenizer_config.json: 'chat_template' has no template named '", name, "' (has: ", names, ")");
  } else {
    fail("tokenizer_config.json: 'chat_template' must be a string or a list, got ", it->type_name());
  }
  out.options.bos_token = token_string(config, "bos_token");
  out.options.eos_token = token_string(config, "eos_token");
  for (const char* field : {"unk_token", "sep_token", "pad_token", "cls_token", "mask_token"})
    if (auto tok = token_string(config, field)) out.options.extra[field] = *tok;
  return out;
}

namespace {

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open '", path.string(), "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

ChatTemplateConfig load_chat_template_config(const std::string& path, const std::string& name) {
  namespace fs = std::filesystem;
  // A model folder: tokenizer_config.json, with the template in chat_template.jinja when the
  // folder has one (newer transformers saves it there, and prefers it).
  const bool folder = fs::is_directory(path);
  const fs::path config_path = folder ? fs::path(path) / "tokenizer_config.json" : fs::path(path);
  const fs::path jinja_path = config_path.parent_path() / "chat_template.jinja";
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(read_text_file(config_path));
  } catch (const nlohmann::json::exception& e) {
    fail("tokenizer config '", config_path.string(), "': invalid JSON: ", e.what());
  }
  if (!config.is_object()) fail(config_path.string(), ": expected a JSON object");
  if (fs::is_regular_file(jinja_path)) config["chat_template"] = read_text_file(jinja_path);
  try {
    return chat_template_config_from_json(config, name);
  } catch (const Error& e) {
    fail(config_path.string(), ": ", e.what());
  }
}

}  // namespace wick::chat
