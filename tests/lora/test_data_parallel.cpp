// Data-parallel training through a ThreadGroup on the CPU: two ranks with batch B train exactly as
// one worker with batch 2B (losses, gradient norms, adapters), both ranks end with the same adapter,
// and a rank that fails or never arrives stops the other with an error naming it.
#include <gtest/gtest.h>

#include <chrono>
#include <exception>
#include <thread>

#include "support/adapters.h"
#include "train_fixtures.h"
#include "wick/core/ops.h"
#include "wick/lora/adapter.h"
#include "wick/train/collective.h"
#include "wick/train/trainer.h"

using namespace wick;

namespace {

const std::string kData = std::string(WICK_TEST_DATA_DIR) + "/models/";

struct Outcome {
  std::vector<train::StepMetrics> steps;
  std::vector<Tensor> params;
};

TEST(DataParallel, TwoRanksTrainAsOneWorkerWithTwiceTheBatch) {
  auto model = models::DecoderModel::load(kData + "qwen2_tied", Device::cpu(), Dtype::F32);
  lora::LoraConfig cfg;
  cfg.r = 4;
  cfg.target_modules = {"all-linear"};
  auto data = test::repeated_patterns(10, 5);
  data[3].ids.resize(9);  // uneven lengths: the ranks' target counts differ
  data[3].labels.resize(9);
  data[6].ids.resize(6);
  data[6].labels.resize(6);
  auto options = [](int64_t batch) {
    train::TrainOptions o;
    o.steps = 6;
    o.batch_size = batch;
    o.adamw.lr = 3e-3;
    o.seed = 11;  // shuffled: every rank must draw the same order
    return o;
  };
  auto fresh = [&] {
    lora::Adapter a = lora::Adapter::init(model, cfg, 7);
    a.set_parameters(wick::testing::parameters_with_random_b(a, 7, 0.05));
    return a;
  };
  Outcome one;
  {
    lora::Adapter a = fresh();
    train::train_lora(model, a, data, {}, options(4), [&](const train::StepMetrics& m) { one.steps.push_back(m); });
    one.params = a.parameters();
  }
  auto group = train::ThreadGroup::make(2);
  Outcome ranks[2];
  std::exception_ptr errors[2];
  std::vector<std::thread> workers;
  for (int r = 0; r < 2; ++r)
    workers.emplace_back([&, r] {
      try {
        lora::Adapter a = fresh();
        train::TrainOptions o = options(2);
        o.group = group[size_t(r)].get();
        train::train_lora(model, a, data, {}, o, [&](const train::StepMetrics& m) { ranks[r].steps.push_back(m); });
        ranks[r].params = a.parameters();
      } catch (...) {
        errors[r] = std::current_exception();
      }
    });
  for (std::thread& w : workers) w.join();
  for (std::exception_ptr e : errors)
    if (e) std::rethrow_exception(e);
  ASSERT_EQ(ranks[0].steps.size(), one.steps.size());
  EXPECT_TRUE(ranks[1].steps.empty()) << "only rank 0 reports";
  for (size_t i = 0; i < one.steps.size(); ++i) {
    EXPECT_NEAR(ranks[0].steps[i].loss, one.steps[i].loss, 1e-5 * std::abs(one.steps[i].loss)) << "step " << i + 1;
    EXPECT_NEAR(ranks[0].steps[i].grad_norm, one.steps[i].grad_norm, 1e-5 * one.steps[i].grad_norm) << "step " << i + 1;
    EXPECT_EQ(ranks[0].steps[i].tokens, one.steps[i].tokens) << "step " << i + 1;
  }
  ASSERT_EQ(ranks[0].params.size(), one.params.size());
  for (size_t i = 0; i < one.params.size(); ++i) {
    EXPECT_LE(max(abs(ranks[0].params[i] - one.params[i])).item<double>(), 1e-5) << "parameter " << i;
    EXPECT_EQ(ranks[0].params[i].to_vector<float>(), ranks[1].params[i].to_vector<float>()) << "parameter " << i;
  }
}

TEST(DataParallel, ARankThatFailsStopsTheOthers) {
  auto model = models::DecoderModel::load(kData + "qwen2_tied", Device::cpu(), Dtype::F32);
  lora::LoraConfig cfg;
  cfg.target_modules = {"q_proj"};
  auto data = test::repeated_patterns(4, 1);
  auto group = train::ThreadGroup::make(2, std::chrono::seconds(60));
  std::string what[2];
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int r = 0; r < 2; ++r)
    workers.emplace_back([&, r] {
      try {
        lora::Adapter a = lora::Adapter::init(model, cfg, 1);
        train::TrainOptions o;
        o.steps = 3;
        o.batch_size = 2;
        o.group = group[size_t(r)].get();
        // Rank 1 has no data: it fails before its first sum.
        train::train_lora(model, a, r == 1 ? std::vector<train::Example>{} : data, {}, o, nullptr);
      } catch (const Error& e) {
        what[r] = e.what();
      }
    });
  for (std::thread& w : workers) w.join();
  EXPECT_NE(what[1].find("no training examples"), std::string::npos) << what[1];
  EXPECT_NE(what[0].find("rank 1 stopped"), std::string::npos) << what[0];
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30)) << "rank 0 waited for its timeout";
}

TEST(DataParallel, ARankThatNeverArrivesEndsInATimeout) {
  auto group = train::ThreadGroup::make(2, std::chrono::milliseconds(300));
  std::vector<double> v{1.0};
  try {
    group[0]->all_reduce_sum(v);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank 0 waited 0.3 s"), std::string::npos) << e.what();
  }
  // The group stays stopped for everyone.
  EXPECT_THROW(group[1]->all_reduce_sum(v), Error);
}

TEST(DataParallel, SumsAddEveryRankAndShardsSplitTheBatch) {
  auto group = train::ThreadGroup::make(3);
  std::vector<double> got[3];
  std::vector<Tensor> tensors[3];
  std::vector<std::thread> workers;
  for (int r = 0; r < 3; ++r)
    workers.emplace_back([&, r] {
      got[r] = {double(r), 0.5};
      group[size_t(r)]->all_reduce_sum(got[r]);
      tensors[r] = {Tensor::from_vector(std::vector<float>{float(r), 1.f}, {2}, Device::cpu())};
      group[size_t(r)]->all_reduce_sum(tensors[r]);
    });
  for (std::thread& w : workers) w.join();
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(got[r], (std::vector<double>{3.0, 1.5}));
    EXPECT_EQ(tensors[r][0].to_vector<float>(), (std::vector<float>{3.f, 3.f}));
    EXPECT_EQ(tensors[r][0].dtype(), Dtype::F32);
  }
  EXPECT_EQ(train::shard_of(8, 1, 2).begin, 4);
  EXPECT_EQ(train::shard_of(8, 1, 2).end, 8);
  EXPECT_THROW(train::shard_of(7, 0, 2), Error);
  EXPECT_THROW(train::shard_of(8, 2, 2), Error);
}

}  // namespace
