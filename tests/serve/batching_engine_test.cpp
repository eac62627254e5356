// The batching engine: requests running together in one continuous batch (different prompts,
// lengths, adapters and sampling) each get exactly the tokens they get alone (models::generate_batch
// one prompt at a time, and the serial engine for sampled requests); cancellation frees KV blocks;
// the queue bound; adapters unloaded while in use; shutdown. On a GPU, the same sixteen requests
// batched (decode steps replayed as CUDA graphs) against each run alone on the GPU.
#include "wick/serve/batching_engine.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "wick/core/backend_hooks.h"
#include "support/adapters.h"
#include "wick/core/ops.h"
#include "wick/lora/adapter.h"
#include "wick/models/generate.h"
#include "wick/serve/serial_engine.h"

using namespace wick;
using namespace wick::serve;
using namespace std::chrono_literals;

namespace {

const std::string kData = std::string(WICK_TEST_DATA_DIR) + "/models/";

struct Collected {
  std::vector<int32_t> ids;
  FinishReason finish = FinishReason::kError;
  std::string error;
};

Collected collect(SequenceHandle& handle) {
  Collected c;
  for (int waits = 0; waits < 600; ++waits) {
    SequenceUpdate u = handle.wait(1s);
    for (const TokenEvent& e : u.tokens) c.ids.push_back(e.id);
    if (u.finish) {
      c.finish = *u.finish;
      c.error = u.error;
      return c;
    }
  }
  ADD_FAILURE() << "the sequence did not finish";
  return c;
}

GenerationRequest request(std::vector<int32_t> prompt, int64_t max_tokens, const std::string& adapter = "") {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.adapter = adapter;
  return r;
}

// A tiny random Llama (vocab 256, context 128) and two adapters with non-zero B.
struct TinyModel {
  models::DecoderModel model = models::DecoderModel::load(kData + "llama_untied", Device::cpu(), Dtype::F32);
  std::string dir = ::testing::TempDir() + "/wick_batching_" + std::to_string(::getpid());

  TinyModel() {
    for (int i = 0; i < 2; ++i) {
      lora::LoraConfig cfg;
      cfg.r = 4 + 4 * i;
      cfg.target_modules = i == 0 ? std::vector<std::string>{"all-linear"} : std::vector<std::string>{"q_proj", "v_proj"};
      lora::Adapter a = lora::Adapter::init(model, cfg, 5 + i);
      a.set_parameters(wick::testing::parameters_with_random_b(a, 5 + i, 0.5));
      a.save(adapter(i));
    }
  }
  ~TinyModel() { std::filesystem::remove_all(dir); }
  std::string adapter(int i) const { return dir + "/adapter" + std::to_string(i); }

  std::vector<int32_t> alone(const std::vector<int32_t>& prompt, int64_t n, int adapter_index) {
    models::GenerateOptions o;
    o.max_tokens = n;
    o.sampling.temperature = 0;
    std::optional<models::LoraDeltas> d;
    if (adapter_index >= 0) d = lora::Adapter::load(adapter(adapter_index), model).deltas();
    return models::generate_batch(model, nullptr, {prompt}, o, d ? &*d : nullptr)[0].ids;
  }
};

EngineOptions options(int64_t max_batch, int64_t max_queue = 64) {
  EngineOptions o;
  o.max_batch = max_batch;
  o.max_queue = max_queue;
  o.max_loras = 2;
  return o;
}

BatchingOptions small_batching() {
  BatchingOptions b;
  b.block_size = 4;
  b.max_step_tokens = 24;  // prompts are split into chunks interleaved with decodes
  b.max_lora_rank = 8;
  return b;
}

// Sixteen requests of different prompts, lengths, adapters and sampling, each prompt 3 to 31 tokens.
std::vector<GenerationRequest> sixteen_requests() {
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < 16; ++i) {
    std::vector<int32_t> prompt;
    for (int j = 0; j < 3 + (i * 7) % 29; ++j) prompt.push_back(int32_t((i * 31 + j * 17) % 256));
    int adapter = i % 3 - 1;  // none, a0, a1
    GenerationRequest r = request(prompt, 5 + (i * 5) % 23, adapter >= 0 ? "a" + std::to_string(adapter) : "");
    if (i % 4 == 3) {  // sampled: temperature, top-p, penalties, a seed
      r.sampling.temperature = 0.9;
      r.sampling.top_p = 0.9;
      r.sampling.presence_penalty = 0.5;
      r.sampling.seed = uint64_t(100 + i);
    }
    requests.push_back(r);
  }
  return requests;
}

