// The real default models against goldens made by the reference libraries on the same files
// (scripts/golden/real_models_golden.py): SmolLM2-135M-Instruct's greedy tokens from transformers
// on the same dequantized GGUF weights.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "wick/core/autograd.h"
#include "wick/core/ops.h"
#include "wick/models/decoder.h"

using namespace wick;

namespace {

const std::string kModels = std::string(WICK_TEST_DATA_DIR) + "/../../models";

TEST(RealModels, SmolLM2GreedyTokensMatchTransformersOnTheSameWeights) {
  std::string path = kModels + "/SmolLM2-135M-Instruct.Q4_1.gguf";
  ASSERT_TRUE(std::filesystem::exists(path)) << "missing " << path << " (run scripts/fetch-models.sh models)";
  std::ifstream in(std::string(WICK_TEST_DATA_DIR) + "/models/smollm2_greedy_golden.json");
  ASSERT_TRUE(in.good()) << "missing tests/data/models/smollm2_greedy_golden.json";
  nlohmann::json golden = nlohmann::json::parse(in);
  auto model = models::DecoderModel::load_gguf(path, Device::cpu(), Dtype::F32);
  NoGradGuard no_grad;
  for (const auto& c : golden["cases"]) {
    std::vector<int64_t> prompt = c["prompt_ids"].get<std::vector<int64_t>>();
    std::vector<int64_t> want = c["greedy_ids"].get<std::vector<int64_t>>();
    models::KVCache cache = model.make_cache(1, int64_t(prompt.size() + want.size()));
    Tensor logits = model.forward(Tensor::from_vector(prompt, {1, int64_t(prompt.size())}), &cache);
    std::vector<int64_t> got;
    for (size_t i = 0; i < want.size(); ++i) {
      Tensor next = argmax(narrow(logits, 1, logits.shape(1) - 1, 1), -1);
      got.push_back(next.item<int64_t>());
      logits = model.forward(next, &cache);
    }
    EXPECT_EQ(got, want) << c["prompt"];
  }
}

}  // namespace
