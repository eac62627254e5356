// The serial engine: SmolLM2's greedy tokens equal transformers' (golden file), token limits, EOS,
// cancellation, the bounded queue, adapters chosen per request (equal to models::generate with the
// same adapter), run-time unloading, request checks and shutdown.
#include "wick/serve/serial_engine.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "support/adapters.h"
#include "wick/core/ops.h"
#include "wick/lora/adapter.h"
#include "wick/models/generate.h"

using namespace wick;
using namespace wick::serve;
using namespace std::chrono_literals;

namespace {

const std::string kData = std::string(WICK_TEST_DATA_DIR) + "/models/";
const std::string kSmolLM2 = std::string(WICK_TEST_DATA_DIR) + "/../../models/SmolLM2-135M-Instruct.Q4_1.gguf";

struct Collected {
  std::vector<int32_t> ids;
  FinishReason finish;
  std::string error;
};

Collected collect(SequenceHandle& handle) {
  Collected c;
  while (true) {
    SequenceUpdate u = handle.wait(10s);
    for (const TokenEvent& e : u.tokens) c.ids.push_back(e.id);
    if (u.finish) {
      c.finish = *u.finish;
      c.error = u.error;
      return c;
    }
  }
}

GenerationRequest request(std::vector<int32_t> prompt, int64_t max_tokens, const std::string& adapter = "") {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.adapter = adapter;
  return r;
}

EngineError::Kind error_kind(Engine& engine, GenerationRequest r) {
  try {
    engine.submit(std::move(r));
  } catch (const EngineError& e) {
    return e.kind();
  }
  ADD_FAILURE() << "submit accepted the request";
  return EngineError::Kind::kInvalidRequest;
}

// A tiny random Llama (vocab 256, context 128) and an adapter with non-zero B.
struct TinyModel {
  models::DecoderModel model = models::DecoderModel::load(kData + "llama_untied", Device::cpu(), Dtype::F32);
  std::string adapter_dir = ::testing::TempDir() + "/wick_serve_adapter_" + std::to_string(::getpid());

  TinyModel() {
    lora::LoraConfig cfg;
    cfg.r = 4;
    cfg.target_modules = {"all-linear"};
    lora::Adapter a = lora::Adapter::init(model, cfg, 5);
    a.set_parameters(wick::testing::parameters_with_random_b(a, 5, 0.5));
    a.save(adapter_dir);
  }
  ~TinyModel() { std::filesystem::remove_all(adapter_dir); }

  std::vector<int32_t> generate_alone(const std::vector<int32_t>& prompt, int64_t n, bool with_adapter) {
    models::GenerateOptions o;
    o.max_tokens = n;
    o.sampling.temperature = 0;
    lora::Adapter a = lora::Adapter::load(adapter_dir, model);
    models::LoraDeltas d = a.deltas();
    return models::generate_batch(model, nullptr, {prompt}, o, with_adapter ? &d : nullptr)[0].ids;
  }
};

}  // namespace

TEST(SerialEngine, SmolLM2GreedyTokensEqualTransformers) {
  if (!std::filesystem::exists(kSmolLM2))
    GTEST_SKIP() << "missing " << kSmolLM2 << " (run scripts/fetch-models.sh models)";
  auto model = models::DecoderModel::load_gguf(kSmolLM2, Device::cpu(), Dtype::F32);
  SerialEngine engine(model, {2}, {});
  std::ifstream in(kData + "smollm2_greedy_golden.json");
  nlohmann::json golden = nlohmann::json::parse(in);
  std::vector<std::pair<std::shared_ptr<SequenceHandle>, std::vector<int32_t>>> runs;
  for (const auto& c : golden["cases"]) {
    std::vector<int32_t> want = c["greedy_ids"].get<std::vector<int32_t>>();
    GenerationRequest r = request(c["prompt_ids"].get<std::vector<int32_t>>(), int64_t(want.size()));
    r.ignore_eos = true;  // transformers' run went past EOS
    runs.push_back({engine.submit(r), want});
  }
  for (auto& [handle, want] : runs) {
    Collected got = collect(*handle);
    EXPECT_EQ(got.ids, want);
    EXPECT_EQ(got.finish, FinishReason::kLength);
  }
}

