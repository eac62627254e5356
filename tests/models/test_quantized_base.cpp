// Decoders whose linear layers stay quantized (models::WeightStorage): the real SmolLM2 GGUF kept
// as its own blocks against the same file dequantized at load (and against transformers' greedy
// tokens on those weights), LoRA gradients over the kept blocks, and a safetensors base quantized
// at load against a reference built from io's quantizer and dequantizer.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "wick/base/ggml_quants.h"
#include "wick/core/autograd.h"
#include "wick/core/ops.h"
#include "wick/lora/adapter.h"
#include "wick/models/decoder.h"
#include "wick/train/loss.h"

using namespace wick;

namespace {

const std::string kModels = std::string(WICK_TEST_DATA_DIR) + "/../../models";
const std::string kSmol = kModels + "/SmolLM2-135M-Instruct.Q4_1.gguf";

double max_abs_diff(const Tensor& a, const Tensor& b) {
  std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  EXPECT_EQ(x.size(), y.size());
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, double(std::abs(x[i] - y[i])));
  return worst;
}

std::vector<const models::LinearWeight*> projections(const models::DecoderModel& m) {
  std::vector<const models::LinearWeight*> out;
  for (const auto& l : m.layers)
    for (const models::LinearWeight* w : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) out.push_back(w);
  return out;
}

class SmolKept : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(std::filesystem::exists(kSmol)) << "missing " << kSmol << " (run scripts/fetch-models.sh models)";
    dense_ = new models::DecoderModel(models::DecoderModel::load_gguf(kSmol, Device::cpu(), Dtype::F32));
    models::WeightStorage keep;
    keep.keep_file_blocks = true;
    kept_ = new models::DecoderModel(models::DecoderModel::load_gguf(kSmol, Device::cpu(), Dtype::F32, keep));
  }
  static void TearDownTestSuite() {
    delete dense_;
    delete kept_;
  }
  static models::DecoderModel* dense_;
  static models::DecoderModel* kept_;
};
models::DecoderModel* SmolKept::dense_ = nullptr;
models::DecoderModel* SmolKept::kept_ = nullptr;

TEST_F(SmolKept, KeepsTheFilesBlocksAndTheirMemory) {
  size_t quantized = 0;
  for (const models::LinearWeight* w : projections(*kept_)) quantized += w->is_quantized();
  // Every projection of this file is Q4_1 or another block type.
  EXPECT_EQ(quantized, projections(*kept_).size());
  EXPECT_EQ(kept_->layers[0].q.blocks().type, ggml::GgmlType::Q4_1);
  // Q4_1 keeps 20 bytes per 32 values; dense f32 needs 128.
  EXPECT_LT(kept_->linear_weight_bytes() * 6, dense_->linear_weight_bytes());
  // Dequantized, the kept (q/k rows unpermuted) blocks are the dense model's weights exactly.
  for (size_t i = 0; i < 7; ++i) {
    const models::LinearWeight& k = *projections(*kept_)[i];
    EXPECT_EQ(k.to_dense(Dtype::F32).to_vector<float>(), projections(*dense_)[i]->dense().to_vector<float>()) << i;
  }
}

TEST_F(SmolKept, LogitsMatchTheModelDequantizedAtLoad) {
  NoGradGuard no_grad;
  Tensor ids = Tensor::from_vector(std::vector<int64_t>{1, 504, 3458, 314, 260, 3165, 30, 2, 9224, 17}, {2, 5});
  double diff = max_abs_diff(kept_->forward(ids), dense_->forward(ids));
  EXPECT_LE(diff, 1e-4) << "max |logit difference| " << diff;
}

TEST_F(SmolKept, GreedyTokensMatchTransformersOnTheSameWeights) {
  std::ifstream in(std::string(WICK_TEST_DATA_DIR) + "/models/smollm2_greedy_golden.json");
  ASSERT_TRUE(in.good());
  nlohmann::json golden = nlohmann::json::parse(in);
  NoGradGuard no_grad;
  for (const auto& c : golden["cases"]) {
    std::vector<int64_t> prompt = c["prompt_ids"].get<std::vector<int64_t>>();
    std::vector<int64_t> want = c["greedy_ids"].get<std::vector<int64_t>>();
    models::KVCache cache = kept_->make_cache(1, int64_t(prompt.size() + want.size()));
    Tensor logits = kept_->forward(Tensor::from_vector(prompt, {1, int64_t(prompt.size())}), &cache);
    std::vector<int64_t> got;
    for (size_t i = 0; i < want.size(); ++i) {
      Tensor next = argmax(narrow(logits, 1, logits.shape(1) - 1, 1), -1);
      got.push_back(next.item<int64_t>());
      logits = kept_->forward(next, &cache);
    }
    EXPECT_EQ(got, want) << c["prompt"];
  }
}

