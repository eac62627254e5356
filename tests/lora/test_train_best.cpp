// What the training loop keeps and when it stops: the best validation's adapter (out/best, its
// checkpoint spared by pruning, restored on resume), early stopping (also after a resume), the
// loss curve, and a loss that is not finite stopping the run with the last good checkpoint intact.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "wick/core/ops.h"
#include "wick/lora/adapter.h"
#include "wick/train/trainer.h"
#include "train_fixtures.h"

using namespace wick;
namespace fs = std::filesystem;

namespace {

using test::repeated_patterns;

const std::string kModels = std::string(WICK_TEST_DATA_DIR) + "/models/";

models::DecoderModel tiny_model() { return models::DecoderModel::load(kModels + "qwen2_tied", Device::cpu(), Dtype::F32); }


// The same inputs with other targets: the better the model learns `train`, the worse its loss on
// these, so the first validation pass is the best one.
std::vector<train::Example> contradicting(std::vector<train::Example> rows, uint64_t seed) {
  std::mt19937 rng(seed);
  for (auto& e : rows)
    for (auto& l : e.labels) l = int32_t(rng() % 256);
  return rows;
}

std::string fresh_dir(const std::string& name) {
  std::string dir = ::testing::TempDir() + "/wick_" + name + "_" + std::to_string(getpid());
  fs::remove_all(dir);
  return dir;
}

std::vector<nlohmann::json> metrics_of(const std::string& dir) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

nlohmann::json json_file(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "missing " << path;
  return nlohmann::json::parse(in, nullptr, false);
}

// Points of the training polyline of out/loss.svg.
size_t plotted_steps(const std::string& dir) {
  std::ifstream in(dir + "/loss.svg");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string svg = ss.str();
  size_t at = svg.find("<polyline class=\"train\"");
  if (at == std::string::npos) return 0;
  size_t p = svg.find("points=\"", at) + 8;
  std::stringstream points(svg.substr(p, svg.find('"', p) - p));
  size_t n = 0;
  for (std::string xy; points >> xy;) ++n;
  return n;
}

lora::LoraConfig config() {
  lora::LoraConfig cfg;
  cfg.r = 4;
  cfg.target_modules = {"all-linear"};
  return cfg;
}

train::TrainOptions options(const std::string& out) {
  train::TrainOptions o;
  o.steps = 10;
  o.batch_size = 4;
  o.adamw.lr = 5e-3;
  o.shuffle = false;
  o.eval_every = 2;
  o.out_dir = out;
  return o;
}

TEST(TrainBest, BestAdapterIsWrittenAndItsCheckpointSurvivesPruning) {
  auto model = tiny_model();
  auto data = repeated_patterns(8, 2), val = contradicting(data, 3);
  std::string out = fresh_dir("best");
  train::TrainOptions o = options(out);
  o.checkpoint_every = 2;
  o.keep_checkpoints = 2;
  lora::Adapter a = lora::Adapter::init(model, config(), 1);
  std::vector<train::StepMetrics> seen;
  train::TrainResult r = train::train_lora(model, a, data, val, o, [&](const train::StepMetrics& m) { seen.push_back(m); });
  ASSERT_EQ(seen.size(), 10u);
  // The fixture's premise: validation gets worse after the first pass.
  for (int s : {4, 6, 8, 10}) ASSERT_GT(seen[s - 1].val_loss, seen[1].val_loss) << "step " << s;
  EXPECT_EQ(r.best_step, 2);
  EXPECT_DOUBLE_EQ(r.best_val_loss, seen[1].val_loss);
  EXPECT_FALSE(r.stopped_early);
  for (const auto& m : seen) EXPECT_EQ(m.best, m.step == 2) << "step " << m.step;
  // metrics.jsonl marks the best pass and keeps its fields otherwise.
  auto rows = metrics_of(out);
  ASSERT_EQ(rows.size(), 10u);
  for (const auto& j : rows) {
    int64_t step = j["step"];
    EXPECT_EQ(j.contains("best"), step == 2) << j.dump();
    for (const char* key : {"step", "loss", "lr", "grad_norm", "tokens", "tokens_per_second"}) EXPECT_TRUE(j.contains(key)) << key;
    EXPECT_EQ(j.contains("val_loss"), step % 2 == 0) << j.dump();
  }
  // best/ holds the step-2 adapter: its validation loss is the one reported at step 2.
  nlohmann::json info = json_file(out + "/best/best.json");
  EXPECT_EQ(info["step"], 2);
  EXPECT_DOUBLE_EQ(info["val_loss"].get<double>(), seen[1].val_loss);
  lora::Adapter best = lora::Adapter::load(out + "/best", model);
  EXPECT_NEAR(train::evaluate_loss(model, best, val, o.batch_size), seen[1].val_loss, 1e-6);
  EXPECT_FALSE(fs::exists(out + "/best.tmp"));
  EXPECT_FALSE(fs::exists(out + "/best.old"));
  // The two newest checkpoints, and the best step's.
  EXPECT_TRUE(fs::exists(out + "/checkpoint-2"));
  EXPECT_FALSE(fs::exists(out + "/checkpoint-4"));
  EXPECT_FALSE(fs::exists(out + "/checkpoint-6"));
  EXPECT_TRUE(fs::exists(out + "/checkpoint-8"));
  EXPECT_TRUE(fs::exists(out + "/checkpoint-10"));
  EXPECT_EQ(plotted_steps(out), 10u);
  fs::remove_all(out);
}

TEST(TrainBest, EarlyStoppingStopsAfterPatienceAndAResumedRunStopsAlike) {
  auto model = tiny_model();
  auto data = repeated_patterns(8, 2), val = contradicting(data, 3);
  std::string base = fresh_dir("early");
  train::TrainOptions o = options(base + "/full");
  o.steps = 20;
  o.checkpoint_every = 4;
  o.keep_checkpoints = 10;
  o.early_stopping_patience = 2;
  lora::Adapter a = lora::Adapter::init(model, config(), 1);
  std::vector<double> full;
  train::TrainResult r = train::train_lora(model, a, data, val, o, [&](const train::StepMetrics& m) { full.push_back(m.loss); });
  // Passes at 2 (best), 4 and 6 (no improvement): stops after step 6.
  EXPECT_TRUE(r.stopped_early);
  EXPECT_EQ(r.steps, 6);
  EXPECT_EQ(full.size(), 6u);
  EXPECT_EQ(r.best_step, 2);
  EXPECT_NE(r.stop_reason.find("early stopping"), std::string::npos) << r.stop_reason;
  EXPECT_NE(r.stop_reason.find("(step 2)"), std::string::npos) << r.stop_reason;
  EXPECT_NE(r.stop_reason.find("in 2 validation passes"), std::string::npos) << r.stop_reason;
  EXPECT_EQ(metrics_of(o.out_dir).size(), 6u);
  EXPECT_TRUE(fs::exists(o.out_dir + "/checkpoint-6"));  // the stop writes a checkpoint as the last step does
  EXPECT_EQ(plotted_steps(o.out_dir), 6u);

  // Interrupted after checkpoint-4 and resumed: the restored best loss and count of passes without
  // improvement stop it at step 6 again (a fresh count would run on).
  o.out_dir = base + "/resumed";
  struct Crash {};
  lora::Adapter b = lora::Adapter::init(model, config(), 1);
  EXPECT_THROW(train::train_lora(model, b, data, val, o,
                                 [&](const train::StepMetrics& m) {
                                   if (m.step == 5) throw Crash{};
                                 }),
               Crash);
  EXPECT_EQ(plotted_steps(o.out_dir), 5u);  // the picture is written when the run dies too
  fs::copy(o.out_dir, base + "/old_state", fs::copy_options::recursive);
  o.resume = true;
  lora::Adapter c = lora::Adapter::init(model, config(), 1);
  std::vector<int64_t> steps;
  r = train::train_lora(model, c, data, val, o, [&](const train::StepMetrics& m) {
    steps.push_back(m.step);
    if (size_t(m.step) <= full.size()) EXPECT_DOUBLE_EQ(m.loss, full[size_t(m.step - 1)]) << "step " << m.step;
  });
  EXPECT_EQ(steps, (std::vector<int64_t>{5, 6}));
  EXPECT_TRUE(r.stopped_early);
  EXPECT_EQ(r.best_step, 2);
  EXPECT_EQ(json_file(o.out_dir + "/best/best.json")["step"], 2);
  EXPECT_EQ(plotted_steps(o.out_dir), 6u);  // the checkpoint's steps from metrics.jsonl and the resumed ones
  // Resuming the stopped run does nothing more.
  steps.clear();
  r = train::train_lora(model, c, data, val, o, [&](const train::StepMetrics& m) { steps.push_back(m.step); });
  EXPECT_TRUE(steps.empty());
  EXPECT_TRUE(r.stopped_early);
  EXPECT_EQ(r.steps, 6);

  // A state written before best tracking (no best fields) still resumes; tracking starts afresh.
  o.out_dir = base + "/old_state";
  std::string state_path = o.out_dir + "/checkpoint-4/trainer_state.json";
  nlohmann::json state = json_file(state_path);
  ASSERT_TRUE(state.contains("best_step") && state.contains("best_val_loss") && state.contains("evals_since_best"));
  state.erase("best_step");
  state.erase("best_val_loss");
  state.erase("evals_since_best");
  std::ofstream(state_path) << state.dump();
  lora::Adapter d = lora::Adapter::init(model, config(), 1);
  steps.clear();
  r = train::train_lora(model, d, data, val, o, [&](const train::StepMetrics& m) { steps.push_back(m.step); });
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(steps.front(), 5);
  EXPECT_EQ(r.best_step, 6);  // the first pass after the resume is the best it knows
  EXPECT_EQ(steps.back(), 10);  // then passes 8 and 10 do not improve
  fs::remove_all(base);
}

TEST(TrainBest, EarlyStoppingNeedsValidationPasses) {
  auto model = tiny_model();
  auto data = repeated_patterns(4, 2);
  lora::Adapter a = lora::Adapter::init(model, config(), 1);
  train::TrainOptions o;
  o.steps = 2;
  o.early_stopping_patience = 1;
  o.eval_every = 1;
  auto error_of = [&](const std::vector<train::Example>& val) {
    try {
      train::train_lora(model, a, data, val, o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  std::string e = error_of({});
  EXPECT_NE(e.find("--early-stopping-patience"), std::string::npos) << e;
  EXPECT_NE(e.find("--validation"), std::string::npos) << e;
  o.eval_every = 0;
  e = error_of(data);
  EXPECT_NE(e.find("--early-stopping-patience"), std::string::npos) << e;
  EXPECT_NE(e.find("--eval-every"), std::string::npos) << e;
}

// A huge learning rate behind a long warm-up: step 1 has rate 0, step 2 a huge one, so the loss of
// step 3 overflows.
train::TrainOptions exploding(const std::string& out) {
  train::TrainOptions o;
  o.steps = 6;
  o.batch_size = 4;
  o.adamw.lr = 1e30;
  o.warmup = 1000;
  o.checkpoint_every = 1;
  o.keep_checkpoints = 10;
  o.out_dir = out;
  return o;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(TrainBadLoss, LossThatIsNotFiniteStopsAndKeepsTheLastGoodCheckpoint) {
  auto model = tiny_model();
  auto data = repeated_patterns(8, 2);
  std::string out = fresh_dir("nan");
  train::TrainOptions o = exploding(out);
  lora::Adapter a = lora::Adapter::init(model, config(), 1);
  std::vector<int64_t> steps;
  std::string e = error_of([&] { train::train_lora(model, a, data, {}, o, [&](const train::StepMetrics& m) { steps.push_back(m.step); }); });
  EXPECT_EQ(e.rfind("train: the loss became NaN at step 3;", 0), 0u) << e;
  EXPECT_NE(e.find("stopped before its update"), std::string::npos) << e;
  EXPECT_NE(e.find("the last checkpoint is " + out + "/checkpoint-2"), std::string::npos) << e;
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(fs::exists(out + "/checkpoint-1"));
  EXPECT_FALSE(fs::exists(out + "/checkpoint-3"));
  lora::Adapter last = lora::Adapter::load(out + "/checkpoint-2", model);
  for (const Tensor& p : last.parameters()) EXPECT_TRUE(std::isfinite(max(abs(p)).item<double>()));
  auto rows = metrics_of(out);
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& j : rows) EXPECT_TRUE(std::isfinite(j["loss"].get<double>()));
  EXPECT_EQ(plotted_steps(out), 2u);
  // The run resumes from that checkpoint (and fails again at step 3: the rate is still too high).
  o.resume = true;
  e = error_of([&] { train::train_lora(model, a, data, {}, o); });
  EXPECT_NE(e.find("at step 3;"), std::string::npos) << e;
  fs::remove_all(out);
}

TEST(TrainBadLoss, ValidationLossThatIsNotFiniteKeepsTheBestAdapter) {
  auto model = tiny_model();
  auto data = repeated_patterns(8, 2);
  std::string out = fresh_dir("nan_val");
  train::TrainOptions o = exploding(out);
  o.eval_every = 1;
  lora::Adapter a = lora::Adapter::init(model, config(), 1);
  std::vector<train::StepMetrics> seen;
  std::string e = error_of([&] { train::train_lora(model, a, data, data, o, [&](const train::StepMetrics& m) { seen.push_back(m); }); });
  // Step 2's update breaks the adapter; its validation pass finds out before it is saved.
  EXPECT_EQ(e.rfind("train: the validation loss became NaN after the update of step 2;", 0), 0u) << e;
  EXPECT_NE(e.find("the last checkpoint is " + out + "/checkpoint-1"), std::string::npos) << e;
  EXPECT_NE(e.find("the best adapter (step 1) is " + out + "/best"), std::string::npos) << e;
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].best);
  EXPECT_TRUE(fs::exists(out + "/checkpoint-1"));
  EXPECT_FALSE(fs::exists(out + "/checkpoint-2"));
  EXPECT_EQ(json_file(out + "/best/best.json")["step"], 1);
  lora::Adapter best = lora::Adapter::load(out + "/best", model);
  EXPECT_NEAR(train::evaluate_loss(model, best, data, 4), seen[0].val_loss, 1e-6);
  auto rows = metrics_of(out);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_TRUE(rows[1]["val_loss"].is_null());  // JSON has no NaN
  EXPECT_EQ(plotted_steps(out), 2u);
  fs::remove_all(out);
}

}  // namespace
