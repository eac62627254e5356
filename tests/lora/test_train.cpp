// The training loop and its data: loss falls on learnable data, gradient accumulation equals one
// large batch, transformers' schedules, loss masks of prompt/completion and chat data, and
// malformed data named by line.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include "wick/core/ops.h"
#include "wick/lora/adapter.h"
#include "wick/tokenizer/template.h"
#include "wick/train/trainer.h"

using namespace wick;

namespace {

const std::string kData = std::string(WICK_TEST_DATA_DIR) + "/models/";

std::vector<train::Example> repeated_patterns(int n, uint64_t seed) {
  std::mt19937 rng(seed);
  std::vector<train::Example> out;
  for (int i = 0; i < n; ++i) {
    std::vector<int32_t> unit;
    for (int k = 0; k < 5; ++k) unit.push_back(int32_t(rng() % 256));
    train::Example e;
    for (int r = 0; r < 3; ++r) e.ids.insert(e.ids.end(), unit.begin(), unit.end());
    e.labels = e.ids;
    e.line = i + 1;
    out.push_back(e);
  }
  return out;
}

TEST(Train, LossFallsAndValidationIsReported) {
  auto model = models::DecoderModel::load(kData + "qwen2_tied", Device::cpu(), Dtype::F32);
  lora::LoraConfig cfg;
  cfg.r = 8;
  cfg.target_modules = {"all-linear"};
  lora::Adapter adapter = lora::Adapter::init(model, cfg, 1);
  auto data = repeated_patterns(16, 2);
  train::TrainOptions o;
  o.steps = 25;
  o.adamw.lr = 5e-3;
  o.shuffle = false;
  std::vector<train::StepMetrics> seen;
  double before = train::evaluate_loss(model, adapter, data, 8);
  train::train_lora(model, adapter, data, data, o, [&](const train::StepMetrics& m) { seen.push_back(m); });
  ASSERT_EQ(seen.size(), 25u);
  EXPECT_LT(seen.back().loss, seen.front().loss - 0.5);
  EXPECT_GE(seen.back().val_loss, 0);
  EXPECT_LT(seen.back().val_loss, before - 0.5);
  // The first step's loss is taken before any update: the untrained adapter's loss on the first
  // batch (batch size 4, data in order).
  std::vector<train::Example> first(data.begin(), data.begin() + 4);
  EXPECT_NEAR(seen.front().loss, train::evaluate_loss(model, lora::Adapter::init(model, cfg, 1), first, 4), 1e-5);
}

TEST(Train, GradientAccumulationEqualsOneLargeBatch) {
  auto model = models::DecoderModel::load(kData + "qwen2_tied", Device::cpu(), Dtype::F32);
  lora::LoraConfig cfg;
  cfg.target_modules = {"q_proj", "v_proj"};
  auto data = repeated_patterns(4, 3);
  data[1].ids.resize(11);  // uneven lengths: padding and the target count must be handled
  data[1].labels.resize(11);
  auto run = [&](int64_t batch, int64_t accum) {
    lora::Adapter a = lora::Adapter::init(model, cfg, 7);
    // Non-zero B so every parameter gets a gradient.
    std::vector<Tensor> p = a.parameters();
    for (size_t i = 1; i < p.size(); i += 2) p[i] = normal(p[i].shape(), 0, 0.05);
    a.set_parameters(p);
    train::TrainOptions o;
    o.steps = 1;
    o.batch_size = batch;
    o.grad_accum = accum;
    o.shuffle = false;
    double loss = 0;
    train::train_lora(model, a, data, {}, o, [&](const train::StepMetrics& m) { loss = m.loss; });
    return std::make_pair(loss, a.parameters());
  };
  auto [l1, p1] = run(4, 1);
  auto [l2, p2] = run(2, 2);
  EXPECT_NEAR(l1, l2, 1e-5);
  for (size_t i = 0; i < p1.size(); ++i) EXPECT_LE(max(abs(p1[i] - p2[i])).item<double>(), 1e-6) << "parameter " << i;
}

TEST(Train, SchedulesFollowTransformers) {
  using train::learning_rate;
  using train::Schedule;
  // get_linear_schedule_with_warmup(warmup=2, total=10): step index s = 0, 1, ...
  EXPECT_DOUBLE_EQ(learning_rate(Schedule::Linear, 1.0, 1, 10, 2), 0.0);
  EXPECT_DOUBLE_EQ(learning_rate(Schedule::Linear, 1.0, 2, 10, 2), 0.5);
  EXPECT_DOUBLE_EQ(learning_rate(Schedule::Linear, 1.0, 3, 10, 2), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(Schedule::Linear, 1.0, 7, 10, 2), 0.5);
  EXPECT_NEAR(learning_rate(Schedule::Cosine, 1.0, 7, 10, 2), 0.5, 1e-12);
  EXPECT_NEAR(learning_rate(Schedule::Cosine, 1.0, 5, 10, 2), 0.5 * (1 + std::cos(M_PI * 2.0 / 8.0)), 1e-12);
  EXPECT_DOUBLE_EQ(learning_rate(Schedule::Constant, 3e-4, 9, 10, 0), 3e-4);
}

std::string write(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(TrainData, PromptCompletionAndChatMasks) {
  auto tokenizer = tok::Tokenizer::from_file(std::string(WICK_SHARED_DIR) + "/data/tokenizers/qwen2.5");
  auto chat = tok::load_chat_template_config(std::string(WICK_SHARED_DIR) + "/data/tokenizers/qwen2.5/tokenizer_config.json");
  int32_t eos = *tokenizer.token_to_id("<|im_end|>");
  train::DataContext ctx{&tokenizer, &chat, eos};
  std::string path = write("wick_data.jsonl",
                           "{\"prompt\": \"2+2=\", \"completion\": \" 4\"}\n\n"
                           "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello there\"}]}\n");
  auto data = train::load_jsonl(path, ctx, {});
  ASSERT_EQ(data.size(), 2u);
  auto targets = [&](const train::Example& e) {
    std::vector<int32_t> t;
    for (size_t i = 0; i < e.ids.size(); ++i)
      if (e.labels[i] != -100) t.push_back(e.ids[i]);
    return tokenizer.decode(t, false);
  };
  EXPECT_EQ(targets(data[0]), " 4<|im_end|>");
  EXPECT_EQ(data[0].line, 1);
  EXPECT_EQ(targets(data[1]), "Hello there<|im_end|>\n");
  EXPECT_EQ(data[1].line, 3);
}

TEST(TrainData, BadLinesAreNamed) {
  train::DataContext none;
  auto expect_error = [&](const std::string& text, const std::string& needle) {
    std::string path = write("wick_bad.jsonl", text);
    try {
      train::load_jsonl(path, none, {});
      ADD_FAILURE() << "expected an error for " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error("{\"input_ids\": [1, 2, 3]}\n{oops\n", "wick_bad.jsonl:2");
  expect_error("{\"input_ids\": [1, 2, 3], \"labels\": [-100, -100, -100]}\n", "no target tokens");
  expect_error("{\"input_ids\": [1, 2], \"labels\": [1]}\n", "labels has 1");
  expect_error("{\"text\": \"hi\"}\n", "need a tokenizer");
  expect_error("{\"question\": \"hi\"}\n", "expected {\"text\"}");
}

}  // namespace
