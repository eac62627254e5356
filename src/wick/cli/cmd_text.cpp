// `wick tokenize`, `wick detokenize` and `wick template`: the tokenizer and chat template of a
// model on stdin/stdout, one JSON value per line (see the CLI contract in the README).
#include <iostream>
#include <nlohmann/json.hpp>

#include "wick/base/error.h"
#include "wick/cli/commands.h"
#include "wick/models/loading.h"

namespace wick::cli {

namespace {

using json = nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Calls f for each non-empty line of stdin parsed as JSON; errors name the line number.
template <class F>
void for_each_json_line(const char* what, F&& f) {
  std::string line;
  for (int64_t number = 1; std::getline(std::cin, line); ++number) {
    if (line.empty() || line == "\r") continue;
    json value = json::parse(line, nullptr, false);
    WICK_CHECK(!value.is_discarded(), "stdin line ", number, ": not valid JSON (expected ", what, ")");
    try {
      f(value);
    } catch (const json::exception& e) {
      fail("stdin line ", number, ": ", e.what());
    }
  }
}

}  // namespace

void register_text_commands(CLI::App& app) {
  struct Options {
    std::string tokenizer;
    bool add_special = false, skip_special = false, generation_prompt = false;
  };
  auto o = std::make_shared<Options>();

  CLI::App* tokenize = app.add_subcommand("tokenize", "Token ids of JSON strings read line by line from stdin");
  tokenize->add_option("--tokenizer", o->tokenizer, "tokenizer.json, model folder, .gguf or ORG/NAME")->required();
  tokenize->add_flag("--add-special", o->add_special, "add the special tokens of the post-processor (BOS, [CLS]...)");
  tokenize->callback([o] {
    tok::Tokenizer t = models::load_tokenizer(o->tokenizer);
    for_each_json_line("a JSON string", [&](const json& v) {
      WICK_CHECK(v.is_string(), "expected a JSON string, got ", v.type_name());
      std::cout << dump(t.encode(v.get<std::string>(), o->add_special)) << "\n";
    });
  });

  CLI::App* detokenize = app.add_subcommand("detokenize", "Text of JSON id arrays read line by line from stdin");
  detokenize->add_option("--tokenizer", o->tokenizer, "tokenizer.json, model folder, .gguf or ORG/NAME")->required();
  detokenize->add_flag("--skip-special", o->skip_special, "leave special tokens out of the text");
  detokenize->callback([o] {
    tok::Tokenizer t = models::load_tokenizer(o->tokenizer);
    for_each_json_line("a JSON array of token ids", [&](const json& v) {
      WICK_CHECK(v.is_array(), "expected a JSON array of token ids, got ", v.type_name());
      std::vector<int32_t> ids;
      for (const json& id : v) {
        WICK_CHECK(id.is_number_integer(), "token ids must be integers, got ", id.dump());
        int64_t x = id.get<int64_t>();
        WICK_CHECK(x >= 0 && x < t.vocab_size(), "token id ", x, " is outside the vocabulary of ", t.vocab_size());
        ids.push_back(int32_t(x));
      }
      std::cout << dump(t.decode(ids, o->skip_special)) << "\n";
    });
  });

  CLI::App* tmpl = app.add_subcommand(
      "template", "Render the model's chat template for the chat on stdin ([messages...] or {\"messages\": [...]})");
  tmpl->add_option("--tokenizer", o->tokenizer, "model folder, tokenizer_config.json's folder, .gguf or ORG/NAME")
      ->required();
  tmpl->add_flag("--add-generation-prompt", o->generation_prompt, "end with the assistant turn's opening");
  tmpl->callback([o] {
    chat::ChatTemplateConfig config = models::load_chat_template(o->tokenizer);
    std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    nlohmann::ordered_json messages = nlohmann::ordered_json::parse(input, nullptr, false);
    WICK_CHECK(!messages.is_discarded(), "stdin: not valid JSON (expected [messages...] or {\"messages\": [...]})");
    // The training data's form, {"messages": [...]}, as well as the bare list.
    if (messages.is_object() && messages.contains("messages")) messages = nlohmann::ordered_json(messages["messages"]);
    WICK_CHECK(messages.is_array(), "stdin: expected a JSON array of chat messages or {\"messages\": [...]}");
    std::cout << chat::ChatTemplate(config.chat_template).render(messages, o->generation_prompt, config.options);
  });
}

}  // namespace wick::cli
