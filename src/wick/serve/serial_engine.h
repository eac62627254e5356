// The first engine of `wick serve`: one worker thread runs admitted requests one at a time, in
// order, each through the decoder's forward over its own preallocated KV cache (prefill, then one
// token per step), with the request's LoRA adapter from a registry shared by all requests. Correct
// and simple; the batching engine replaces it where throughput matters.
//
// KV accounting: the running sequence's contiguous cache (grown by doubling as the answer gets
// longer) is reported in blocks of kKvBlockTokens positions (total: one context's worth), so
// /metrics shows it held while a request runs and released when it ends. EngineOptions::max_batch is validated and
// kept, but this engine runs one sequence at a time.
#pragma once

#include <atomic>
#include <deque>
#include <thread>

#include "wick/lora/registry.h"
#include "wick/models/decoder.h"
#include "wick/serve/engine.h"

namespace wick::serve {

class SerialEngine : public Engine {
 public:
  static constexpr int64_t kKvBlockTokens = 16;
  static constexpr int64_t kInitialDecodeRoom = 128;  // cache positions after the prompt, before growing

  // `model` is only read and must outlive the engine. Bad options throw wick::Error naming them.
  SerialEngine(const models::DecoderModel& model, std::vector<int32_t> eos_ids, EngineOptions options);
  ~SerialEngine() override;

  std::shared_ptr<SequenceHandle> submit(GenerationRequest request) override;
  int64_t context_length() const override { return context_length_; }
  int64_t vocab_size() const override;
  std::vector<int32_t> eos_ids() const override { return eos_ids_; }
  std::vector<std::string> adapters() const override;
  void load_adapter(const std::string& name, const std::string& dir) override;
  void unload_adapter(const std::string& name) override;
  EngineStats stats() const override;
  void shutdown(std::chrono::milliseconds grace) override;

  const EngineOptions& options() const { return options_; }

 private:
  struct Admitted {
    GenerationRequest request;
    std::shared_ptr<SequenceHandle> handle;
  };
  void worker_loop();
  void run(const Admitted& admitted);
  bool should_stop(const SequenceHandle& handle) const { return cancel_all_ || handle.cancel_requested(); }

  const models::DecoderModel& model_;
  const std::vector<int32_t> eos_ids_;
  const EngineOptions options_;
  const int64_t context_length_;

  mutable std::mutex mutex_;  // guards everything below up to adapters_mutex_
  std::condition_variable work_or_exit_, idle_;
  std::deque<Admitted> queue_;
  bool accepting_ = true, exit_when_empty_ = false, running_ = false;
  EngineStats stats_;

  mutable std::mutex adapters_mutex_;
  lora::AdapterRegistry adapters_;

  std::atomic<bool> cancel_all_{false};
  std::mutex shutdown_mutex_;
  std::thread worker_;
};

}  // namespace wick::serve