TEST_F(SmolKept, LoraGradientsMatchTheDenseBase) {
  lora::LoraConfig cfg;
  cfg.r = 4;
  cfg.target_modules = {"all-linear"};
  lora::Adapter adapter = lora::Adapter::init(*dense_, cfg, 3);
  // B starts at zero; a random B makes A's gradients non-zero too.
  std::vector<Tensor> params = adapter.parameters();
  std::mt19937_64 gen(7);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (size_t i = 1; i < params.size(); i += 2) {
    std::vector<float> v(size_t(params[i].numel()));
    for (float& x : v) x = normal(gen);
    params[i] = Tensor::from_vector(v, params[i].shape());
  }
  Tensor ids = Tensor::from_vector(std::vector<int64_t>{1, 504, 3458, 314, 260, 3165, 30, 2}, {1, 8});
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{-100, -100, 3458, 314, 260, 3165, 30, 2}, {1, 8});
  auto run = [&](const models::DecoderModel& base) {
    return value_and_grad(
        [&](const std::vector<Tensor>& p) {
          models::LoraDeltas d = adapter.deltas(&p);
          return train::causal_lm_loss(base.forward(ids, nullptr, std::nullopt, std::nullopt, &d), labels);
        },
        params);
  };
  auto [loss_q, grads_q] = run(*kept_);
  auto [loss_d, grads_d] = run(*dense_);
  EXPECT_NEAR(loss_q.item<double>(), loss_d.item<double>(), 1e-5);
  double worst = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    double scale = 0;
    for (float g : grads_d[i].to_vector<float>()) scale = std::max(scale, double(std::abs(g)));
    worst = std::max(worst, max_abs_diff(grads_q[i], grads_d[i]) / std::max(scale, 1e-12));
  }
  EXPECT_LE(worst, 1e-4) << "largest gradient difference relative to the tensor's largest gradient";
}

// The tiny random Qwen2 of the parity fixtures, quantized at load; the reference replaces each
// projection by io's quantize-then-dequantize of its f32 values.
TEST(QuantizedAtLoad, MatchesIoQuantizerRoundTrip) {
  std::string dir = std::string(WICK_TEST_DATA_DIR) + "/models/qwen2_tied";
  for (ggml::GgmlType type : {ggml::GgmlType::Q8_0, ggml::GgmlType::Q4_0, ggml::GgmlType::Q5_1}) {
    SCOPED_TRACE(std::string(ggml::ggml_type_name(type)));
    models::WeightStorage storage;
    storage.quantize = type;
    models::DecoderModel q = models::DecoderModel::load(dir, Device::cpu(), Dtype::F32, storage);
    models::DecoderModel ref = models::DecoderModel::load(dir, Device::cpu(), Dtype::F32);
    for (auto& l : ref.layers)
      for (models::LinearWeight* w : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) {
        std::vector<float> v = w->dense().to_vector<float>();
        std::vector<uint8_t> bytes(ggml::ggml_nbytes(type, int64_t(v.size())));
        ggml::quantize_from_f32(type, v.data(), int64_t(v.size()), bytes.data());
        ggml::dequantize_to_f32(type, bytes.data(), int64_t(v.size()), v.data());
        *w = Tensor::from_vector(v, w->shape());
      }
    ASSERT_TRUE(q.layers[0].gate.is_quantized());
    NoGradGuard no_grad;
    Tensor ids = Tensor::from_vector(std::vector<int64_t>{3, 17, 5, 90, 41, 8, 77, 2}, {2, 4});
    double diff = max_abs_diff(q.forward(ids), ref.forward(ids));
    EXPECT_LE(diff, 1e-5);
    // Quantization changed the model: the reference is not the original.
    models::DecoderModel orig = models::DecoderModel::load(dir, Device::cpu(), Dtype::F32);
    EXPECT_GT(max_abs_diff(orig.forward(ids), ref.forward(ids)), 1e-6);
  }
}

TEST(QuantizedAtLoad, BadRequestsAreNamed) {
  std::string dir = std::string(WICK_TEST_DATA_DIR) + "/models/qwen2_tied";
  auto message = [](auto f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  models::WeightStorage keep;
  keep.keep_file_blocks = true;
  EXPECT_NE(message([&] { models::DecoderModel::load(dir, Device::cpu(), Dtype::F32, keep); })
                .find("only a GGUF base has quantized blocks to keep"),
            std::string::npos);
  models::WeightStorage k_quant;
  k_quant.quantize = ggml::GgmlType::Q4_K;
  std::string m = message([&] { models::DecoderModel::load(dir, Device::cpu(), Dtype::F32, k_quant); });
  EXPECT_NE(m.find("weight 'model.layers.0.self_attn.q_proj.weight'"), std::string::npos) << m;
  EXPECT_NE(m.find("cannot quantize to Q4_K"), std::string::npos) << m;
  models::WeightStorage both = keep;
  both.quantize = ggml::GgmlType::Q8_0;
  EXPECT_NE(message([&] { models::DecoderModel::load_gguf(kSmol, Device::cpu(), Dtype::F32, both); })
                .find("exclude each other"),
            std::string::npos);
}

}  // namespace
