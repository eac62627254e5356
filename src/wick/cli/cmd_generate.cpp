// `wick generate`: continue a prompt (or a chat turn with --chat) with a decoder, streaming the
// text, or printing {"token_ids", "text"} with --json.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "wick/cli/commands.h"
#include "wick/cli/runtime_options.h"
#include "wick/lora/adapter.h"
#include "wick/models/generate.h"
#include "wick/runtime/generator.h"

namespace wick::cli {

namespace {

struct GenerateCliOptions {
  std::string model, prompt, prompt_ids, adapter;
  RuntimeOptions runtime;
  models::GenerateOptions gen;
  bool json = false, chat = false, stream_probs = false;
};

std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    WICK_CHECK(used == item.size() && !item.empty() && v >= 0 && v < (1LL << 31), "--prompt-ids: '", item,
               "' is not a token id");
    ids.push_back(int32_t(v));
  }
  return ids;
}

void run_generate(const GenerateCliOptions& o) {
  WICK_CHECK(o.prompt.empty() != o.prompt_ids.empty(), "generate: give exactly one of --prompt and --prompt-ids");
  models::LoadedDecoder loaded = models::load_decoder(o.model, o.runtime.inference_load_options(o.model));
  const tok::Tokenizer& tokenizer = loaded.require_tokenizer();
  std::vector<int32_t> prompt;
  if (!o.prompt_ids.empty()) {
    prompt = parse_ids(o.prompt_ids);
  } else if (o.chat) {
    const chat::ChatTemplateConfig& config = loaded.require_chat_template();
    nlohmann::ordered_json messages = nlohmann::ordered_json::array({{{"role", "user"}, {"content", o.prompt}}});
    prompt = tokenizer.encode(chat::ChatTemplate(config.chat_template).render(messages, true, config.options), false);
  } else {
    prompt = tokenizer.encode(o.prompt, true);
  }
  for (int32_t id : prompt)
    WICK_CHECK(id < loaded.model.config().vocab_size, "generate: prompt token ", id, " is outside the vocabulary of ",
               loaded.model.config().vocab_size);
  models::GenerateOptions gen = o.gen;
  gen.eos_ids = loaded.eos_ids;
  // One sequence through the inference runtime (the path of chat and serve), its KV cache sized for it.
  runtime::RunnerOptions ro;
  ro.max_batch = 1;
  ro.max_context = int64_t(prompt.size()) + std::max<int64_t>(gen.max_tokens, 1);
  std::optional<lora::Adapter> adapter;
  if (!o.adapter.empty()) {
    adapter = lora::Adapter::load(o.adapter, loaded.model);
    ro.max_loras = 1;
    ro.max_lora_rank = adapter->config().r;
  }
  runtime::DecoderRunner runner(loaded.model, ro);
  runtime::GenerationJob job;
  job.prompt = prompt;
  job.options = gen;
  if (adapter) job.adapter_slot = runner.adapters().load("adapter", adapter->deltas());
  job.on_token = [&](const models::TokenEvent& e) {
    if (o.json) return;
    std::fwrite(e.text.data(), 1, e.text.size(), stdout);
    std::fflush(stdout);
  };
  models::GenerateResult r = runtime::generate(runner, &tokenizer, {job})[0];
  if (o.json) {
    nlohmann::json out{{"token_ids", r.ids}, {"text", r.text}, {"finish_reason", r.finish_reason}};
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::cout << "\n";
  }
}

}  // namespace

void add_runtime_options(CLI::App* cmd, RuntimeOptions& runtime) {
  cmd->add_option("--device", runtime.device, "cpu, cuda or cuda:N (default: cuda when present)");
  cmd->add_option("--dtype", runtime.dtype, "f32, bf16 or f16 (default: bf16 on CUDA, f32 on the CPU)");
}

void add_quantized_base_option(CLI::App* cmd, RuntimeOptions& runtime) {
  cmd->add_option("--quantized-base", runtime.quantized_base,
                  "keep the linear layers quantized in memory, dequantized on the fly (QLoRA-style): 'file' keeps a "
                  "GGUF's own blocks; q4_0, q4_1, q5_0, q5_1 or q8_0 quantizes any base at load")
      ->check(CLI::IsMember({"file", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0"}));
}

void add_sampling_options(CLI::App* cmd, models::GenerateOptions& g) {
  cmd->add_option("--max-tokens", g.max_tokens, "the most tokens to generate")->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--temperature", g.sampling.temperature, "0: greedy")->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--top-k", g.sampling.top_k, "keep the k most likely tokens (0: off)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-p", g.sampling.top_p, "nucleus sampling mass (1: off)")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--min-p", g.sampling.min_p, "drop tokens below min_p x the top probability")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--repetition-penalty", g.sampling.repetition_penalty, "transformers' repetition penalty")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", g.sampling.seed, "seed of the sampler");
  cmd->add_option("--stop", g.stop, "stop string (repeatable)");
}

void register_generate(CLI::App& app) {
  auto o = std::make_shared<GenerateCliOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text with a decoder model");
  cmd->add_option("--model", o->model, "model folder, .gguf file or ORG/NAME")->required();
  cmd->add_option("--prompt", o->prompt, "the prompt text");
  cmd->add_option("--prompt-ids", o->prompt_ids, "the prompt as comma-separated token ids");
  cmd->add_option("--adapter", o->adapter, "a PEFT LoRA adapter folder");
  add_sampling_options(cmd, o->gen);
  cmd->add_flag("--chat", o->chat, "wrap the prompt as a user turn of the model's chat template");
  cmd->add_flag("--json", o->json, "print {\"token_ids\", \"text\", \"finish_reason\"} instead of streaming");
  add_runtime_options(cmd, o->runtime);
  add_quantized_base_option(cmd, o->runtime);
  cmd->callback([o] { run_generate(*o); });
}

}  // namespace wick::cli
