// Parity of the Llama/Qwen2 decoders with Hugging Face transformers on tiny random models whose
// weights, inputs, logits and greedy continuations were written by scripts/golden/models_golden.py.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "wick/core/ops.h"
#include "wick/io/safetensors.h"
#include "wick/models/decoder.h"
#include "wick/models/generate.h"
#include "wick/models/weights.h"

using namespace wick;

namespace {

std::string fixture(const std::string& name) {
  std::string dir = std::string(WICK_TEST_DATA_DIR) + "/models/" + name;
  if (!std::filesystem::exists(dir + "/config.json"))
    ADD_FAILURE() << "missing fixture " << dir << " (regenerate with scripts/golden/models_golden.py)";
  return dir;
}

Tensor expected(const io::SafeTensors& file, const std::string& name) {
  return models::to_tensor(file.get(name), file.get(name).dtype == io::FileDtype::I64 ? Dtype::I64 : Dtype::F32,
                           Device::cpu());
}

double relative_max_error(const Tensor& got, const Tensor& ref) {
  double num = max(abs(astype(got, Dtype::F64) - astype(ref, Dtype::F64))).item<double>();
  double den = max(abs(astype(ref, Dtype::F64))).item<double>();
  return num / den;
}

class DecoderParity : public ::testing::TestWithParam<std::string> {};

TEST_P(DecoderParity, LogitsMatchTransformers) {
  std::string dir = fixture(GetParam());
  auto model = models::DecoderModel::load(dir, Device::cpu(), Dtype::F32);
  auto file = io::SafeTensors::open(dir + "/expected.safetensors");
  Tensor ids = expected(file, "input_ids");
  Tensor logits = model.forward(ids);
  Tensor ref = expected(file, "logits");
  ASSERT_EQ(logits.shape(), ref.shape());
  EXPECT_LE(relative_max_error(logits, ref), 1e-4);
}

TEST_P(DecoderParity, GreedyContinuationMatchesTransformers) {
  std::string dir = fixture(GetParam());
  auto model = models::DecoderModel::load(dir, Device::cpu(), Dtype::F32);
  auto file = io::SafeTensors::open(dir + "/expected.safetensors");
  Tensor prompt = expected(file, "prompt_ids");
  std::vector<int64_t> want = expected(file, "greedy_ids").to_vector<int64_t>();
  models::KVCache cache = model.make_cache(1, prompt.shape(1) + int64_t(want.size()));
  Tensor logits = model.forward(prompt, &cache);
  std::vector<int64_t> got;
  for (size_t i = 0; i < want.size(); ++i) {
    Tensor next = argmax(narrow(logits, 1, logits.shape(1) - 1, 1), -1);  // [1, 1]
    got.push_back(next.item<int64_t>());
    logits = model.forward(next, &cache);
  }
  EXPECT_EQ(got, want);
}

TEST_P(DecoderParity, CachedDecodingEqualsFullForward) {
  std::string dir = fixture(GetParam());
  auto model = models::DecoderModel::load(dir, Device::cpu(), Dtype::F32);
  auto file = io::SafeTensors::open(dir + "/expected.safetensors");
  Tensor ids = expected(file, "input_ids");
  Tensor full = model.forward(ids);
  models::KVCache cache = model.make_cache(ids.shape(0), ids.shape(1));
  std::vector<Tensor> steps{model.forward(narrow(ids, 1, 0, 5), &cache)};
  for (int64_t t = 5; t < ids.shape(1); ++t) steps.push_back(model.forward(narrow(ids, 1, t, 1), &cache));
  EXPECT_LE(relative_max_error(concat(steps, 1), full), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DecoderParity,
                         ::testing::Values("qwen2_tied", "llama_gqa_llama3rope", "llama_untied"));

// A config whose sizes disagree with the weights is an error naming the weight and both shapes.
TEST(DecoderErrors, ShapeMismatchNamesTheWeight) {
  std::string dir = fixture("qwen2_tied");
  std::string bad = ::testing::TempDir() + "/wick_bad_decoder";
  std::filesystem::remove_all(bad);
  std::filesystem::create_directories(bad);
  std::filesystem::copy_file(dir + "/model.safetensors", bad + "/model.safetensors");
  nlohmann::json config;
  std::ifstream(dir + "/config.json") >> config;
  config["intermediate_size"] = int64_t(config["intermediate_size"]) + 1;
  std::ofstream(bad + "/config.json") << config.dump();
  try {
    models::DecoderModel::load(bad, Device::cpu(), Dtype::F32);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("mlp.gate_proj.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("config implies"), std::string::npos) << msg;
  }
}

TEST(DecoderErrors, MissingWeightAndEmptyBatchAreNamed) {
  std::string dir = fixture("qwen2_tied");
  std::string bad = ::testing::TempDir() + "/wick_missing_weight";
  std::filesystem::remove_all(bad);
  std::filesystem::create_directories(bad);
  std::filesystem::copy_file(dir + "/config.json", bad + "/config.json");
  // A checkpoint holding only the embeddings.
  auto full = io::SafeTensors::open(dir + "/model.safetensors");
  const io::TensorView& emb = full.get("model.embed_tokens.weight");
  io::save_safetensors(bad + "/model.safetensors", {{emb.name, emb.dtype, emb.shape, emb.data, emb.nbytes}});
  try {
    models::DecoderModel::load(bad, Device::cpu(), Dtype::F32);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing weight 'model.norm.weight'"), std::string::npos) << e.what();
  }
  auto model = models::DecoderModel::load(dir, Device::cpu(), Dtype::F32);
  EXPECT_THROW(model.forward(zeros({0, 4}, Dtype::I64)), Error);
  EXPECT_THROW(models::generate_batch(model, nullptr, {}, {}), Error);
}

TEST(DecoderErrors, UnknownArchitectureIsNamed) {
  io::ModelConfig config;
  config.model_type = "gpt_neox";
  try {
    models::DecoderConfig::from_model_config(config);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gpt_neox"), std::string::npos) << e.what();
  }
}

}  // namespace

#include "wick/models/generate.h"

namespace {

// Prompts of different lengths generated together (left padding, masks, per-row positions) give
// the tokens each gives alone, greedy and seeded-sampled.
TEST(BatchedGeneration, EqualsOneByOne) {
  auto model = models::DecoderModel::load(fixture("llama_gqa_llama3rope"), Device::cpu(), Dtype::F32);
  std::vector<std::vector<int32_t>> prompts = {{5, 17, 200}, {9, 8, 7, 6, 5, 4, 3}, {100, 101, 102, 103, 104}};
  for (double temperature : {0.0, 0.9}) {
    models::GenerateOptions o;
    o.max_tokens = 12;
    o.sampling.temperature = temperature;
    o.sampling.seed = 5;
    o.eos_ids = {};
    auto together = models::generate_batch(model, nullptr, prompts, o);
    ASSERT_EQ(together.size(), prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      auto alone = models::generate_batch(model, nullptr, {prompts[i]}, o);
      EXPECT_EQ(together[i].ids, alone[0].ids) << "prompt " << i << " temperature " << temperature;
      EXPECT_EQ(together[i].ids.size(), 12u);
    }
  }
}

}  // namespace
