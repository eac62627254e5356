// `wick generate`: continue a prompt (or a chat turn with --chat or --system) with a decoder,
// streaming the text, or printing {"token_ids", "text", "finish_reason", "seed"} with --json; or
// answer every prompt of a JSONL file (--prompts), batched through the inference runtime, one
// JSON result per line. Progress on long prompts and a summary line go to stderr.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "wick/cli/commands.h"
#include "wick/cli/generation_report.h"
#include "wick/cli/runtime_options.h"
#include "wick/cli/sampling_options.h"
#include "wick/cli/usage.h"
#include "wick/cli/validators.h"
#include "wick/lora/adapter.h"
#include "wick/models/generate.h"
#include "wick/runtime/generator.h"

namespace wick::cli {

namespace {

using json = nlohmann::ordered_json;

struct GenerateCliOptions {
  std::string model, prompt, prompt_file, prompt_ids, prompts, system, adapter;
  RuntimeOptions runtime;
  models::GenerateOptions gen;
  SamplingFlags sampling{};
  CLI::Option *prompt_given = nullptr, *prompt_file_given = nullptr, *prompt_ids_given = nullptr,
              *prompts_given = nullptr;
  CLI::Option* logprobs_given = nullptr;
  int logprobs = 0;
  bool json = false, chat = false;
};

// Prompts of one batch at most; the scheduler runs them as many rows at once as fit.
constexpr int64_t kMaxBatch = 16;

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
    if (used != item.size() || item.empty() || v < 0 || v >= (1LL << 31))
      usage_fail("--prompt-ids: '", item, "' is not a token id");
    ids.push_back(int32_t(v));
  }
  return ids;
}

// A file's whole text, or stdin's for "-".
std::string read_text(const std::string& path, const char* option) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    WICK_CHECK(in.good(), option, ": cannot open ", path, ": ", std::strerror(errno));
    ss << in.rdbuf();
  }
  return ss.str();
}

// The prompt's text: --prompt (stdin for "-") or --prompt-file.
std::string prompt_text(const GenerateCliOptions& o) {
  std::string text = o.prompt_file_given->count() ? read_text(o.prompt_file, "--prompt-file")
                     : o.prompt == "-"            ? read_text("-", "--prompt -")
                                                  : o.prompt;
  if (text.empty()) usage_fail("generate: the prompt is empty");
  return text;
}

class PromptEncoder {
 public:
  PromptEncoder(const models::LoadedDecoder& loaded, const GenerateCliOptions& o) : loaded_(loaded), o_(o) {}

  // Text continued as is, or (with --chat or --system) as the user turn of the chat template.
  std::vector<int32_t> text(const std::string& prompt) const {
    if (!o_.chat && o_.system.empty()) return loaded_.require_tokenizer().encode(prompt, true);
    return messages(json::array({{{"role", "user"}, {"content", prompt}}}));
  }

  // A conversation through the chat template, opening the assistant's turn; --system leads unless
  // the conversation has its own system message.
  std::vector<int32_t> messages(json conversation) const {
    const chat::ChatTemplateConfig& config = loaded_.require_chat_template();
    bool has_system =
        !conversation.empty() && conversation[0].is_object() && conversation[0].value("role", "") == "system";
    if (!o_.system.empty() && !has_system)
      conversation.insert(conversation.begin(), json{{"role", "system"}, {"content", o_.system}});
    std::string rendered = chat::ChatTemplate(config.chat_template).render(conversation, true, config.options);
    return loaded_.require_tokenizer().encode(rendered, false);
  }

 private:
  const models::LoadedDecoder& loaded_;
  const GenerateCliOptions& o_;
};

// One line of --prompts: a JSON string, {"prompt": "..."} or {"messages": [...]}.
std::vector<int32_t> batch_prompt(const PromptEncoder& encode, const std::string& line, int64_t number) {
  json value = json::parse(line, nullptr, false);
  auto bad = [&](const std::string& why) { fail("--prompts line ", number, ": ", why); };
  if (value.is_discarded()) bad("not valid JSON (expected a string, {\"prompt\": ...} or {\"messages\": [...]})");
  if (value.is_object() && value.contains("messages")) {
    if (!value["messages"].is_array() || value["messages"].empty()) bad("\"messages\" must be a non-empty array");
    return encode.messages(value["messages"]);
  }
  if (value.is_object() && value.contains("prompt")) value = value["prompt"];
  if (!value.is_string()) bad("expected a string, {\"prompt\": \"...\"} or {\"messages\": [...]}");
  if (value.get<std::string>().empty()) bad("the prompt is empty");
  return encode.text(value.get<std::string>());
}

