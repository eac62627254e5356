// The batching engine: requests in from any thread, one engine thread stepping the scheduler.
#include "wick/serve/batching_engine.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <future>

#include "wick/core/backend_hooks.h"
#include "wick/lora/adapter.h"
#include "wick/serve/sequence_sampler.h"

namespace wick::serve {

namespace {

// KV blocks that fit the memory budget, at most enough for every row at full context.
int64_t kv_blocks(const models::DecoderModel& model, const EngineOptions& o, const BatchingOptions& b, int64_t context) {
  const models::DecoderConfig& c = model.config();
  size_t block_bytes = size_t(c.num_layers) * 2 * size_t(c.num_kv_heads) * size_t(b.block_size) *
                       size_t(c.head_dim) * dtype_size(model.dtype());
  size_t budget = size_t(b.kv_cache_mb) << 20;
  if (b.kv_cache_mb == 0) {
    if (model.device().is_cuda()) {
      budget = cuda::free_memory(model.device().index) / 10 * 4;
    } else {
      budget = size_t(1) << 30;
    }
  }
  int64_t full = o.max_batch * runtime::blocks_for(context, b.block_size) + 1;
  int64_t fit = int64_t(budget / block_bytes);
  WICK_CHECK(fit >= 2, "serve: a KV cache of ", budget >> 20, " MiB holds no block of ", block_bytes,
             " bytes; raise --kv-cache-mb");
  return std::min(full, fit);
}

}  // namespace

struct BatchingEngine::Live {
  std::shared_ptr<SequenceHandle> handle;
  std::shared_ptr<runtime::Sequence> seq;
  std::unique_ptr<SequenceSampler> sampler;  // null: the scheduler's greedy argmax on the device
  std::optional<TokenEvent> chosen;          // the sampler's event for the token being emitted
  int top_logprobs = 0;
  int slot = -1;
};

BatchingEngine::BatchingEngine(models::DecoderModel& model, std::vector<int32_t> eos_ids, EngineOptions options,
                               BatchingOptions batching)
    : model_(model),
      eos_ids_(std::move(eos_ids)),
      options_(options),
      context_length_(resolve_context_length(model.config().max_position_embeddings, options.context_length)) {
  WICK_CHECK(options.max_queue >= 1, "serve: --max-queue must be at least 1, got ", options.max_queue);
  WICK_CHECK(options.max_batch >= 1, "serve: --max-batch must be at least 1, got ", options.max_batch);
  WICK_CHECK(options.max_loras >= 0, "serve: --max-loras must be >= 0, got ", options.max_loras);
  WICK_CHECK(batching.block_size >= 1 && batching.max_lora_rank >= 1 && batching.kv_cache_mb >= 0 &&
                 batching.max_step_tokens >= 0,
             "serve: bad batching options");
  runtime::RunnerOptions ro;
  ro.max_batch = options.max_batch;
  ro.max_context = context_length_;
  ro.block_size = batching.block_size;
  ro.num_blocks = kv_blocks(model, options, batching, context_length_);
  ro.max_loras = int(options.max_loras);
  ro.max_lora_rank = batching.max_lora_rank;
  ro.cuda_graphs = batching.cuda_graphs;
  runner_ = std::make_unique<runtime::DecoderRunner>(model, ro);
  runtime::SchedulerOptions so;
  so.max_step_tokens = batching.max_step_tokens ? batching.max_step_tokens : (model.device().is_cuda() ? 2048 : 512);
  so.max_step_tokens = std::max(so.max_step_tokens, options.max_batch);
  so.max_waiting = options.max_queue;
  scheduler_ = std::make_unique<runtime::Scheduler>(*runner_, so);
  stats_.kv_blocks_total = runner_->blocks().total();
  thread_ = std::thread([this] { loop(); });
}

BatchingEngine::~BatchingEngine() { shutdown(std::chrono::milliseconds(0)); }

std::shared_ptr<SequenceHandle> BatchingEngine::submit(GenerationRequest request) {
  check_request(request, context_length_, vocab_size());
  int64_t positions = int64_t(request.prompt.size()) + request.max_tokens;
  int64_t blocks = runtime::blocks_for(positions, runner_->options().block_size);
  if (blocks > runner_->blocks().total())
    throw EngineError(EngineError::Kind::kInvalidRequest,
                      str_cat("the request needs ", positions, " KV positions; the cache holds ",
                              runner_->blocks().total() * runner_->options().block_size, " (lower max_tokens)"));
  auto handle = std::make_shared<SequenceHandle>();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!accepting_) throw EngineError(EngineError::Kind::kUnavailable, "the server is shutting down");
    if (!request.adapter.empty() && !adapter_slots_.count(request.adapter))
      throw EngineError(EngineError::Kind::kNotFound, str_cat("no adapter named '", request.adapter, "' is loaded"));
    if (int64_t(pending_.size()) + stats_.queue_length >= options_.max_queue)
      throw EngineError(EngineError::Kind::kOverloaded,
                        str_cat("the queue is full (", options_.max_queue, " requests waiting); retry later"));
    ++stats_.requests_submitted;
    stats_.prompt_tokens += int64_t(request.prompt.size());
    pending_.push_back({std::move(request), handle});
  }
  wake_.notify_one();
  return handle;
}

