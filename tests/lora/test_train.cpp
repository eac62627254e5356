// The training loop and its data: loss falls on learnable data, gradient accumulation equals one
// large batch, transformers' schedules, loss masks of prompt/completion and chat data, and
// malformed data named by line.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "support/adapters.h"
#include "wick/core/ops.h"
#include "wick/lora/adapter.h"
#include "wick/chat/template.h"
#include "wick/train/trainer.h"
#include "train_fixtures.h"

using namespace wick;

namespace {

using test::repeated_patterns;

const std::string kData = std::string(WICK_TEST_DATA_DIR) + "/models/";


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
    a.set_parameters(wick::testing::parameters_with_random_b(a, 7, 0.05));
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

// A step recorded and evaluated as one graph (lazy) trains exactly as the eager step: the same losses, gradient norms and adapter, with dropout and accumulation.
TEST(Train, LazyStepsMatchEagerSteps) {
  auto model = models::DecoderModel::load(kData + "qwen2_tied", Device::cpu(), Dtype::F32);
  lora::LoraConfig cfg;
  cfg.r = 4;
  cfg.dropout = 0.1;
  cfg.target_modules = {"all-linear"};
  auto data = repeated_patterns(8, 4);
  auto run = [&](train::ExecChoice exec) {
    lora::Adapter a = lora::Adapter::init(model, cfg, 3);
    train::TrainOptions o;
    o.steps = 4;
    o.batch_size = 2;
    o.grad_accum = 2;
    o.adamw.lr = 5e-3;
    o.exec = exec;
    std::vector<train::StepMetrics> seen;
    train::train_lora(model, a, data, {}, o, [&](const train::StepMetrics& m) { seen.push_back(m); });
    return std::make_pair(seen, a.parameters());
  };
  auto [eager, pe] = run(train::ExecChoice::Eager);
  auto [lazy, pl] = run(train::ExecChoice::Lazy);
  ASSERT_EQ(eager.size(), 4u);
  ASSERT_EQ(lazy.size(), 4u);
  for (size_t i = 0; i < eager.size(); ++i) {
    EXPECT_NEAR(lazy[i].loss, eager[i].loss, 1e-5 * std::abs(eager[i].loss)) << "step " << i + 1;
    EXPECT_NEAR(lazy[i].grad_norm, eager[i].grad_norm, 1e-4 * eager[i].grad_norm) << "step " << i + 1;
  }
  for (size_t i = 0; i < pe.size(); ++i) EXPECT_LE(max(abs(pe[i] - pl[i])).item<double>(), 1e-5) << "parameter " << i;
  EXPECT_THROW(train::parse_exec_choice("fast"), Error);
}

// Activation checkpointing recomputes each layer in the backward: the same losses and adapter
// as the plain eager step (dropout masks included), and it refuses lazy execution.
TEST(Train, ActivationCheckpointingMatchesThePlainStep) {
  auto model = models::DecoderModel::load(kData + "qwen2_tied", Device::cpu(), Dtype::F32);
  lora::LoraConfig cfg;
  cfg.r = 4;
  cfg.dropout = 0.1;
  cfg.target_modules = {"all-linear"};
  auto data = repeated_patterns(8, 5);
  auto run = [&](bool checkpointing, train::ExecChoice exec) {
    lora::Adapter a = lora::Adapter::init(model, cfg, 3);
    train::TrainOptions o;
    o.steps = 3;
    o.batch_size = 4;
    o.adamw.lr = 5e-3;
    o.exec = exec;
    o.activation_checkpointing = checkpointing;
    std::vector<double> losses;
    train::train_lora(model, a, data, {}, o, [&](const train::StepMetrics& m) { losses.push_back(m.loss); });
    return std::make_pair(losses, a.parameters());
  };
  auto [plain, pp] = run(false, train::ExecChoice::Eager);
  auto [ckpt, pc] = run(true, train::ExecChoice::Eager);
  ASSERT_EQ(ckpt.size(), 3u);
  for (size_t i = 0; i < plain.size(); ++i) EXPECT_NEAR(ckpt[i], plain[i], 1e-6 * std::abs(plain[i])) << "step " << i + 1;
  for (size_t i = 0; i < pp.size(); ++i) EXPECT_LE(max(abs(pp[i] - pc[i])).item<double>(), 1e-6) << "parameter " << i;
  EXPECT_THROW(run(true, train::ExecChoice::Lazy), Error);
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
  const std::string qwen = std::string(WICK_TEST_DATA_DIR) + "/tokenizers/qwen2.5";
  auto tokenizer = tok::Tokenizer::from_file(qwen);
  auto chat_config = chat::load_chat_template_config(qwen + "/tokenizer_config.json");
  int32_t eos = *tokenizer.token_to_id("<|im_end|>");
  train::DataContext ctx{&tokenizer, &chat_config, eos};
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

namespace {

// A run interrupted after its step-4 checkpoint and resumed reproduces the uninterrupted run's
// losses step for step (same data order, RNG, optimizer moments and parameters).
TEST(Train, ResumeFromACheckpointReproducesTheUninterruptedRun) {
  auto model = models::DecoderModel::load(kData + "qwen2_tied", Device::cpu(), Dtype::F32);
  lora::LoraConfig cfg;
  cfg.target_modules = {"all-linear"};
  auto data = repeated_patterns(10, 5);
  train::TrainOptions o;
  o.steps = 10;
  o.batch_size = 3;  // epochs end mid-batch, so the data cursor matters
  o.adamw.lr = 3e-3;
  o.schedule = train::Schedule::Cosine;
  o.warmup = 2;
  o.seed = 9;
  o.checkpoint_every = 4;
  std::string base = ::testing::TempDir() + "/wick_resume_" + std::to_string(::getpid());
  std::filesystem::remove_all(base);

  std::vector<double> full;
  o.out_dir = base + "/full";
  lora::Adapter a = lora::Adapter::init(model, cfg, 3);
  train::train_lora(model, a, data, {}, o, [&](const train::StepMetrics& m) { full.push_back(m.loss); });

  o.out_dir = base + "/broken";
  lora::Adapter b = lora::Adapter::init(model, cfg, 3);
  struct Crash {};
  try {
    train::train_lora(model, b, data, {}, o, [&](const train::StepMetrics& m) {
      if (m.step == 6) throw Crash{};  // dies after checkpoint-4, before checkpoint-8
    });
  } catch (const Crash&) {
  }
  EXPECT_TRUE(std::filesystem::exists(o.out_dir + "/checkpoint-4"));
  o.resume = true;
  lora::Adapter c = lora::Adapter::init(model, cfg, 77);  // the checkpoint's values replace these
  std::vector<double> resumed;
  std::vector<int64_t> steps;
  train::train_lora(model, c, data, {}, o, [&](const train::StepMetrics& m) {
    steps.push_back(m.step);
    resumed.push_back(m.loss);
  });
  ASSERT_EQ(steps.front(), 5);
  ASSERT_EQ(resumed.size(), 6u);
  for (size_t i = 0; i < resumed.size(); ++i) EXPECT_DOUBLE_EQ(resumed[i], full[4 + i]) << "step " << steps[i];
  for (size_t i = 0; i < a.parameters().size(); ++i)
    EXPECT_EQ(max(abs(a.parameters()[i] - c.parameters()[i])).item<double>(), 0.0);
  // metrics.jsonl holds each step once, the resumed steps after the checkpoint's.
  std::ifstream metrics(o.out_dir + "/metrics.jsonl");
  int64_t expect = 1;
  for (std::string line; std::getline(metrics, line); ++expect)
    EXPECT_NE(line.find("\"step\":" + std::to_string(expect)), std::string::npos) << line;
  EXPECT_EQ(expect, 11);
  // Only the newest two checkpoints stay.
  EXPECT_FALSE(std::filesystem::exists(o.out_dir + "/checkpoint-4"));
  EXPECT_TRUE(std::filesystem::exists(o.out_dir + "/checkpoint-8"));
  EXPECT_TRUE(std::filesystem::exists(o.out_dir + "/checkpoint-10"));
  std::filesystem::remove_all(base);
}

TEST(Train, ResumeWithoutACheckpointIsAnError) {
  auto model = models::DecoderModel::load(kData + "qwen2_tied", Device::cpu(), Dtype::F32);
  lora::Adapter a = lora::Adapter::init(model, {}, 0);
  train::TrainOptions o;
  o.resume = true;
  o.out_dir = ::testing::TempDir() + "/wick_no_checkpoint";
  std::filesystem::remove_all(o.out_dir);
  try {
    train::train_lora(model, a, repeated_patterns(2, 1), {}, o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no checkpoint"), std::string::npos) << e.what();
  }
}

}  // namespace