TEST(BatchingEngine, SixteenConcurrentRequestsEachGetWhatTheyGetAlone) {
  TinyModel tiny;
  // The serial engine, given the same requests one at a time, is the reference for sampled ones.
  models::DecoderModel serial_model = models::DecoderModel::load(kData + "llama_untied", Device::cpu(), Dtype::F32);
  BatchingEngine engine(tiny.model, {}, options(8), small_batching());
  SerialEngine serial(serial_model, {}, options(1));
  for (int i = 0; i < 2; ++i) {
    engine.load_adapter("a" + std::to_string(i), tiny.adapter(i));
    serial.load_adapter("a" + std::to_string(i), tiny.adapter(i));
  }
  struct Job {
    GenerationRequest r;
    int adapter;
    std::shared_ptr<SequenceHandle> handle;
  };
  std::vector<Job> jobs;
  std::vector<GenerationRequest> requests = sixteen_requests();
  for (int i = 0; i < 16; ++i) jobs.push_back({requests[size_t(i)], i % 3 - 1, nullptr});  // adapters: none, a0, a1
  for (Job& j : jobs) j.handle = engine.submit(j.r);  // all at once: they batch together
  for (Job& j : jobs) {
    Collected got = collect(*j.handle);
    ASSERT_EQ(got.finish, FinishReason::kLength) << got.error;
    std::vector<int32_t> want = j.r.sampling.temperature == 0 ? tiny.alone(j.r.prompt, j.r.max_tokens, j.adapter)
                                                               : collect(*serial.submit(j.r)).ids;
    EXPECT_EQ(got.ids, want) << "prompt of " << j.r.prompt.size() << " tokens, adapter " << j.adapter;
  }
  EngineStats s = engine.stats();
  EXPECT_EQ(s.kv_blocks_used, 0);
  EXPECT_EQ(s.requests_finished, 16);
  // The batch size is published after the step that finished the last sequence.
  for (int i = 0; i < 100 && engine.stats().running != 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(engine.stats().running, 0);
}

TEST(BatchingEngine, SixteenConcurrentRequestsOnTheGpuEachGetWhatTheyGetAlone) {
  if (!cuda::available()) GTEST_SKIP() << "no CUDA GPU";
  TinyModel tiny;  // writes the adapters
  auto load = [] { return models::DecoderModel::load(kData + "llama_untied", Device::cuda(0), Dtype::F32); };
  models::DecoderModel batched_model = load(), solo_model = load();
  BatchingEngine batched(batched_model, {}, options(8), small_batching());
  BatchingEngine solo(solo_model, {}, options(1), small_batching());
  for (int i = 0; i < 2; ++i) {
    batched.load_adapter("a" + std::to_string(i), tiny.adapter(i));
    solo.load_adapter("a" + std::to_string(i), tiny.adapter(i));
  }
  std::vector<GenerationRequest> requests = sixteen_requests();
  std::vector<std::shared_ptr<SequenceHandle>> handles;
  for (const GenerationRequest& r : requests) handles.push_back(batched.submit(r));
  for (size_t i = 0; i < requests.size(); ++i) {
    Collected got = collect(*handles[i]);
    ASSERT_EQ(got.finish, FinishReason::kLength) << got.error;
    Collected want = collect(*solo.submit(requests[i]));  // alone in its batch
    ASSERT_EQ(want.finish, FinishReason::kLength) << want.error;
    EXPECT_EQ(got.ids, want.ids) << "request " << i << ": prompt of " << requests[i].prompt.size() << " tokens";
  }
  EXPECT_EQ(batched.stats().kv_blocks_used, 0);
}

TEST(BatchingEngine, CancelledSequencesFreeTheirBlocks) {
  TinyModel tiny;
  BatchingEngine engine(tiny.model, {}, options(4), small_batching());
  std::vector<std::shared_ptr<SequenceHandle>> handles;
  for (int i = 0; i < 6; ++i) handles.push_back(engine.submit(request({1, 2, 3, int32_t(i)}, 100)));
  // Wait for the first token of the first, then cancel every other one.
  for (int i = 0; i < 200 && handles[0]->wait(50ms).tokens.empty(); ++i) {
  }
  for (size_t i = 0; i < handles.size(); i += 2) handles[i]->cancel();
  for (size_t i = 0; i < handles.size(); ++i) {
    Collected c = collect(*handles[i]);
    EXPECT_EQ(c.finish, i % 2 == 0 ? FinishReason::kCancelled : FinishReason::kLength) << i;
  }
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
}

TEST(BatchingEngine, QueueBoundRequestChecksAndAdapters) {
  TinyModel tiny;
  BatchingEngine engine(tiny.model, {}, options(1, 2), small_batching());
  auto kind = [&](GenerationRequest r) -> std::optional<EngineError::Kind> {
    try {
      engine.submit(std::move(r));
    } catch (const EngineError& e) {
      return e.kind();
    }
    return std::nullopt;  // accepted
  };
  EXPECT_EQ(kind(request({}, 4)), EngineError::Kind::kInvalidRequest);
  EXPECT_EQ(kind(request({300}, 4)), EngineError::Kind::kInvalidRequest);
  EXPECT_EQ(kind(request({1}, 4, "nope")), EngineError::Kind::kNotFound);
  engine.load_adapter("a0", tiny.adapter(0));
  EXPECT_THROW(engine.load_adapter("a0", tiny.adapter(1)), EngineError);
  engine.load_adapter("a1", tiny.adapter(1));
  try {
    engine.load_adapter("a2", tiny.adapter(1));
    FAIL() << "a third adapter fits in two slots";
  } catch (const EngineError& e) {
    EXPECT_EQ(e.kind(), EngineError::Kind::kConflict);
  }
  // A long request with a0 keeps running after a0 is unloaded; new requests cannot name it.
  auto running = engine.submit(request({1, 2, 3}, 60, "a0"));
  size_t seen = 0;
  for (int i = 0; i < 200 && seen == 0; ++i) seen += running->wait(50ms).tokens.size();
  engine.unload_adapter("a0");
  EXPECT_EQ(kind(request({1}, 4, "a0")), EngineError::Kind::kNotFound);
  Collected c = collect(*running);
  EXPECT_EQ(c.finish, FinishReason::kLength) << c.error;
  EXPECT_EQ(seen + c.ids.size(), 60u);
  // Its slot is free again.
  engine.load_adapter("a2", tiny.adapter(0));
  // Fill the batch and the queue: then the queue is full.
  std::vector<std::shared_ptr<SequenceHandle>> held;
  int overloaded = 0;
  for (int i = 0; i < 8; ++i) {
    try {
      held.push_back(engine.submit(request({1, 2}, 100)));
    } catch (const EngineError& e) {
      overloaded += e.kind() == EngineError::Kind::kOverloaded;
    }
  }
  EXPECT_GT(overloaded, 0);
  engine.shutdown(0ms);
  for (auto& h : held) EXPECT_TRUE(collect(*h).finish == FinishReason::kCancelled || h->finished());
  EXPECT_EQ(kind(request({1}, 4)), EngineError::Kind::kUnavailable);
}

}  // namespace
