// The OpenAI-compatible HTTP server of `wick serve` (cpp-httplib): chat completions and completions
// (with server-sent-event streaming), embeddings, the model list, run-time adapter loading,
// /health and /metrics, bearer-key auth, and a graceful stop.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "wick/chat/template.h"
#include "wick/models/sampler.h"
#include "wick/serve/embedder.h"
#include "wick/serve/engine.h"
#include "wick/tokenizer/tokenizer.h"

namespace wick::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                     // 0: any free port (on_listening says which)
  std::string api_key;                 // non-empty: every endpoint but /health needs "Authorization: Bearer KEY"
  bool allow_adapter_loading = false;  // POST /v1/adapters and DELETE /v1/adapters/NAME (else 403)
  size_t max_body_bytes = 16u << 20;   // larger request bodies get 413
  int http_threads = 128;              // concurrent connections served (each stream holds one)
  std::chrono::milliseconds shutdown_grace{30000};  // in-flight work may finish within it, then is cancelled
};

// What the server serves; the caller owns all of it and keeps it alive while the server runs.
struct ServedModels {
  std::string model_id;  // the base model's id in /v1/models; adapters are "model_id:NAME" or "NAME"
  Engine* engine = nullptr;
  const tok::Tokenizer* tokenizer = nullptr;
  std::optional<chat::ChatTemplateConfig> chat_template;  // none: chat completions answer 400
  models::SamplingOptions sampling_defaults;             // for fields a request leaves out
  std::string embedding_model_id;                        // with embedder
  Embedder* embedder = nullptr;                          // none: /v1/embeddings answers 404
};

class Server {
 public:
  Server(ServerOptions options, ServedModels models);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds (throws wick::Error when it cannot), calls on_listening with the port, and serves until
  // shutdown(); returns once in-flight requests have finished or been cancelled.
  void run(const std::function<void(int port)>& on_listening = {});
  // Safe from any thread: new requests get 503, in-flight ones may finish within the grace
  // period, then run() returns.
  void shutdown();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace wick::serve
