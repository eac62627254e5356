// The serial engine: a bounded queue and one worker running each request to its end.
#include "wick/serve/serial_engine.h"

#include <algorithm>

#include "wick/core/autograd.h"
#include "wick/core/ops.h"
#include "wick/serve/sequence_sampler.h"

namespace wick::serve {

namespace {

int64_t blocks_for(int64_t positions) {
  return (positions + SerialEngine::kKvBlockTokens - 1) / SerialEngine::kKvBlockTokens;
}

// Appends room for positions up to `capacity` to every layer's keys and values (one copy; the
// cache doubles, so a long generation copies each position a bounded number of times).
void grow_cache(models::KVCache& cache, int64_t capacity) {
  for (std::vector<Tensor>* tensors : {&cache.keys, &cache.values})
    for (Tensor& t : *tensors) {
      Shape extra = t.shape();
      extra[2] = capacity - t.shape(2);
      t = concat({t, zeros(extra, t.dtype(), t.device())}, 2);
    }
}

}  // namespace

SerialEngine::SerialEngine(const models::DecoderModel& model, std::vector<int32_t> eos_ids, EngineOptions options)
    : model_(model),
      eos_ids_(std::move(eos_ids)),
      options_(options),
      context_length_(resolve_context_length(model.config().max_position_embeddings, options.context_length)),
      adapters_(model) {
  WICK_CHECK(options.max_queue >= 1, "serve: --max-queue must be at least 1, got ", options.max_queue);
  WICK_CHECK(options.max_batch >= 1, "serve: --max-batch must be at least 1, got ", options.max_batch);
  WICK_CHECK(options.max_loras >= 0, "serve: --max-loras must be >= 0, got ", options.max_loras);
  stats_.kv_blocks_total = blocks_for(context_length_);
  worker_ = std::thread([this] { worker_loop(); });
}

SerialEngine::~SerialEngine() { shutdown(std::chrono::milliseconds(0)); }

int64_t SerialEngine::vocab_size() const { return model_.config().vocab_size; }

std::shared_ptr<SequenceHandle> SerialEngine::submit(GenerationRequest request) {
  check_request(request, context_length_, vocab_size());
  if (!request.adapter.empty()) {
    std::lock_guard<std::mutex> lock(adapters_mutex_);
    if (!adapters_.contains(request.adapter))
      throw EngineError(EngineError::Kind::kNotFound, str_cat("no adapter named '", request.adapter, "' is loaded"));
  }
  auto handle = std::make_shared<SequenceHandle>();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!accepting_) throw EngineError(EngineError::Kind::kUnavailable, "the server is shutting down");
    if (int64_t(queue_.size()) >= options_.max_queue)
      throw EngineError(EngineError::Kind::kOverloaded,
                        str_cat("the queue is full (", options_.max_queue, " requests waiting); retry later"));
    ++stats_.requests_submitted;
    stats_.prompt_tokens += int64_t(request.prompt.size());
    queue_.push_back({std::move(request), handle});
    stats_.queue_length = int64_t(queue_.size());
  }
  work_or_exit_.notify_one();
  return handle;
}

std::vector<std::string> SerialEngine::adapters() const {
  std::lock_guard<std::mutex> lock(adapters_mutex_);
  return adapters_.names();
}

void SerialEngine::load_adapter(const std::string& name, const std::string& dir) {
  {
    std::lock_guard<std::mutex> lock(adapters_mutex_);
    if (adapters_.contains(name))
      throw EngineError(EngineError::Kind::kConflict, str_cat("an adapter named '", name, "' is already loaded"));
    if (int64_t(adapters_.names().size()) >= options_.max_loras)
      throw EngineError(
          EngineError::Kind::kConflict,
          str_cat("at most ", options_.max_loras, " adapters may be loaded at once (--max-loras); unload one first"));
  }
  // Reading the folder takes a while: the worker keeps running meanwhile.
  lora::Adapter adapter;
  try {
    adapter = lora::Adapter::load(dir, model_);
  } catch (const Error& e) {
    fail("adapter '", name, "' (", dir, "): ", e.what());
  }
  std::lock_guard<std::mutex> lock(adapters_mutex_);
  if (adapters_.contains(name))
    throw EngineError(EngineError::Kind::kConflict, str_cat("an adapter named '", name, "' is already loaded"));
  adapters_.add(name, std::move(adapter));
}

