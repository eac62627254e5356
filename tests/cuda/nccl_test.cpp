// Data-parallel training through NCCL on the GPUs there are: a group of one rank sums in place (any
// GPU box), and with two GPUs, two ranks train exactly as one GPU with twice the batch, each rank's
// adapter the same (the equivalence tests/lora/test_data_parallel.cpp checks on the CPU with threads).
#include <thread>

#include "support/adapters.h"
#include "support/testing.h"
#include "wick/lora/adapter.h"
#include "wick/train/nccl_group.h"
#include "wick/train/trainer.h"

namespace wick {
namespace {

using namespace testing;

const std::string kModels = std::string(WICK_TEST_DATA_DIR) + "/models/";

#define WICK_REQUIRE_NCCL()                                                          \
  do {                                                                               \
    WICK_REQUIRE_GPU();                                                              \
    if (!train::nccl_available()) GTEST_SKIP() << "this build has no NCCL";          \
  } while (0)

TEST(Nccl, AGroupOfOneRankSums) {
  WICK_REQUIRE_NCCL();
  auto group = train::nccl_join(train::nccl_unique_id(), 0, 1, 0, std::chrono::seconds(60));
  std::vector<Tensor> t{Tensor::from_vector(std::vector<float>{1.f, 2.f}, {2}, Device::cuda(0)),
                        astype(Tensor::from_vector(std::vector<float>{3.f}, {1}, Device::cuda(0)), Dtype::BF16),
                        Tensor::from_vector(std::vector<float>{4.f, 5.f, 6.f}, {3}, Device::cuda(0))};
  group->all_reduce_sum(t);
  EXPECT_EQ(t[0].to_vector<float>(), (std::vector<float>{1.f, 2.f}));
  EXPECT_EQ(t[1].dtype(), Dtype::BF16);
  EXPECT_EQ(astype(t[1], Dtype::F32).to_vector<float>(), (std::vector<float>{3.f}));
  EXPECT_EQ(t[2].to_vector<float>(), (std::vector<float>{4.f, 5.f, 6.f}));
  std::vector<double> v{1.5, -2.0};
  group->all_reduce_sum(v);
  EXPECT_EQ(v, (std::vector<double>{1.5, -2.0}));
}

TEST(Nccl, TwoGpusTrainAsOneWithTwiceTheBatch) {
  WICK_REQUIRE_NCCL();
  if (cuda::device_count() < 2) GTEST_SKIP() << "needs two GPUs";
  lora::LoraConfig cfg;
  cfg.r = 4;
  cfg.target_modules = {"all-linear"};
  std::vector<train::Example> data;
  for (int i = 0; i < 8; ++i) {
    train::Example e;
    for (int k = 0; k < 9 + i % 3; ++k) e.ids.push_back(int32_t((i * 37 + k * 11) % 200));
    e.labels = e.ids;
    e.line = i + 1;
    data.push_back(e);
  }
  auto run = [&](int device, int64_t batch, train::Collective* group) {
    auto model = models::DecoderModel::load(kModels + "qwen2_tied", Device::cuda(device), Dtype::F32);
    lora::Adapter a = lora::Adapter::init(model, cfg, 3);
    a.set_parameters(wick::testing::parameters_with_random_b(a, 3, 0.05));
    train::TrainOptions o;
    o.steps = 4;
    o.batch_size = batch;
    o.adamw.lr = 3e-3;
    o.seed = 5;
    o.group = group;
    std::vector<double> losses;
    train::train_lora(model, a, data, {}, o, [&](const train::StepMetrics& m) { losses.push_back(m.loss); });
    std::vector<std::vector<float>> params;
    for (const Tensor& p : a.parameters()) params.push_back(to_device(p, Device::cpu()).to_vector<float>());
    return std::make_pair(losses, params);
  };
  auto one = run(0, 4, nullptr);
  const std::string id = train::nccl_unique_id();
  std::pair<std::vector<double>, std::vector<std::vector<float>>> ranks[2];
  std::string errors[2];
  std::vector<std::thread> workers;
  for (int r = 0; r < 2; ++r)
    workers.emplace_back([&, r] {
      try {
        auto group = train::nccl_join(id, r, 2, r, std::chrono::seconds(120));
        ranks[r] = run(r, 2, group.get());
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (std::thread& w : workers) w.join();
  ASSERT_EQ(errors[0] + errors[1], "");
  ASSERT_EQ(ranks[0].first.size(), one.first.size());
  for (size_t i = 0; i < one.first.size(); ++i) EXPECT_NEAR(ranks[0].first[i], one.first[i], 1e-4 * one.first[i]);
  for (size_t p = 0; p < one.second.size(); ++p) {
    EXPECT_EQ(ranks[0].second[p], ranks[1].second[p]) << "parameter " << p;
    for (size_t k = 0; k < one.second[p].size(); ++k)
      ASSERT_NEAR(ranks[0].second[p][k], one.second[p][k], 1e-4) << "parameter " << p << ", value " << k;
  }
}

}  // namespace
}  // namespace wick
