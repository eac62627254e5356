// `wick chat`: an interactive, multi-turn conversation with a decoder through its own chat
// template; each reply streams as it is generated. One user turn per stdin line; an empty line
// or end of input ends the session; "/reset" clears the history.
#include <cstdio>
#include <iostream>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "wick/cli/commands.h"
#include "wick/cli/model_files.h"
#include "wick/cli/model_loading.h"
#include "wick/lora/adapter.h"
#include "wick/models/generate.h"

namespace wick::cli {

namespace {

struct ChatOptions {
  std::string model, adapter, system;
  RuntimeOptions runtime;
  models::GenerateOptions gen;
};

void run_chat(ChatOptions o) {
  LoadedDecoder loaded = load_decoder(o.model, o.runtime);
  tok::Tokenizer tokenizer = load_tokenizer(loaded.path);
  tok::ChatTemplateConfig config = load_chat_template(loaded.path);
  tok::ChatTemplate tmpl(config.chat_template);
  o.gen.eos_ids = loaded.eos_ids;
  std::optional<lora::Adapter> adapter;
  models::LoraDeltas deltas;
  if (!o.adapter.empty()) {
    adapter = lora::Adapter::load(o.adapter, loaded.model);
    deltas = adapter->deltas();
  }
  bool tty = isatty(fileno(stdin));
  auto fresh = [&] {
    nlohmann::ordered_json m = nlohmann::ordered_json::array();
    if (!o.system.empty()) m.push_back({{"role", "system"}, {"content", o.system}});
    return m;
  };
  nlohmann::ordered_json messages = fresh();
  std::string line;
  while (true) {
    if (tty) std::fputs("> ", stdout), std::fflush(stdout);
    if (!std::getline(std::cin, line) || line.empty()) break;
    if (line == "/reset") {
      messages = fresh();
      continue;
    }
    messages.push_back({{"role", "user"}, {"content", line}});
    std::vector<int32_t> prompt = tokenizer.encode(tmpl.render(messages, true, config.options), false);
    models::GenerateResult r = models::generate(
        loaded.model, tokenizer, prompt, o.gen,
        [](const models::TokenEvent& e) {
          std::fwrite(e.text.data(), 1, e.text.size(), stdout);
          std::fflush(stdout);
        },
        adapter ? &deltas : nullptr);
    std::fputs("\n", stdout);
    messages.push_back({{"role", "assistant"}, {"content", r.text}});
  }
}

}  // namespace

void register_chat(CLI::App& app) {
  auto o = std::make_shared<ChatOptions>();
  o->gen.max_tokens = 512;
  o->gen.sampling.temperature = 0.7;
  o->gen.sampling.top_p = 0.9;
  CLI::App* cmd = app.add_subcommand("chat", "Chat with a model (one user turn per line; empty line or EOF ends)");
  cmd->add_option("--model", o->model, "model folder, .gguf file or ORG/NAME")->required();
  cmd->add_option("--adapter", o->adapter, "a PEFT LoRA adapter folder");
  cmd->add_option("--system", o->system, "a system message");
  add_sampling_options(cmd, o->gen);  // per reply
  add_runtime_options(cmd, o->runtime);
  cmd->callback([o] { run_chat(*o); });
}

}  // namespace wick::cli
