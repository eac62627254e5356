// The batching engine of `wick serve`: one thread drives runtime::Scheduler (continuous batching
// over the paged KV cache, CUDA-graph decode steps, per-row LoRA adapters in one batch), feeding
// each sequence's tokens to its SequenceHandle. Requests are admitted at every step and leave as
// soon as they finish or their client cancels; adapters load into device-resident slots at run time.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "wick/models/decoder.h"
#include "wick/runtime/scheduler.h"
#include "wick/serve/engine.h"

namespace wick::serve {

// How the batching engine sizes itself beyond EngineOptions.
struct BatchingOptions {
  int64_t block_size = 16;       // KV positions per block
  int64_t kv_cache_mb = 0;       // memory of the KV pool; 0: 40% of free GPU memory, or 1 GiB on the CPU
  int64_t max_lora_rank = 16;    // the largest adapter rank a slot holds
  int64_t max_step_tokens = 0;   // tokens of one step (decodes + prefill chunks); 0: 2048 on CUDA, 512 on the CPU
  bool cuda_graphs = true;       // replay decode steps as CUDA graphs
};

class BatchingEngine : public Engine {
 public:
  // `model` must outlive the engine; its projections are packed for the runner (the model keeps
  // views of them). Bad options throw wick::Error naming them.
  BatchingEngine(models::DecoderModel& model, std::vector<int32_t> eos_ids, EngineOptions options,
                 BatchingOptions batching = {});
  ~BatchingEngine() override;

  std::shared_ptr<SequenceHandle> submit(GenerationRequest request) override;
  int64_t context_length() const override { return context_length_; }
  int64_t vocab_size() const override { return model_.config().vocab_size; }
  std::vector<int32_t> eos_ids() const override { return eos_ids_; }
  std::vector<std::string> adapters() const override;
  void load_adapter(const std::string& name, const std::string& dir) override;
  void unload_adapter(const std::string& name) override;
  EngineStats stats() const override;
  void shutdown(std::chrono::milliseconds grace) override;

 private:
  struct Pending {
    GenerationRequest request;
    std::shared_ptr<SequenceHandle> handle;
  };
  struct Live;  // a running sequence's bookkeeping (batching_engine.cpp)
  void loop();
  // Hands a request to the scheduler; null when it failed at once (its handle is finished).
  std::shared_ptr<Live> start(Pending pending);
  // Runs `task` on the engine thread (which owns the device) and waits for it.
  void run_on_engine(std::function<void()> task);
  void release_slot(int slot);

  models::DecoderModel& model_;
  const std::vector<int32_t> eos_ids_;
  const EngineOptions options_;
  const int64_t context_length_;
  std::unique_ptr<runtime::DecoderRunner> runner_;
  std::unique_ptr<runtime::Scheduler> scheduler_;

  mutable std::mutex mutex_;  // guards the members below
  std::condition_variable wake_, idle_;
  std::deque<Pending> pending_;
  std::deque<std::function<void()>> tasks_;
  bool accepting_ = true, stop_ = false, busy_ = false;
  EngineStats stats_;
  std::map<std::string, int> adapter_slots_;  // loaded adapters by name
  std::map<int, int64_t> slot_users_;          // sequences using each slot (engine thread only)
  std::map<int, bool> slot_draining_;          // unloaded while in use: freed by its last user

  std::mutex shutdown_mutex_;
  std::thread thread_;
};

}  // namespace wick::serve
