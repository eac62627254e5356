// Parity of the BERT and MPNet encoders with Hugging Face transformers on tiny random models
// (fixtures written by scripts/golden/models_golden.py): hidden states and mean-pooled,
// normalised embeddings.
#include <gtest/gtest.h>

#include <filesystem>

#include "wick/core/ops.h"
#include "wick/io/safetensors.h"
#include "wick/models/encoder.h"
#include "wick/models/weights.h"

using namespace wick;

namespace {

class EncoderParity : public ::testing::TestWithParam<std::string> {};

TEST_P(EncoderParity, HiddenStatesAndEmbeddingsMatchTransformers) {
  std::string dir = std::string(WICK_TEST_DATA_DIR) + "/models/" + GetParam();
  ASSERT_TRUE(std::filesystem::exists(dir + "/config.json"))
      << "missing fixture " << dir << " (regenerate with scripts/golden/models_golden.py)";
  auto model = models::EncoderModel::load(dir, Device::cpu(), Dtype::F32);
  auto file = io::SafeTensors::open(dir + "/expected.safetensors");
  auto get = [&](const char* name, Dtype dtype) { return models::to_tensor(file.get(name), dtype, Device::cpu()); };
  Tensor ids = get("input_ids", Dtype::I64), mask = get("attention_mask", Dtype::I64);
  Tensor hidden = model.forward(ids, mask);
  Tensor ref = get("last_hidden_state", Dtype::F32);
  ASSERT_EQ(hidden.shape(), ref.shape());
  // Padded positions are compared too: transformers computes them the same way.
  double err = max(abs(hidden - ref)).item<double>() / max(abs(ref)).item<double>();
  EXPECT_LE(err, 1e-4);
  Tensor emb = models::l2_normalize(models::pool(hidden, mask, models::Pooling::Mean));
  Tensor want = get("embeddings", Dtype::F32);
  std::vector<double> cos = sum(emb * want, {1}).to_vector<double>();
  for (double c : cos) EXPECT_GE(c, 0.99999);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, EncoderParity, ::testing::Values("bert", "mpnet"));

TEST(EncoderErrors, TooLongInputIsAClearError) {
  std::string dir = std::string(WICK_TEST_DATA_DIR) + "/models/bert";
  ASSERT_TRUE(std::filesystem::exists(dir + "/config.json")) << "missing fixture " << dir;
  auto model = models::EncoderModel::load(dir, Device::cpu(), Dtype::F32);
  int64_t t = model.config().max_position_embeddings + 1;
  Tensor ids = ones({1, t}, Dtype::I64), mask = ones({1, t}, Dtype::I64);
  try {
    model.forward(ids, mask);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exceed"), std::string::npos) << e.what();
  }
}

}  // namespace
