// `wick chat`: an interactive, multi-turn conversation with a decoder through its own chat
// template; each reply streams as it is generated. One user turn per stdin line (edited, with a
// history, on a terminal); end of input ends the session (empty lines are skipped); Ctrl-C stops the
// reply being written (a second one, or one at the prompt, ends the session); when the conversation
// outgrows the context the oldest turns are dropped, with a note on stderr. The session's commands
// are listed in kSessionCommands (shown by --help).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "wick/cli/commands.h"
#include "wick/cli/interrupt.h"
#include "wick/cli/line_reader.h"
#include "wick/cli/runtime_options.h"
#include "wick/cli/sampling_options.h"
#include "wick/lora/registry.h"
#include "wick/models/generate.h"
#include "wick/runtime/generator.h"

namespace wick::cli {

namespace {

struct ChatOptions {
  std::string model, system;
  std::vector<std::string> adapters;  // NAME=DIR or DIR (named after its folder)
  RuntimeOptions runtime;
  models::GenerateOptions gen;
  int64_t context = 0;  // 0: the model's, at most 8192
  SamplingFlags sampling{};
};

// Drops the oldest turns (after a system message) until the prompt leaves room for a reply of
// `reply` tokens in `context`; returns how many messages were dropped. The newest user message
// always stays (the caller reports when even it alone does not fit).
template <class Encode>
size_t drop_oldest_turns(nlohmann::ordered_json& messages, int64_t context, int64_t reply, Encode&& encode_prompt,
                         std::vector<int32_t>& prompt) {
  size_t dropped = 0;
  size_t first = !messages.empty() && messages[0]["role"] == "system" ? 1 : 0;
  prompt = encode_prompt(messages);
  while (int64_t(prompt.size()) + reply > context && messages.size() > first + 1) {
    // A turn is a user message and the replies after it, so the history still starts with a user.
    size_t end = first + 1;
    while (end < messages.size() - 1 && messages[end]["role"] != "user") ++end;
    messages.erase(messages.begin() + std::ptrdiff_t(first), messages.begin() + std::ptrdiff_t(end));
    dropped += end - first;
    prompt = encode_prompt(messages);
  }
  return dropped;
}

constexpr const char* kSessionCommands =
    "Commands in the session:\n"
    "  /reset          clear the conversation (the system message stays)\n"
    "  /adapter        list the adapters and show the active one\n"
    "  /adapter NAME   switch to the adapter NAME (given with --adapter)\n"
    "  /adapter none   use the base model alone\n"
    "End of input (Ctrl-D) ends the session; empty lines are skipped. Ctrl-C stops the reply being\n"
    "written (a second Ctrl-C, or one at the prompt, ends the session).\n";

// NAME=DIR, or DIR named after its last folder.
std::pair<std::string, std::string> adapter_spec(const std::string& spec) {
  size_t eq = spec.find('=');
  std::string name, dir;
  if (eq != std::string::npos && eq > 0 && spec.substr(0, eq).find('/') == std::string::npos) {
    name = spec.substr(0, eq);
    dir = spec.substr(eq + 1);
  } else {
    dir = spec;
    name = std::filesystem::path(spec).lexically_normal().filename().string();
    if (name.empty()) name = std::filesystem::path(spec).lexically_normal().parent_path().filename().string();
  }
  WICK_CHECK(!name.empty() && !dir.empty(), "chat: --adapter ", spec, ": expected DIR or NAME=DIR");
  WICK_CHECK(name != "none", "chat: --adapter ", spec, ": 'none' is reserved for /adapter none");
  return {name, dir};
}

void run_chat(ChatOptions o) {
  models::LoadedDecoder loaded = models::load_decoder(o.model, o.runtime.inference_load_options(o.model));
  const tok::Tokenizer& tokenizer = loaded.require_tokenizer();
  const chat::ChatTemplateConfig& config = loaded.require_chat_template();
  chat::ChatTemplate tmpl(config.chat_template);
  o.gen.eos_ids = loaded.eos_ids;
  resolve_sampling(o.sampling, loaded.generation, o.gen);
  lora::AdapterRegistry adapters(loaded.model);
  int64_t max_rank = 1;
  for (const std::string& spec : o.adapters) {
    auto [name, dir] = adapter_spec(spec);
    adapters.load(name, dir);
    if (!adapters.active()) adapters.activate(name);
    max_rank = std::max(max_rank, adapters.adapter(name).config().r);
  }
  // The conversation runs through the inference runtime; every adapter is resident in a slot.
  runtime::RunnerOptions ro;
  ro.max_batch = 1;
  int64_t context = loaded.model.config().max_position_embeddings;
  ro.max_context = std::min<int64_t>(context > 0 ? context : 8192, 8192);
  if (o.context > 0) {
    WICK_CHECK(context <= 0 || o.context <= context, "chat: --context ", o.context, " is longer than the model's ", context);
    ro.max_context = o.context;
  }
  ro.max_loras = int(adapters.names().size());
  ro.max_lora_rank = max_rank;
  runtime::DecoderRunner runner(loaded.model, ro);
  for (const std::string& name : adapters.names()) runner.adapters().load(name, adapters.deltas(name));
  LineReader reader("> ");
  auto fresh = [&] {
    nlohmann::ordered_json m = nlohmann::ordered_json::array();
    if (!o.system.empty()) m.push_back({{"role", "system"}, {"content", o.system}});
    return m;
  };
  nlohmann::ordered_json messages = fresh();
  std::string line;
  while (true) {
    if (!reader.read(line)) break;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (line == "/reset") {
      messages = fresh();
      std::fputs("(conversation cleared)\n", stderr);
      continue;
    }
    if (line == "/adapter" || line.rfind("/adapter ", 0) == 0) {
      // A mistyped name is reported and the session goes on with the adapter it had.
      std::string name = line.size() > 9 ? line.substr(9) : "";
      try {
        if (name == "none") adapters.deactivate();
        else if (!name.empty()) adapters.activate(name);
      } catch (const Error& e) {
        std::fprintf(stderr, "%s\n", e.what());
      }
      std::string names;
      for (const std::string& n : adapters.names()) names += (names.empty() ? "" : ", ") + n;
      std::fprintf(stderr, "adapter: %s (loaded: %s)\n", adapters.active() ? adapters.active()->c_str() : "none",
                   names.empty() ? "none" : names.c_str());
      continue;
    }
    // Tried on a copy: a message that cannot fit is refused without costing the history.
    nlohmann::ordered_json kept = messages;
    kept.push_back({{"role", "user"}, {"content", line}});
    // Room for a whole reply, or for half the context when replies may be longer.
    int64_t reply_room = std::min<int64_t>(o.gen.max_tokens, ro.max_context / 2);
    std::vector<int32_t> prompt;
    size_t dropped = drop_oldest_turns(
        kept, ro.max_context, reply_room,
        [&](const nlohmann::ordered_json& m) { return tokenizer.encode(tmpl.render(m, true, config.options), false); },
        prompt);
    if (int64_t(prompt.size()) >= ro.max_context) {
      std::fprintf(stderr, "chat: this message (%zu tokens with the template) does not fit the context of %lld tokens; "
                           "not sent\n", prompt.size(), (long long)ro.max_context);
      continue;
    }
    if (dropped > 0)
      std::fprintf(stderr, "(the conversation outgrew the context of %lld tokens: dropped the oldest %zu messages)\n",
                   (long long)ro.max_context, dropped);
    messages = std::move(kept);
    runtime::GenerationJob job;
    job.prompt = prompt;
    job.options = o.gen;
    job.options.max_tokens = std::min<int64_t>(o.gen.max_tokens, ro.max_context - int64_t(prompt.size()));
    job.adapter_slot = adapters.active() ? runner.adapters().find(*adapters.active()) : -1;
    job.on_token = [](const models::TokenEvent& e) {
      std::fwrite(e.text.data(), 1, e.text.size(), stdout);
      std::fflush(stdout);
    };
    models::GenerateResult r;
    {
      InterruptScope interrupt(nullptr);  // Ctrl-C stops this reply, not the session
      job.interrupt = &interrupt.requested();
      r = runtime::generate(runner, &tokenizer, {job})[0];
    }
    std::fputs("\n", stdout);
    if (r.finish_reason == "cancelled") std::fputs("(reply stopped)\n", stderr);
    messages.push_back({{"role", "assistant"}, {"content", r.text}});
  }
}

}  // namespace

void register_chat(CLI::App& app) {
  auto o = std::make_shared<ChatOptions>();
  o->gen.max_tokens = 512;
  CLI::App* cmd = app.add_subcommand("chat", "Chat with a model (one user turn per line; end of input ends)");
  cmd->add_option("-m,--model", o->model, "model folder, .gguf file or ORG/NAME")->required();
  cmd->add_option("--adapter", o->adapters,
                  "a PEFT LoRA adapter folder, as DIR or NAME=DIR (repeatable; the first is active, /adapter NAME switches)");
  cmd->add_option("--system", o->system, "a system message");
  cmd->add_option("--context", o->context,
                  "tokens of conversation kept (default: the model's, at most 8192); older turns are dropped")
      ->check(CLI::Range(int64_t(16), int64_t(1) << 24));
  o->sampling = add_sampling_options(cmd, o->gen);  // per reply
  add_runtime_options(cmd, o->runtime);
  add_quantized_base_option(cmd, o->runtime);
  cmd->footer(kSessionCommands);
  cmd->callback([o] { run_chat(*o); });
}

}  // namespace wick::cli