std::vector<std::string> BatchingEngine::adapters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> names;
  for (const auto& [name, slot] : adapter_slots_) names.push_back(name);
  return names;
}

void BatchingEngine::run_on_engine(std::function<void()> task) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> result = done->get_future();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stop_) throw EngineError(EngineError::Kind::kUnavailable, "the server is shutting down");
    tasks_.push_back([task = std::move(task), done] {
      try {
        task();
        done->set_value();
      } catch (...) {
        done->set_exception(std::current_exception());
      }
    });
  }
  wake_.notify_one();
  result.get();
}

void BatchingEngine::load_adapter(const std::string& name, const std::string& dir) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (adapter_slots_.count(name))
      throw EngineError(EngineError::Kind::kConflict, str_cat("an adapter named '", name, "' is already loaded"));
  }
  // Reading and checking the folder happens here, while the engine keeps running.
  lora::Adapter adapter;
  try {
    adapter = lora::Adapter::load(dir, model_);
  } catch (const Error& e) {
    fail("adapter '", name, "' (", dir, "): ", e.what());
  }
  models::LoraDeltas deltas = adapter.deltas();
  run_on_engine([&] {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (adapter_slots_.count(name))
        throw EngineError(EngineError::Kind::kConflict, str_cat("an adapter named '", name, "' is already loaded"));
    }
    if (runner_->adapters().find("") < 0 && runner_->adapters().capacity() > 0 &&
        int64_t(runner_->adapters().names().size()) >= runner_->adapters().capacity())
      throw EngineError(EngineError::Kind::kConflict,
                        str_cat("at most ", options_.max_loras, " adapters may be loaded at once (--max-loras); unload one first"));
    if (runner_->adapters().capacity() == 0)
      throw EngineError(EngineError::Kind::kConflict, "this server holds no adapters (--max-loras 0)");
    int slot = runner_->adapters().load(name, deltas);
    std::lock_guard<std::mutex> lock(mutex_);
    adapter_slots_[name] = slot;
  });
}

void BatchingEngine::unload_adapter(const std::string& name) {
  run_on_engine([&] {
    int slot;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = adapter_slots_.find(name);
      if (it == adapter_slots_.end())
        throw EngineError(EngineError::Kind::kNotFound, str_cat("no adapter named '", name, "' is loaded"));
      slot = it->second;
      adapter_slots_.erase(it);  // new requests can no longer name it
    }
    // Running sequences finish with it; the slot is freed by the last of them.
    if (slot_users_[slot] > 0) slot_draining_[slot] = true;
    else release_slot(slot);
  });
}

void BatchingEngine::release_slot(int slot) {
  for (const std::string& n : runner_->adapters().names())
    if (runner_->adapters().find(n) == slot) runner_->adapters().unload(n);
  slot_draining_.erase(slot);
  slot_users_.erase(slot);
}

EngineStats BatchingEngine::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  EngineStats s = stats_;
  s.queue_length += int64_t(pending_.size());
  return s;
}

