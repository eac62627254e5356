// A new adapter's values: A is PEFT's Kaiming-uniform (bound 1/sqrt(in)) drawn from a generator of
// its own seeded by the seed given, B is zero; the same seed gives the same adapter, and creating
// one leaves the process's random streams where they were.
#include <gtest/gtest.h>

#include <cmath>

#include "wick/core/ops.h"
#include "wick/lora/adapter.h"

using namespace wick;

namespace {

const std::string kData = std::string(WICK_TEST_DATA_DIR) + "/models/";

TEST(AdapterInit, DrawsFromItsOwnSeededGenerator) {
  auto model = models::DecoderModel::load(kData + "qwen2_tied", Device::cpu(), Dtype::F32);
  lora::LoraConfig cfg;
  cfg.r = 4;
  cfg.target_modules = {"q_proj", "down_proj"};
  lora::Adapter a = lora::Adapter::init(model, cfg, 11);
  const std::vector<Tensor>& p = a.parameters();
  ASSERT_EQ(p.size(), 4 * size_t(model.config().num_layers));

  // A's of every module, in module order, are successive draws of one generator seeded with 11
  // (the values a default generator gives after manual_seed(11)); B's are zero.
  Generator expected(11);
  for (size_t i = 0; i < p.size(); i += 2) {
    int64_t in = p[i].shape(1);
    double bound = 1.0 / std::sqrt(double(in));
    std::vector<float> want = uniform(p[i].shape(), -bound, bound, Dtype::F32, Device::cpu(), expected).to_vector<float>();
    std::vector<float> got = p[i].to_vector<float>();
    EXPECT_EQ(got, want) << a.modules()[i / 2] << ".lora_A";
    for (float v : got) ASSERT_LE(std::abs(v), bound) << a.modules()[i / 2];
    for (float v : p[i + 1].to_vector<float>()) ASSERT_EQ(v, 0.0f) << a.modules()[i / 2] << ".lora_B";
  }
  manual_seed(11);
  EXPECT_EQ(p[0].to_vector<float>(),
            uniform(p[0].shape(), -1.0 / std::sqrt(double(p[0].shape(1))), 1.0 / std::sqrt(double(p[0].shape(1))))
                .to_vector<float>());

  // The same seed, the same adapter; another seed, another one.
  EXPECT_EQ(lora::Adapter::init(model, cfg, 11).parameters()[0].to_vector<float>(), p[0].to_vector<float>());
  EXPECT_NE(lora::Adapter::init(model, cfg, 12).parameters()[0].to_vector<float>(), p[0].to_vector<float>());

  // The default generator is not reseeded or advanced by init.
  manual_seed(5);
  std::vector<float> first = uniform({16}).to_vector<float>();
  manual_seed(5);
  lora::Adapter::init(model, cfg, 11);
  EXPECT_EQ(uniform({16}).to_vector<float>(), first);
}

}  // namespace
