// Prometheus text exposition of the server's metrics.
#include "wick/serve/metrics.h"

#include <sstream>

namespace wick::serve {

namespace {

std::string number(double v) {
  std::ostringstream os;
  os.precision(10);
  os << v;
  return os.str();
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void sample(std::string& out, const std::string& name, double value) { out += name + " " + number(value) + "\n"; }

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value, int64_t count) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  counts_[i] += count;
  sum_ += value * double(count);
  total_ += count;
}

void Histogram::write(std::string& out, const std::string& name) const {
  int64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    std::string le = i < bounds_.size() ? number(bounds_[i]) : "+Inf";
    out += name + "_bucket{le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  sample(out, name + "_sum", sum_);
  out += name + "_count " + std::to_string(total_) + "\n";
}

Metrics::Metrics()
    : time_to_first_token_({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      time_per_output_token_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}) {}

void Metrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{endpoint, status}];
}

void Metrics::observe_time_to_first_token(double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  time_to_first_token_.observe(seconds);
}

void Metrics::observe_inter_token(double seconds, int64_t tokens) {
  if (tokens <= 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  time_per_output_token_.observe(seconds / double(tokens), tokens);
}

void Metrics::count_embedding_tokens(int64_t tokens) {
  std::lock_guard<std::mutex> lock(mutex_);
  embedding_tokens_ += tokens;
}

std::string Metrics::render(const EngineStats& e, int64_t active_streams) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  header(out, "wick_http_requests_total", "counter", "HTTP requests answered, by endpoint and status code.");
  for (const auto& [key, count] : requests_)
    out += "wick_http_requests_total{endpoint=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
           std::to_string(count) + "\n";
  header(out, "wick_requests_admitted_total", "counter", "Sequences admitted by the engine.");
  sample(out, "wick_requests_admitted_total", double(e.requests_submitted));
  header(out, "wick_requests_finished_total", "counter", "Sequences the engine finished (any reason).");
  sample(out, "wick_requests_finished_total", double(e.requests_finished));
  header(out, "wick_prompt_tokens_total", "counter", "Prompt tokens admitted.");
  sample(out, "wick_prompt_tokens_total", double(e.prompt_tokens));
  header(out, "wick_generation_tokens_total", "counter", "Tokens generated.");
  sample(out, "wick_generation_tokens_total", double(e.generated_tokens));
  header(out, "wick_embedding_tokens_total", "counter", "Tokens embedded.");
  sample(out, "wick_embedding_tokens_total", double(embedding_tokens_));
  header(out, "wick_queue_length", "gauge", "Admitted sequences waiting to run.");
  sample(out, "wick_queue_length", double(e.queue_length));
  header(out, "wick_running_batch_size", "gauge", "Sequences in the running batch.");
  sample(out, "wick_running_batch_size", double(e.running));
  header(out, "wick_kv_blocks_in_use", "gauge", "KV cache blocks held by sequences.");
  sample(out, "wick_kv_blocks_in_use", double(e.kv_blocks_used));
  header(out, "wick_kv_blocks_total", "gauge", "KV cache blocks available.");
  sample(out, "wick_kv_blocks_total", double(e.kv_blocks_total));
  header(out, "wick_active_generation_requests", "gauge", "HTTP generation requests in progress.");
  sample(out, "wick_active_generation_requests", double(active_streams));
  header(out, "wick_time_to_first_token_seconds", "histogram", "From a request's arrival to its first token.");
  time_to_first_token_.write(out, "wick_time_to_first_token_seconds");
  header(out, "wick_time_per_output_token_seconds", "histogram", "Time between a sequence's successive tokens.");
  time_per_output_token_.write(out, "wick_time_per_output_token_seconds");
  return out;
}

}  // namespace wick::serve