void BatchingEngine::shutdown(std::chrono::milliseconds grace) {
  std::lock_guard<std::mutex> once(shutdown_mutex_);
  if (!thread_.joinable()) return;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    accepting_ = false;
    idle_.wait_for(lock, grace, [&] { return pending_.empty() && !busy_; });
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::shared_ptr<BatchingEngine::Live> BatchingEngine::start(Pending p) {
  const GenerationRequest& r = p.request;
  auto live = std::make_shared<Live>();
  live->handle = p.handle;
  live->top_logprobs = r.top_logprobs;
  if (!r.adapter.empty()) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = adapter_slots_.find(r.adapter);
    if (it == adapter_slots_.end()) {
      p.handle->finish(FinishReason::kError, str_cat("adapter '", r.adapter, "' was unloaded before the request ran"));
      return nullptr;
    }
    live->slot = it->second;
  }
  const SamplingParams& s = r.sampling;
  bool plain_greedy = s.temperature == 0 && s.repetition_penalty == 1.0 && s.presence_penalty == 0 &&
                      s.frequency_penalty == 0 && r.top_logprobs == 0;
  runtime::SequenceParams params;
  params.prompt = r.prompt;
  params.max_tokens = r.max_tokens;
  params.sampling.temperature = 0;  // sampling beyond greedy goes through SequenceSampler
  params.eos_ids = eos_ids_;
  params.ignore_eos = r.ignore_eos;
  params.adapter_slot = live->slot;
  runtime::SequenceCallbacks cb;
  if (!plain_greedy) {
    live->sampler = std::make_unique<SequenceSampler>(s, r.prompt);
    cb.choose = [live](const float* logits, int64_t vocab, const std::vector<int32_t>&) {
      live->chosen = live->sampler->next(logits, vocab, live->top_logprobs);
      return live->chosen->id;
    };
  }
  // Statistics are updated before the handle hears of the event, so a client that saw its request
  // finish also sees the finish (and the freed KV blocks) counted.
  cb.on_token = [this, live](int32_t id, double logprob) {
    TokenEvent event = live->chosen && live->chosen->id == id ? *live->chosen : TokenEvent{id, float(logprob), {}};
    live->chosen.reset();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++stats_.generated_tokens;
    }
    live->handle->push(std::move(event));
  };
  cb.on_finish = [this, live](runtime::Finish reason, const std::string& error) {
    if (live->slot >= 0 && --slot_users_[live->slot] == 0 && slot_draining_.count(live->slot)) release_slot(live->slot);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++stats_.requests_finished;
      stats_.kv_blocks_used = runner_->blocks().used();  // the scheduler released this sequence's blocks
    }
    switch (reason) {
      case runtime::Finish::Eos: live->handle->finish(FinishReason::kEos); break;
      case runtime::Finish::Length: live->handle->finish(FinishReason::kLength); break;
      case runtime::Finish::Cancelled: live->handle->finish(FinishReason::kCancelled); break;
      default: live->handle->finish(FinishReason::kError, error); break;
    }
  };
  try {
    live->seq = scheduler_->add(std::move(params), std::move(cb));
    if (live->slot >= 0) ++slot_users_[live->slot];
  } catch (const std::exception& e) {
    p.handle->finish(FinishReason::kError, e.what());
    return nullptr;
  }
  return live;
}

void BatchingEngine::loop() {
  std::vector<std::shared_ptr<Live>> lives;  // sequences handed to the scheduler, until they finish
  while (true) {
    std::deque<Pending> arrived;
    std::deque<std::function<void()>> tasks;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      busy_ = !scheduler_->idle();
      if (!busy_ && pending_.empty()) idle_.notify_all();
      wake_.wait(lock, [&] { return stop_ || !pending_.empty() || !tasks_.empty() || !scheduler_->idle(); });
      if (stop_) break;
      arrived.swap(pending_);
      tasks.swap(tasks_);
      busy_ = true;
    }
    for (auto& task : tasks) task();
    for (auto& p : arrived)
      if (auto live = start(std::move(p))) lives.push_back(std::move(live));
    // A client's cancel() reaches its sequence here, before the step that would extend it.
    std::erase_if(lives, [](const std::shared_ptr<Live>& l) {
      if (l->handle->finished()) return true;
      if (l->handle->cancel_requested()) l->seq->cancel();
      return false;
    });
    const bool had_work = !scheduler_->idle();
    scheduler_->step();
    // The last sequence has finished: hand the memory a burst of requests left free back to the
    // system (the large blocks kept for reuse, core/storage.h, and the heap, whose freed blocks glibc
    // keeps in its per-thread arenas otherwise), so the server's resident size returns to its idle
    // level between bursts.
    if (had_work && scheduler_->idle()) {
      release_kept_host_blocks();
#if defined(__GLIBC__)
      malloc_trim(0);
#endif
    }
    runtime::SchedulerStats st = scheduler_->stats();
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.queue_length = st.waiting;
    stats_.running = st.running;
    stats_.kv_blocks_used = st.blocks_used;
  }
  // Shutting down: whatever is left is cancelled, and waiting adapter calls are released.
  scheduler_->cancel_all();
  std::deque<std::function<void()>> tasks;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& p : pending_) p.handle->finish(FinishReason::kCancelled);
    pending_.clear();
    tasks.swap(tasks_);
    stats_.running = stats_.queue_length = stats_.kv_blocks_used = 0;
  }
  for (auto& t : tasks) t();
  idle_.notify_all();
}

}  // namespace wick::serve