json result_json(const models::GenerateResult& r, uint64_t seed, const tok::Tokenizer* tokenizer,
                 const std::vector<runtime::TokenLogprobs>* logprobs) {
  json out{{"token_ids", r.ids}};
  if (tokenizer) out["text"] = r.text;
  out["finish_reason"] = r.finish_reason;
  out["seed"] = seed;
  if (logprobs) {
    auto token = [&](int32_t id) { return tokenizer ? json(tokenizer->decode({id}, false)) : json(nullptr); };
    json list = json::array();
    for (const runtime::TokenLogprobs& t : *logprobs) {
      json top = json::array();
      for (auto [id, lp] : t.top) top.push_back({{"id", id}, {"token", token(id)}, {"logprob", lp}});
      list.push_back({{"id", t.id}, {"token", token(t.id)}, {"logprob", t.logprob}, {"top_logprobs", top}});
    }
    out["logprobs"] = list;
  }
  return out;
}

void write_out(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (std::fflush(stdout) != 0) fail("writing to stdout failed: ", std::strerror(errno));
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void check_vocabulary(const std::vector<int32_t>& prompt, const models::DecoderModel& model) {
  for (int32_t id : prompt)
    WICK_CHECK(id < model.config().vocab_size, "generate: prompt token ", id, " is outside the vocabulary of ",
               model.config().vocab_size);
}

void run_generate(GenerateCliOptions& o) {
  int sources = int(o.prompt_given->count() > 0) + int(o.prompt_file_given->count() > 0) +
                int(o.prompt_ids_given->count() > 0) + int(o.prompts_given->count() > 0);
  if (sources != 1) usage_fail("generate: give one of --prompt, --prompt-file, --prompt-ids or --prompts");
  bool ids_in = o.prompt_ids_given->count() > 0, batch = o.prompts_given->count() > 0;
  if (ids_in && (o.chat || !o.system.empty()))
    usage_fail("generate: --prompt-ids is the whole prompt; --chat and --system need text");
  bool with_logprobs = o.logprobs_given->count() > 0;
  if (with_logprobs && !o.json && !batch) usage_fail("generate: --logprobs needs --json (or --prompts)");
  if (ids_in && o.prompt_ids.empty()) usage_fail("generate: the prompt is empty");
  // Read (and checked) before the model loads: a mistake in it should not wait for that.
  std::string text = ids_in || batch ? "" : prompt_text(o);

  models::LoadedDecoder loaded = models::load_decoder(o.model, o.runtime.inference_load_options(o.model));
  // Token ids in and out need no tokenizer; text needs one.
  const tok::Tokenizer* tokenizer = loaded.tokenizer ? &*loaded.tokenizer : nullptr;
  if (!ids_in) tokenizer = &loaded.require_tokenizer();
  resolve_sampling(o.sampling, loaded.generation, o.gen);
  o.gen.eos_ids = loaded.eos_ids;
  PromptEncoder encode(loaded, o);

  std::vector<std::vector<int32_t>> prompts;
  if (batch) {
    std::stringstream lines(read_text(o.prompts, "--prompts"));
    std::string line;
    for (int64_t number = 1; std::getline(lines, line); ++number) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) fail("--prompts line ", number, ": empty (every line is one prompt)");
      prompts.push_back(batch_prompt(encode, line, number));
    }
    WICK_CHECK(!prompts.empty(), "--prompts: ", o.prompts, " holds no prompts");
  } else {
    prompts.push_back(ids_in ? parse_ids(o.prompt_ids) : encode.text(text));
  }
  int64_t longest = 0;
  for (const auto& p : prompts) {
    check_vocabulary(p, loaded.model);
    longest = std::max<int64_t>(longest, int64_t(p.size()));
  }

  // Every sequence through the inference runtime (the path of chat and serve), its KV cache sized
  // for the longest prompt and the token limit.
  runtime::RunnerOptions ro;
  ro.max_batch = std::min<int64_t>(int64_t(prompts.size()), kMaxBatch);
  ro.max_context = longest + std::max<int64_t>(o.gen.max_tokens, 1);
  std::optional<lora::Adapter> adapter;
  if (!o.adapter.empty()) {
    adapter = lora::Adapter::load(o.adapter, loaded.model);
    ro.max_loras = 1;
    ro.max_lora_rank = adapter->config().r;
  }
  runtime::DecoderRunner runner(loaded.model, ro);
  int adapter_slot = adapter ? runner.adapters().load("adapter", adapter->deltas()) : -1;

  GenerationReport report(!batch && isatty(fileno(stderr)));
  std::vector<runtime::GenerationJob> jobs(prompts.size());
  std::vector<std::vector<runtime::TokenLogprobs>> logprobs(prompts.size());
  int64_t prompt_tokens = 0, generated = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    runtime::GenerationJob& job = jobs[i];
    job.prompt = prompts[i];
    job.options = o.gen;
    job.options.sampling.seed = o.gen.sampling.seed + i;  // each prompt of a batch has its own draw
    job.adapter_slot = adapter_slot;
    job.top_logprobs = o.logprobs;
    if (with_logprobs) job.logprobs = &logprobs[i];
    prompt_tokens += int64_t(job.prompt.size());
  }
  bool stream = !o.json && !batch && tokenizer;
  jobs[0].on_prefill = [&](int64_t done, int64_t total) { report.prefill(done, total); };
  for (auto& job : jobs)
    job.on_token = [&](const models::TokenEvent& e) {
      if (e.id >= 0) report.token();
      if (stream && !e.text.empty()) write_out(e.text);
    };
  report.start();
  std::vector<models::GenerateResult> results = runtime::generate(runner, tokenizer, jobs);
  for (size_t i = 0; i < results.size(); ++i) {
    generated += int64_t(results[i].ids.size());
    if (o.json || batch) {
      json out =
          result_json(results[i], jobs[i].options.sampling.seed, tokenizer, with_logprobs ? &logprobs[i] : nullptr);
      if (batch) {
        json row{{"index", i}};
        row.update(out);
        out = std::move(row);
      }
      write_out(dump(out) + "\n");
    } else if (!tokenizer) {
      std::string ids;
      for (int32_t id : results[i].ids) ids += (ids.empty() ? "" : ",") + std::to_string(id);
      write_out(ids + "\n");
    } else {
      write_out("\n");
    }
  }
  std::fprintf(stderr, "%s\n", report.summary(prompt_tokens, generated).c_str());
}

}  // namespace