void SerialEngine::unload_adapter(const std::string& name) {
  std::lock_guard<std::mutex> lock(adapters_mutex_);
  if (!adapters_.contains(name))
    throw EngineError(EngineError::Kind::kNotFound, str_cat("no adapter named '", name, "' is loaded"));
  adapters_.unload(name);
}

EngineStats SerialEngine::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void SerialEngine::shutdown(std::chrono::milliseconds grace) {
  std::lock_guard<std::mutex> once(shutdown_mutex_);
  {
    std::unique_lock<std::mutex> lock(mutex_);
    accepting_ = false;
    idle_.wait_for(lock, grace, [&] { return queue_.empty() && !running_; });
    exit_when_empty_ = true;
  }
  cancel_all_ = true;
  work_or_exit_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void SerialEngine::worker_loop() {
  while (true) {
    Admitted next;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_or_exit_.wait(lock, [&] { return !queue_.empty() || exit_when_empty_; });
      if (queue_.empty()) return;
      next = std::move(queue_.front());
      queue_.pop_front();
      stats_.queue_length = int64_t(queue_.size());
      running_ = true;
      stats_.running = 1;
    }
    run(next);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      running_ = false;
      stats_.running = 0;
      stats_.kv_blocks_used = 0;
      ++stats_.requests_finished;
    }
    idle_.notify_all();
  }
}

void SerialEngine::run(const Admitted& admitted) {
  const GenerationRequest& r = admitted.request;
  SequenceHandle& handle = *admitted.handle;
  if (should_stop(handle)) return handle.finish(FinishReason::kCancelled);
  try {
    std::optional<models::LoraDeltas> deltas;
    if (!r.adapter.empty()) {
      std::lock_guard<std::mutex> lock(adapters_mutex_);
      if (!adapters_.contains(r.adapter))
        return handle.finish(FinishReason::kError,
                             str_cat("adapter '", r.adapter, "' was unloaded before the request ran"));
      deltas = adapters_.deltas(r.adapter);  // tensor handles: an unload meanwhile leaves them valid
    }
    NoGradGuard no_grad;
    // The cache starts with room for the prompt and a short answer, and grows while the answer
    // does: a request allowed the whole context holds only what it uses.
    int64_t prompt = int64_t(r.prompt.size()), limit = prompt + r.max_tokens;
    models::KVCache cache = model_.make_cache(1, std::min(limit, prompt + kInitialDecodeRoom));
    auto account = [&] {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.kv_blocks_used = blocks_for(cache.capacity());
    };
    account();
    const models::LoraDeltas* lora = deltas ? &*deltas : nullptr;
    SequenceSampler sampler(r.sampling, r.prompt);
    std::vector<int64_t> ids(r.prompt.begin(), r.prompt.end());
    Tensor logits = model_.forward(Tensor::from_vector(ids, {1, prompt}, model_.device()), &cache, std::nullopt,
                                   std::nullopt, lora);
    for (int64_t step = 0;; ++step) {
      int64_t vocab = logits.shape(2);
      std::vector<float> last = reshape(narrow(logits, 1, logits.shape(1) - 1, 1), {vocab}).to_vector<float>();
      TokenEvent event = sampler.next(last.data(), vocab, r.top_logprobs);
      int32_t id = event.id;
      if (!r.ignore_eos && std::find(eos_ids_.begin(), eos_ids_.end(), id) != eos_ids_.end())
        return handle.finish(FinishReason::kEos);
      handle.push(std::move(event));
      {
        std::lock_guard<std::mutex> lock(mutex_);
        ++stats_.generated_tokens;
      }
      if (step + 1 == r.max_tokens) return handle.finish(FinishReason::kLength);
      if (should_stop(handle)) return handle.finish(FinishReason::kCancelled);
      if (cache.length == cache.capacity()) {
        grow_cache(cache, std::min(limit, 2 * cache.capacity()));
        account();
      }
      logits = model_.forward(Tensor::from_vector(std::vector<int64_t>{id}, {1, 1}, model_.device()), &cache,
                              std::nullopt, std::nullopt, lora);
    }
  } catch (const std::exception& e) {
    handle.finish(FinishReason::kError, e.what());
  }
}

}  // namespace wick::serve
