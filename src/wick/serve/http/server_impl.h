// The HTTP server's state, shared by its route files (server.cpp: routing, auth, errors, models,
// adapters, embeddings, metrics, shutdown; generation.cpp: chat completions and completions).
#pragma once

#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "wick/serve/metrics.h"
#include "wick/serve/openai_request.h"
#include "wick/serve/server.h"

namespace wick::serve {

struct Server::Impl {
  Impl(ServerOptions o, ServedModels m) : options(std::move(o)), models(std::move(m)) {}

  ServerOptions options;
  ServedModels models;
  std::optional<chat::ChatTemplate> chat_template;
  httplib::Server http;
  Metrics metrics;

  std::atomic<bool> draining{false};
  std::mutex state_mutex;
  std::condition_variable state_changed;
  bool shutdown_requested = false;
  int64_t active_generations = 0;  // chat/completions requests not yet fully answered

  // Throws ApiError 401 without the API key, 503 while shutting down.
  void check_access(const httplib::Request& req) const;
  httplib::Server::Handler guarded(httplib::Server::Handler handler);
  void add_routes();
  void add_generation_routes();
  // The adapter a request's `model` names ("" for the base model); ApiError 404 when none.
  std::string adapter_for(const std::string& model) const;
  // Counts a chat/completions request as active until the returned token is destroyed.
  std::shared_ptr<void> track_generation();
};

// Writes `error` as the response.
void send_error(httplib::Response& res, const ApiError& error);
void send_json(httplib::Response& res, int status, const nlohmann::json& body);
// An engine's EngineError as the API error it maps to.
ApiError api_error(const EngineError& error);

}  // namespace wick::serve
