// The HTTP server: routing, bearer-key auth, OpenAI-style errors, /health, /metrics, the model
// list, run-time adapters, embeddings, and the graceful stop.
#include <algorithm>
#include <cstring>
#include <ctime>
#include <thread>

#include "wick/serve/http/server_impl.h"
#include "wick/serve/openai_response.h"

namespace wick::serve {

using json = nlohmann::json;

namespace {

// A label for /metrics that does not grow with what clients send.
std::string endpoint_label(const httplib::Request& req) {
  static const char* kKnown[] = {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models",
                                 "/v1/adapters",         "/health",         "/metrics"};
  for (const char* path : kKnown)
    if (req.path == path) return path;
  if (req.path.rfind("/v1/adapters/", 0) == 0) return "/v1/adapters/{name}";
  if (req.path.rfind("/v1/models/", 0) == 0) return "/v1/models/{id}";
  return "other";
}

// Compares in time independent of where the strings differ.
bool same_secret(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

json model_entry(const std::string& id, const std::string& owner, int64_t created) {
  return {{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", owner}};
}

const int64_t kStartTime = int64_t(std::time(nullptr));

}  // namespace

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, const ApiError& error) { send_json(res, error.status(), error.body()); }

ApiError api_error(const EngineError& e) {
  switch (e.kind()) {
    case EngineError::Kind::kInvalidRequest:
      return ApiError(400, e.what(), "", "invalid_value");
    case EngineError::Kind::kNotFound:
      return ApiError(404, e.what(), "model", "model_not_found");
    case EngineError::Kind::kConflict:
      return ApiError(409, e.what(), "", "conflict");
    case EngineError::Kind::kOverloaded:
      return ApiError(429, e.what(), "", "queue_full");
    case EngineError::Kind::kUnavailable:
      return ApiError(503, e.what(), "", "shutting_down");
  }
  return ApiError(500, e.what());
}

std::string Server::Impl::adapter_for(const std::string& model) const {
  std::vector<std::string> adapters = models.engine->adapters();
  auto loaded = [&](const std::string& name) {
    return std::find(adapters.begin(), adapters.end(), name) != adapters.end();
  };
  if (model == models.model_id) return "";
  std::string prefix = models.model_id + ":";
  if (model.rfind(prefix, 0) == 0 && loaded(model.substr(prefix.size()))) return model.substr(prefix.size());
  if (loaded(model)) return model;
  if (models.embedder && model == models.embedding_model_id)
    throw ApiError(400, "'" + model + "' is an embedding model: use /v1/embeddings", "model", "wrong_model_type");
  throw ApiError(404, "The model '" + model + "' does not exist (GET /v1/models lists them)", "model",
                 "model_not_found");
}

std::shared_ptr<void> Server::Impl::track_generation() {
  {
    std::lock_guard<std::mutex> lock(state_mutex);
    ++active_generations;
  }
  return std::shared_ptr<void>(nullptr, [this](void*) {
    {
      std::lock_guard<std::mutex> lock(state_mutex);
      --active_generations;
    }
    state_changed.notify_all();
  });
}

void Server::Impl::check_access(const httplib::Request& req) const {
  if (!options.api_key.empty()) {
    std::string header = req.get_header_value("Authorization");
    const std::string scheme = "Bearer ";
    if (header.rfind(scheme, 0) != 0 || !same_secret(header.substr(scheme.size()), options.api_key))
      throw ApiError(401, header.empty() ? "missing API key: send 'Authorization: Bearer KEY'" : "invalid API key", "",
                     "invalid_api_key");
  }
  if (draining) throw ApiError(503, "the server is shutting down", "", "shutting_down");
}

httplib::Server::Handler Server::Impl::guarded(httplib::Server::Handler handler) {
  return [this, handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
    check_access(req);
    handler(req, res);
  };
}

void Server::Impl::add_routes() {
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (draining) return send_json(res, 503, {{"status", "shutting down"}});
    send_json(res, 200, {{"status", "ok"}});
  });

