// `wick serve`: an OpenAI-compatible HTTP server over one decoder (chat completions, completions),
// its LoRA adapters (chosen per request by `model`), and optionally an embedding model. SIGINT or
// SIGTERM stops it gracefully: no new requests, in-flight ones finish (or are cancelled after
// --shutdown-grace seconds), exit 0.
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "wick/cli/commands.h"
#include "wick/cli/runtime_options.h"
#include "wick/models/loading.h"
#include "wick/models/sampling_defaults.h"
#include "wick/serve/openai_request.h"
#include "wick/serve/batching_engine.h"
#include "wick/serve/server.h"

namespace wick::cli {

namespace {

struct ServeOptions {
  std::string model, embedding_model, served_name, api_key_file;
  std::vector<std::string> adapters;  // NAME=DIR or DIR
  RuntimeOptions runtime;
  serve::ServerOptions server;
  serve::EngineOptions engine;
  serve::BatchingOptions batching;
  double shutdown_grace_s = 30;
};

// NAME=DIR, or DIR named after its last folder.
std::pair<std::string, std::string> adapter_spec(const std::string& spec) {
  size_t eq = spec.find('=');
  std::string name, dir;
  if (eq != std::string::npos && eq > 0) {
    name = spec.substr(0, eq);
    dir = spec.substr(eq + 1);
  } else {
    dir = spec;
    name = std::filesystem::path(spec).lexically_normal().filename().string();
    if (name.empty()) name = std::filesystem::path(spec).lexically_normal().parent_path().filename().string();
  }
  WICK_CHECK(!dir.empty(), "--adapter ", spec, ": expected NAME=DIR or DIR");
  try {
    serve::check_adapter_name(name, "name");
  } catch (const serve::ApiError& e) {
    fail("--adapter ", spec, ": the adapter's ", e.what());
  }
  return {name, dir};
}

// The id clients send as `model`: the file or folder name of a local model, else the Hub id.
std::string model_id(const std::string& spec) {
  std::filesystem::path p = std::filesystem::path(spec).lexically_normal();
  if (!std::filesystem::exists(p)) return spec;
  if (p.filename().empty()) p = p.parent_path();
  return p.extension() == ".gguf" ? p.stem().string() : p.filename().string();
}

// SIGINT/SIGTERM only write a byte here; a watcher thread turns it into Server::shutdown().
int g_signal_pipe[2] = {-1, -1};

void on_stop_signal(int) {
  char byte = 1;
  ssize_t ignored = write(g_signal_pipe[1], &byte, 1);
  (void)ignored;
}

void run_serve(ServeOptions o) {
  WICK_CHECK(o.server.port >= 0 && o.server.port <= 65535, "--port must be in [0, 65535], got ", o.server.port);
  WICK_CHECK(o.shutdown_grace_s >= 0, "--shutdown-grace must be >= 0 seconds");
  o.server.shutdown_grace = std::chrono::milliseconds(int64_t(o.shutdown_grace_s * 1000));
  if (!o.api_key_file.empty()) {
    WICK_CHECK(o.server.api_key.empty(), "give --api-key or --api-key-file, not both");
    std::ifstream in(o.api_key_file);
    WICK_CHECK(in.good(), "--api-key-file: cannot read ", o.api_key_file);
    std::getline(in, o.server.api_key);
    WICK_CHECK(!o.server.api_key.empty(), "--api-key-file: ", o.api_key_file, " holds no key on its first line");
  }

  models::LoadedDecoder loaded = models::load_decoder(o.model, o.runtime.inference_load_options(o.model));
  serve::ServedModels models;
  models.model_id = o.served_name.empty() ? model_id(o.model) : o.served_name;
  models.tokenizer = &loaded.require_tokenizer();
  models.chat_template = loaded.chat_template;
  if (!loaded.chat_template)
    std::fprintf(stderr, "wick serve: no chat template (%s): /v1/chat/completions answers 400\n",
                 loaded.chat_template_error.c_str());
  models.sampling_defaults = models::sampling_defaults(loaded.generation);

  if (o.engine.max_batch == 0) o.engine.max_batch = loaded.model.device().is_cuda() ? 64 : 16;
  serve::BatchingEngine engine(loaded.model, loaded.eos_ids, o.engine, o.batching);
  models.engine = &engine;
  for (const std::string& spec : o.adapters) {
    auto [name, dir] = adapter_spec(spec);
    WICK_CHECK(name != models.model_id, "--adapter ", spec, ": the name is the base model's id");
    engine.load_adapter(name, dir);
  }

  std::optional<serve::Embedder> embedder;
  if (!o.embedding_model.empty()) {
    RuntimeOptions rt = o.runtime;
    if (rt.dtype == "auto") rt.dtype = "f32";  // as `wick embed`
    rt.quantized_base.clear();                 // --quantized-base is the decoder's
    rt.int8_activations = false;               // and so are --int8-activations
    rt.f32_activations = false;                // and --f32-activations
    rt.expand_weights = false;                 // and --expand-weights
    embedder.emplace(models::load_encoder(o.embedding_model, rt.load_options()));
    models.embedder = &*embedder;
    models.embedding_model_id = model_id(o.embedding_model);
    WICK_CHECK(models.embedding_model_id != models.model_id, "--embedding-model has the base model's id");
  }

  serve::EngineStats st = engine.stats();
  std::fprintf(stderr,
               "wick serve: %s on %s, context %lld tokens, %zu adapter(s); continuous batching of up to %lld "
               "sequences over %lld KV blocks of %lld positions\n",
               models.model_id.c_str(), loaded.model.device().str().c_str(), (long long)engine.context_length(),
               engine.adapters().size(), (long long)o.engine.max_batch, (long long)st.kv_blocks_total,
               (long long)o.batching.block_size);

  serve::Server server(o.server, models);
  WICK_CHECK(pipe(g_signal_pipe) == 0, "serve: cannot create the signal pipe");
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  std::atomic<bool> served{false};
  std::thread watcher([&] {
    pollfd fd{g_signal_pipe[0], POLLIN, 0};
    while (!served) {
      if (poll(&fd, 1, 200) > 0) {
        std::fprintf(stderr, "wick serve: stopping (in-flight requests may finish within %.0f s)\n",
                     o.shutdown_grace_s);
        server.shutdown();
        return;
      }
    }
  });
  std::exception_ptr failure;
  try {
    server.run([&](int port) {
      std::fprintf(stderr, "wick serve: listening on http://%s:%d\n", o.server.host.c_str(), port);
    });
  } catch (...) {
    failure = std::current_exception();
  }
  served = true;
  watcher.join();
  if (failure) std::rethrow_exception(failure);
  std::fprintf(stderr, "wick serve: stopped\n");
}

}  // namespace

void register_serve(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd =
      app.add_subcommand("serve", "OpenAI-compatible HTTP server (chat, completions, embeddings, adapters)");
  cmd->add_option("-m,--model", o->model, "decoder: model folder, .gguf file or ORG/NAME")->required();
  cmd->add_option("--embedding-model", o->embedding_model, "also serve /v1/embeddings with this model folder");
  cmd->add_option("--adapter", o->adapters,
                  "a PEFT LoRA adapter as NAME=DIR or DIR (repeatable); requests pick it by "
                  "model \"NAME\" or \"MODEL:NAME\"");
  cmd->add_option("--served-model-name", o->served_name, "the base model's id (default: its file or folder name)");
  cmd->add_option("--host", o->server.host, "address to listen on")->capture_default_str();
  cmd->add_option("--port", o->server.port, "port to listen on (0: any free port)")->capture_default_str();
  cmd->add_option("--api-key", o->server.api_key, "require 'Authorization: Bearer KEY' (all but /health)");
  cmd->add_option("--api-key-file", o->api_key_file, "read the API key from the first line of this file");
  cmd->add_option("--ctx", o->engine.context_length, "context length: prompt + completion (0: the model's)")
      ->capture_default_str();
  cmd->add_option("--max-queue", o->engine.max_queue, "requests waiting beyond the running ones; more get 429")
      ->capture_default_str();
  o->engine.max_batch = 0;
  cmd->add_option("--max-batch", o->engine.max_batch, "sequences decoded together (0: 64 on CUDA, 16 on the CPU)")
      ->capture_default_str();
  cmd->add_option("--kv-cache-mb", o->batching.kv_cache_mb,
                  "memory of the paged KV cache (0: 40% of free GPU memory, 1024 on the CPU)")
      ->capture_default_str();
  cmd->add_option("--max-lora-rank", o->batching.max_lora_rank, "the largest adapter rank the resident slots hold")
      ->capture_default_str();
  cmd->add_option("--max-step-tokens", o->batching.max_step_tokens,
                  "tokens of one batching step, decodes plus prefill chunks (0: 2048 on CUDA, 512 on the CPU)")
      ->capture_default_str();
  cmd->add_flag("!--no-cuda-graphs", o->batching.cuda_graphs, "run every step eagerly instead of replaying CUDA graphs");
  cmd->add_option("--max-loras", o->engine.max_loras, "adapters loaded at once")->capture_default_str();
  cmd->add_flag("--allow-adapter-loading", o->server.allow_adapter_loading,
                "enable POST /v1/adapters {name, path} and DELETE /v1/adapters/NAME");
  cmd->add_option("--http-threads", o->server.http_threads, "connections served at once (a stream holds one)")
      ->capture_default_str();
  cmd->add_option("--max-body-bytes", o->server.max_body_bytes, "larger request bodies get 413")->capture_default_str();
  cmd->add_option("--shutdown-grace", o->shutdown_grace_s,
                  "seconds in-flight requests may take to finish after SIGINT/SIGTERM")
      ->capture_default_str();
  add_runtime_options(cmd, o->runtime);
  add_quantized_base_option(cmd, o->runtime);
  cmd->callback([o] { run_serve(*o); });
}

}  // namespace wick::cli
