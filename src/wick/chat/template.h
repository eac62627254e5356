// Chat templates: renders a model's own Jinja chat template byte-for-byte as transformers'
// `apply_chat_template(..., tokenize=False)` does (jinja2 sandbox with trim_blocks,
// lstrip_blocks, loopcontrols, transformers' tojson/raise_exception/strftime_now).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace wick::chat {

struct TemplateOptions {
  std::optional<std::string> bos_token;  // absent: the variable is undefined, as transformers leaves it
  std::optional<std::string> eos_token;
  nlohmann::ordered_json tools = nullptr;  // a list of tool JSON schemas, or null (`tools` is then None)
  // More template variables (transformers' **kwargs, e.g. pad_token, enable_thinking); they
  // override everything above.
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
};

class ChatTemplate {
 public:
  // Parses `source`; syntax errors throw wick::Error naming line and column.
  explicit ChatTemplate(std::string source);
  ~ChatTemplate();
  ChatTemplate(const ChatTemplate&);
  ChatTemplate& operator=(const ChatTemplate&);

  // `messages`: a JSON array of message objects ({"role", "content", "tool_calls", ...}),
  // prepared as transformers does: keys whose value is null are dropped, and a message's reasoning
  // (reasoning_content / thinking / reasoning) is passed as both `thinking` and
  // `reasoning_content`. Errors (including the template's own raise_exception) throw wick::Error
  // with the template line and column.
  std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                     const TemplateOptions& options = {}) const;

  const std::string& source() const;

 private:
  struct Program;
  std::shared_ptr<const Program> program_;
};

// What tokenizer_config.json says about chat formatting.
struct ChatTemplateConfig {
  std::string chat_template;
  TemplateOptions options;  // bos/eos and the other special tokens (unk, pad, ...) as extra variables
};

// Reads `chat_template` (a string, or a list of {"name", "template"} from which `name` is picked)
// and the special tokens (strings or AddedToken objects {"content": ...}) from a
// tokenizer_config.json object, file, or model folder (where a chat_template.jinja file, if
// present, wins as in transformers). Fails naming the file and field when there is no template.
ChatTemplateConfig chat_template_config_from_json(const nlohmann::json& config, const std::string& name = "default");
ChatTemplateConfig load_chat_template_config(const std::string& tokenizer_config_path,
                                             const std::string& name = "default");

}  // namespace wick::chat