TEST(SerialEngine, TokensEqualGenerateWithAndWithoutAnAdapter) {
  TinyModel tiny;
  SerialEngine engine(tiny.model, {}, {});
  engine.load_adapter("a", tiny.adapter_dir);
  EXPECT_EQ(engine.adapters(), std::vector<std::string>{"a"});
  std::vector<int32_t> prompt{5, 77, 3, 190, 42};
  auto base = engine.submit(request(prompt, 12)), adapted = engine.submit(request(prompt, 12, "a"));
  auto base_again = engine.submit(request(prompt, 12));
  std::vector<int32_t> want_base = tiny.generate_alone(prompt, 12, false),
                       want_adapted = tiny.generate_alone(prompt, 12, true);
  ASSERT_NE(want_base, want_adapted);
  EXPECT_EQ(collect(*base).ids, want_base);
  EXPECT_EQ(collect(*adapted).ids, want_adapted);
  EXPECT_EQ(collect(*base_again).ids, want_base);
  EngineStats s = engine.stats();
  EXPECT_EQ(s.requests_submitted, 3);
  EXPECT_EQ(s.generated_tokens, 36);
  EXPECT_EQ(s.prompt_tokens, 15);
}

TEST(SerialEngine, EosEndsUnlessIgnored) {
  TinyModel tiny;
  std::vector<int32_t> prompt{9, 8, 7};
  std::vector<int32_t> greedy = tiny.generate_alone(prompt, 6, false);
  SerialEngine engine(tiny.model, {greedy[2]}, {});  // the third greedy token plays EOS
  Collected stopped = collect(*engine.submit(request(prompt, 6)));
  EXPECT_EQ(stopped.finish, FinishReason::kEos);
  EXPECT_EQ(stopped.ids, std::vector<int32_t>(greedy.begin(), greedy.begin() + 2));
  GenerationRequest r = request(prompt, 6);
  r.ignore_eos = true;
  Collected all = collect(*engine.submit(r));
  EXPECT_EQ(all.finish, FinishReason::kLength);
  EXPECT_EQ(all.ids, greedy);
}

TEST(SerialEngine, CancelStopsASequenceAndFreesItsCache) {
  TinyModel tiny;
  SerialEngine engine(tiny.model, {}, {});
  auto handle = engine.submit(request({1, 2, 3}, 120));
  SequenceUpdate first = handle->wait(10s);
  ASSERT_FALSE(first.tokens.empty());
  handle->cancel();
  Collected rest = collect(*handle);
  EXPECT_EQ(rest.finish, FinishReason::kCancelled);
  EXPECT_LT(first.tokens.size() + rest.ids.size(), 120u);
  for (int i = 0; i < 100 && engine.stats().running; ++i) std::this_thread::sleep_for(10ms);
  EngineStats s = engine.stats();
  EXPECT_EQ(s.running, 0);
  EXPECT_EQ(s.kv_blocks_used, 0);
  EXPECT_EQ(s.kv_blocks_total, 128 / SerialEngine::kKvBlockTokens);
}

TEST(SerialEngine, AFullQueueIsOverloaded) {
  TinyModel tiny;
  EngineOptions o;
  o.max_queue = 1;
  SerialEngine engine(tiny.model, {}, o);
  auto running = engine.submit(request({1, 2, 3}, 124));
  ASSERT_FALSE(running->wait(10s).tokens.empty());  // it left the queue
  auto queued = engine.submit(request({4, 5}, 4));
  EXPECT_EQ(error_kind(engine, request({6}, 4)), EngineError::Kind::kOverloaded);
  running->cancel();
  EXPECT_EQ(collect(*queued).finish, FinishReason::kLength);
}