  http.Get("/metrics", guarded([this](const httplib::Request&, httplib::Response& res) {
             int64_t active;
             {
               std::lock_guard<std::mutex> lock(state_mutex);
               active = active_generations;
             }
             res.set_content(metrics.render(models.engine->stats(), active), "text/plain; version=0.0.4");
           }));

  auto list_models = [this] {
    json data = json::array({model_entry(models.model_id, "wick", kStartTime)});
    for (const std::string& name : models.engine->adapters()) {
      data.push_back(model_entry(models.model_id + ":" + name, models.model_id, kStartTime));
      data.push_back(model_entry(name, models.model_id, kStartTime));
    }
    if (models.embedder) data.push_back(model_entry(models.embedding_model_id, "wick", kStartTime));
    return data;
  };
  http.Get("/v1/models", guarded([list_models](const httplib::Request&, httplib::Response& res) {
             send_json(res, 200, {{"object", "list"}, {"data", list_models()}});
           }));
  http.Get(R"(/v1/models/(.+))", guarded([list_models](const httplib::Request& req, httplib::Response& res) {
             for (const json& m : list_models())
               if (m["id"] == req.matches[1].str()) return send_json(res, 200, m);
             send_error(res, ApiError(404, "The model '" + req.matches[1].str() + "' does not exist", "model",
                                      "model_not_found"));
           }));

  http.Post("/v1/adapters", guarded([this](const httplib::Request& req, httplib::Response& res) {
              if (!options.allow_adapter_loading)
                return send_error(
                    res, ApiError(403, "adapter loading is off: start wick serve with --allow-adapter-loading"));
              AdapterLoadRequest r = parse_adapter_request(parse_json_object(req.body));
              if (r.name == models.model_id || (models.embedder && r.name == models.embedding_model_id))
                throw ApiError(409, "'" + r.name + "' is the name of a served model", "name", "conflict");
              try {
                models.engine->load_adapter(r.name, r.path);
              } catch (const EngineError&) {
                throw;
              } catch (const Error& e) {
                throw ApiError(400, e.what(), "path", "invalid_adapter");
              }
              send_json(res, 201, model_entry(r.name, models.model_id, int64_t(std::time(nullptr))));
            }));
  http.Delete(R"(/v1/adapters/([^/]+))", guarded([this](const httplib::Request& req, httplib::Response& res) {
                if (!options.allow_adapter_loading)
                  return send_error(
                      res, ApiError(403, "adapter loading is off: start wick serve with --allow-adapter-loading"));
                std::string name = req.matches[1].str();
                models.engine->unload_adapter(name);
                send_json(res, 200, {{"id", name}, {"object", "model"}, {"deleted", true}});
              }));

  http.Post("/v1/embeddings", guarded([this](const httplib::Request& req, httplib::Response& res) {
              EmbeddingRequest r = parse_embedding_request(parse_json_object(req.body));
              if (!models.embedder)
                throw ApiError(404, "no embedding model is served (start wick serve with --embedding-model)", "model",
                               "model_not_found");
              if (r.model != models.embedding_model_id)
                throw ApiError(404,
                               "The model '" + r.model + "' is not an embedding model served here (serving '" +
                                   models.embedding_model_id + "')",
                               "model", "model_not_found");
              if (r.dimensions && *r.dimensions != models.embedder->dimension())
                throw ApiError(
                    400, "'dimensions' must be " + std::to_string(models.embedder->dimension()) + " for this model",
                    "dimensions", "invalid_value");
              Embedder::Result out;
              try {
                out = models.embedder->embed(r.inputs);
              } catch (const Error& e) {
                throw ApiError(400, e.what(), "input", "invalid_value");
              }
              metrics.count_embedding_tokens(out.tokens);
              json data = json::array();
              for (size_t i = 0; i < out.vectors.size(); ++i) {
                json vector;
                if (r.base64) {
                  std::string bytes(reinterpret_cast<const char*>(out.vectors[i].data()),
                                    out.vectors[i].size() * sizeof(float));
                  vector = base64_encode(bytes);
                } else {
                  vector = out.vectors[i];
                }
                data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", std::move(vector)}});
              }
              send_json(res, 200,
                        {{"object", "list"},
                         {"data", std::move(data)},
                         {"model", r.model},
                         {"usage", {{"prompt_tokens", out.tokens}, {"total_tokens", out.tokens}}}});
            }));