void add_runtime_options(CLI::App* cmd, RuntimeOptions& runtime) {
  cmd->add_option("--device", runtime.device, "cpu, cuda or cuda:N (auto: cuda when present)");
  cmd->add_option("--dtype", runtime.dtype, "f32, bf16 or f16 (auto: bf16 on CUDA, f32 on the CPU)");
  cmd->add_option("--threads", runtime.threads,
                  "CPU threads for every kernel (0: WICK_NUM_THREADS when set, else every core)")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  cmd->add_option("--matmul-precision", runtime.matmul_precision,
                  "CPU: f32 matrix products in f32, or with bf16 operands and f32 sums (bf16: products of 8 rows "
                  "or more; twice as fast where the CPU has AVX512-BF16; as PyTorch's float32 matmul precision)")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->capture_default_str();
  cmd->add_flag("--int8-activations", runtime.int8_activations,
                "generate, chat, bench, serve on the CPU with a GGUF: multiply decode steps through 8-bit "
                "activations for every block type (the default does so for the K-quants, Q2_K ... Q6_K, as "
                "llama.cpp does: faster; logits move slightly, so greedy answers can change)");
  cmd->add_flag("--f32-activations", runtime.f32_activations,
                "generate, chat, bench, serve on the CPU with a GGUF: multiply decode steps in f32 for every "
                "block type, K-quants included (exact products, slower)");
  cmd->add_flag("--expand-weights", runtime.expand_weights,
                "generate, chat, bench, serve with a GGUF: expand its quantized blocks to the compute dtype at "
                "load instead of keeping them (more memory; long prompts a little faster)");
}

void add_quantized_base_option(CLI::App* cmd, RuntimeOptions& runtime) {
  cmd->add_option("--quantized-base", runtime.quantized_base,
                  "keep the linear layers quantized in memory, dequantized on the fly (QLoRA-style): 'file' keeps a "
                  "GGUF's own blocks; q4_0, q4_1, q5_0, q5_1 or q8_0 quantizes any base at load")
      ->check(CLI::IsMember({"file", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0"}));
}

void register_generate(CLI::App& app) {
  auto o = std::make_shared<GenerateCliOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text with a decoder model");
  cmd->add_option("-m,--model", o->model, "model folder, .gguf file or ORG/NAME")->required();
  o->prompt_given = cmd->add_option("-p,--prompt", o->prompt, "the prompt text ('-': read it from stdin)");
  o->prompt_file_given = cmd->add_option("--prompt-file", o->prompt_file, "read the prompt text from this file");
  o->prompt_ids_given = cmd->add_option("--prompt-ids", o->prompt_ids,
                                        "the prompt as comma-separated token ids (works without a tokenizer: ids out)");
  o->prompts_given = cmd->add_option("--prompts", o->prompts,
                                     "a JSONL file ('-': stdin) of prompts (strings, {\"prompt\"} or {\"messages\"}), "
                                     "generated as a batch: one JSON result per line");
  cmd->add_option("--system", o->system, "a system message (the prompt becomes a chat turn, as with --chat)");
  cmd->add_option("--adapter", o->adapter, "a PEFT LoRA adapter folder");
  o->sampling = add_sampling_options(cmd, o->gen);
  cmd->add_flag("--chat", o->chat, "wrap the prompt as a user turn of the model's chat template");
  cmd->add_flag("--json", o->json, "print {\"token_ids\", \"text\", \"finish_reason\", \"seed\"} instead of streaming");
  o->logprobs_given = cmd->add_option("--logprobs", o->logprobs,
                  "with --json: each token's log-probability and this many most likely alternatives")
      ->check(number_in(0, 100))
                          ->default_str("");
  add_runtime_options(cmd, o->runtime);
  add_quantized_base_option(cmd, o->runtime);
  cmd->callback([o] { run_generate(*o); });
}

}  // namespace wick::cli