TEST(SerialEngine, BadRequestsAndAdaptersAreRefused) {
  TinyModel tiny;
  EngineOptions o;
  o.max_loras = 1;
  SerialEngine engine(tiny.model, {}, o);
  using K = EngineError::Kind;
  EXPECT_EQ(error_kind(engine, request({}, 4)), K::kInvalidRequest);
  EXPECT_EQ(error_kind(engine, request({1, 300}, 4)), K::kInvalidRequest);  // outside the vocabulary
  EXPECT_EQ(error_kind(engine, request(std::vector<int32_t>(128, 1), 1)), K::kInvalidRequest);
  EXPECT_EQ(error_kind(engine, request(std::vector<int32_t>(100, 1), 29)), K::kInvalidRequest);
  EXPECT_EQ(error_kind(engine, request({1}, 0)), K::kInvalidRequest);
  EXPECT_EQ(error_kind(engine, request({1}, 4, "nope")), K::kNotFound);
  GenerationRequest bad = request({1}, 4);
  bad.sampling.top_p = 0;
  EXPECT_EQ(error_kind(engine, bad), K::kInvalidRequest);
  engine.load_adapter("a", tiny.adapter_dir);
  try {
    engine.load_adapter("b", tiny.adapter_dir);
    ADD_FAILURE() << "--max-loras 1 let a second adapter in";
  } catch (const EngineError& e) {
    EXPECT_EQ(e.kind(), K::kConflict);
  }
  EXPECT_THROW(engine.load_adapter("a", tiny.adapter_dir), EngineError);
  EXPECT_THROW(engine.unload_adapter("b"), EngineError);
  EXPECT_THROW(SerialEngine(tiny.model, {}, EngineOptions{.context_length = 129}), Error);
  EXPECT_THROW(SerialEngine(tiny.model, {}, EngineOptions{.max_batch = 0}), Error);
}

TEST(SerialEngine, UnloadingFailsQueuedRequestsOnly) {
  TinyModel tiny;
  SerialEngine engine(tiny.model, {}, {});
  engine.load_adapter("a", tiny.adapter_dir);
  auto running = engine.submit(request({1, 2, 3}, 60, "a"));
  ASSERT_FALSE(running->wait(10s).tokens.empty());
  auto queued = engine.submit(request({4, 5}, 4, "a"));
  engine.unload_adapter("a");
  EXPECT_TRUE(engine.adapters().empty());
  EXPECT_EQ(collect(*running).finish, FinishReason::kLength);  // it keeps the adapter it started with
  Collected failed = collect(*queued);
  EXPECT_EQ(failed.finish, FinishReason::kError);
  EXPECT_NE(failed.error.find("unloaded"), std::string::npos) << failed.error;
}

TEST(SerialEngine, ShutdownFinishesWithinGraceThenRefuses) {
  TinyModel tiny;
  SerialEngine engine(tiny.model, {}, {});
  auto a = engine.submit(request({1, 2}, 8)), b = engine.submit(request({3, 4}, 8));
  engine.shutdown(10s);
  EXPECT_EQ(collect(*a).finish, FinishReason::kLength);
  EXPECT_EQ(collect(*b).finish, FinishReason::kLength);
  EXPECT_EQ(error_kind(engine, request({1}, 2)), EngineError::Kind::kUnavailable);
  engine.shutdown(0ms);  // idempotent
}

TEST(SerialEngine, ShutdownCancelsWhatOutlastsTheGrace) {
  TinyModel tiny;
  SerialEngine engine(tiny.model, {}, {});
  auto a = engine.submit(request({1, 2}, 120)), b = engine.submit(request({3, 4}, 120));
  engine.shutdown(0ms);
  Collected ca = collect(*a), cb = collect(*b);
  EXPECT_EQ(cb.finish, FinishReason::kCancelled);
  EXPECT_TRUE(ca.finish == FinishReason::kCancelled || ca.ids.size() == 120u);
}

TEST(SerialEngine, AGrowingCacheGivesTheSameTokens) {
  // Context 256: 240 new tokens outgrow the cache's first kInitialDecodeRoom positions.
  auto model = models::DecoderModel::load(kData + "llama_gqa_llama3rope", Device::cpu(), Dtype::F32);
  std::vector<int32_t> prompt{3, 14, 15};
  models::GenerateOptions o;
  o.max_tokens = 240;
  o.sampling.temperature = 0;
  std::vector<int32_t> want = models::generate_batch(model, nullptr, {prompt}, o)[0].ids;
  SerialEngine engine(model, {}, {});
  Collected got = collect(*engine.submit(request(prompt, 240)));
  EXPECT_EQ(got.finish, FinishReason::kLength);
  EXPECT_EQ(got.ids, want);
}