  add_generation_routes();
}

Server::Server(ServerOptions options, ServedModels models)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(models))) {
  Impl& s = *impl_;
  WICK_CHECK(s.models.engine && s.models.tokenizer, "serve: a server needs an engine and a tokenizer");
  WICK_CHECK(s.options.http_threads >= 1, "serve: --http-threads must be at least 1");
  WICK_CHECK(s.options.max_body_bytes >= 1024, "serve: --max-body-bytes must be at least 1024");
  if (s.models.chat_template) s.chat_template.emplace(s.models.chat_template->chat_template);
}

Server::~Server() = default;

void Server::shutdown() {
  {
    std::lock_guard<std::mutex> lock(impl_->state_mutex);
    impl_->shutdown_requested = true;
  }
  impl_->state_changed.notify_all();
}

void Server::run(const std::function<void(int port)>& on_listening) {
  Impl& s = *impl_;
  httplib::Server& http = s.http;
  int threads = s.options.http_threads;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  http.set_payload_max_length(s.options.max_body_bytes);
  http.set_keep_alive_max_count(1000);

  // Handlers throw ApiError / EngineError; anything else is a bug or a failure of the model.
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
    try {
      std::rethrow_exception(error);
    } catch (const ApiError& e) {
      send_error(res, e);
    } catch (const EngineError& e) {
      send_error(res, api_error(e));
    } catch (const std::exception& e) {
      send_error(res, ApiError(500, std::string("internal error: ") + e.what()));
    }
  });
  // Answers httplib gives on its own (no route, body too large, unreadable request) as API errors.
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty() || res.content_provider_) return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == 404)
      send_error(res, ApiError(404, "no route " + req.method + " " + req.path, "", "unknown_route"));
    else if (res.status == 413)
      send_error(res, ApiError(413, "the request body is too large", "", "body_too_large"));
    else
      send_error(res, ApiError(res.status, "the request could not be read (HTTP " + std::to_string(res.status) + ")"));
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_logger([&s](const httplib::Request& req, const httplib::Response& res) {
    s.metrics.count_request(endpoint_label(req), res.status);
  });
  s.add_routes();

  int port = s.options.port;
  if (port == 0) {
    port = http.bind_to_any_port(s.options.host);
    WICK_CHECK(port > 0, "serve: cannot listen on ", s.options.host, " (any port)");
  } else {
    WICK_CHECK(http.bind_to_port(s.options.host, port), "serve: cannot listen on ", s.options.host, ":", port,
               " (in use, or not an address of this machine)");
  }
  // The stop sequence runs beside the listener: it must wait for streams that the listener's
  // threads are still writing.
  std::thread stopper([&s] {
    std::unique_lock<std::mutex> lock(s.state_mutex);
    s.state_changed.wait(lock, [&] { return s.shutdown_requested; });
    s.draining = true;
    lock.unlock();
    s.models.engine->shutdown(s.options.shutdown_grace);
    lock.lock();
    // Streams write their last chunks once their sequences ended; a client that stopped reading
    // cannot hold the stop for longer than the socket's write timeout.
    s.state_changed.wait_for(lock, std::chrono::seconds(10), [&] { return s.active_generations == 0; });
    lock.unlock();
    s.http.stop();
  });
  if (on_listening) on_listening(port);
  bool listened = http.listen_after_bind();
  shutdown();
  stopper.join();
  WICK_CHECK(listened || s.draining, "serve: the listener on ", s.options.host, ":", port, " failed");
}

}  // namespace wick::serve
