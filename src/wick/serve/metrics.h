// The server's counters and latency histograms, written in Prometheus' text format for
// GET /metrics together with the engine's gauges (queue length, running batch, KV blocks).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "wick/serve/engine.h"

namespace wick::serve {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value, int64_t count = 1);
  // The `name`_bucket / _sum / _count lines.
  void write(std::string& out, const std::string& name) const;

 private:
  std::vector<double> bounds_;
  std::vector<int64_t> counts_;  // per bucket (not cumulative); the last is +Inf
  double sum_ = 0;
  int64_t total_ = 0;
};

class Metrics {
 public:
  Metrics();
  void count_request(const std::string& endpoint, int status);
  void observe_time_to_first_token(double seconds);
  // `tokens` that arrived together `seconds` after the previous ones: each gets seconds / tokens.
  void observe_inter_token(double seconds, int64_t tokens);
  void count_embedding_tokens(int64_t tokens);
  // Prometheus text exposition, engine gauges included.
  std::string render(const EngineStats& engine, int64_t active_streams) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  Histogram time_to_first_token_, time_per_output_token_;
  int64_t embedding_tokens_ = 0;
};

}  // namespace wick::serve
