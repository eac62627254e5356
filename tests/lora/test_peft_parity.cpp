// Parity of LoRA with PEFT on a tiny random Qwen2 (fixtures by scripts/golden/models_golden.py):
// logits with a PEFT-saved adapter (non-zero B), the causal-LM loss with -100 labels, the gradient
// of every LoRA parameter, and the losses of 5 AdamW steps (lr 1e-3, weight decay 0.01) against
// PEFT + torch.optim.AdamW.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "wick/core/autograd.h"
#include "wick/core/ops.h"
#include "wick/io/safetensors.h"
#include "wick/lora/adapter.h"
#include "wick/models/weights.h"
#include "wick/train/adamw.h"
#include "wick/train/loss.h"

using namespace wick;

namespace {

const std::string kData = std::string(WICK_TEST_DATA_DIR) + "/models/";

struct Fixture {
  models::DecoderModel base = models::DecoderModel::load(kData + "qwen2_tied", Device::cpu(), Dtype::F32);
  io::SafeTensors expected = io::SafeTensors::open(kData + "qwen2_lora/expected.safetensors");
  Tensor get(const std::string& name) const {
    const io::TensorView& v = expected.get(name);
    return models::to_tensor(v, v.dtype == io::FileDtype::I64 ? Dtype::I64 : Dtype::F64, Device::cpu());
  }
};

double relative_error(const Tensor& got, const Tensor& ref) {
  Tensor g = astype(got, Dtype::F64), r = astype(ref, Dtype::F64);
  return max(abs(g - r)).item<double>() / std::max(max(abs(r)).item<double>(), 1e-30);
}

TEST(PeftParity, LogitsWithAPeftAdapter) {
  Fixture f;
  lora::Adapter adapter = lora::Adapter::load(kData + "qwen2_lora/adapter", f.base);
  EXPECT_EQ(adapter.modules().size(), 14u);  // 2 layers x 7 projections
  models::LoraDeltas deltas = adapter.deltas();
  Tensor logits = f.base.forward(f.get("input_ids"), nullptr, std::nullopt, std::nullopt, &deltas);
  EXPECT_LE(relative_error(logits, f.get("logits")), 1e-4);
  // The adapter matters: without it the logits differ.
  EXPECT_GT(relative_error(f.base.forward(f.get("input_ids")), f.get("logits")), 1e-3);
}

TEST(PeftParity, LossAndGradientsOfEveryLoraParameter) {
  Fixture f;
  lora::Adapter adapter = lora::Adapter::load(kData + "qwen2_lora/adapter", f.base);
  Tensor ids = f.get("input_ids"), labels = f.get("labels");
  auto [loss, grads] = value_and_grad(
      [&](const std::vector<Tensor>& p) {
        models::LoraDeltas d = adapter.deltas(&p);
        return train::causal_lm_loss(f.base.forward(ids, nullptr, std::nullopt, std::nullopt, &d), labels);
      },
      adapter.parameters());
  EXPECT_NEAR(loss.item<double>(), f.get("loss").item<double>(), 1e-4 * std::abs(f.get("loss").item<double>()));
  ASSERT_EQ(grads.size(), 2 * adapter.modules().size());
  for (size_t i = 0; i < adapter.modules().size(); ++i)
    for (int which = 0; which < 2; ++which) {
      std::string name = "grad.base_model.model." + adapter.modules()[i] + (which ? ".lora_B.weight" : ".lora_A.weight");
      EXPECT_LE(relative_error(grads[2 * i + which], f.get(name)), 1e-4) << name;
    }
}

TEST(PeftParity, FiveAdamWStepsMatchTorch) {
  Fixture f;
  lora::Adapter adapter = lora::Adapter::load(kData + "qwen2_lora/adapter", f.base);
  Tensor ids = f.get("input_ids"), labels = f.get("labels");
  std::vector<double> want = f.get("adamw_losses").to_vector<double>();
  train::AdamW opt({.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01});
  std::vector<Tensor> params = adapter.parameters();
  for (size_t step = 0; step < want.size(); ++step) {
    auto [loss, grads] = value_and_grad(
        [&](const std::vector<Tensor>& p) {
          models::LoraDeltas d = adapter.deltas(&p);
          return train::causal_lm_loss(f.base.forward(ids, nullptr, std::nullopt, std::nullopt, &d), labels);
        },
        params);
    EXPECT_NEAR(loss.item<double>(), want[step], 1e-4 * std::abs(want[step])) << "step " << step;
    opt.step(params, grads);
  }
}

TEST(PeftParity, SavedAdapterRoundTrips) {
  Fixture f;
  lora::Adapter adapter = lora::Adapter::load(kData + "qwen2_lora/adapter", f.base);
  std::string dir = ::testing::TempDir() + "/wick_adapter_roundtrip";
  std::filesystem::remove_all(dir);
  adapter.save(dir, "qwen2_tied");
  lora::Adapter again = lora::Adapter::load(dir, f.base);
  ASSERT_EQ(again.modules(), adapter.modules());
  for (size_t i = 0; i < adapter.parameters().size(); ++i)
    EXPECT_EQ(relative_error(again.parameters()[i], adapter.parameters()[i]), 0.0);
  EXPECT_DOUBLE_EQ(again.config().scale(), 2.0);  // alpha 8 / r 4
}

TEST(PeftErrors, AdapterForAnotherBaseNamesTheShape) {
  Fixture f;
  models::DecoderModel other = models::DecoderModel::load(kData + "llama_gqa_llama3rope", Device::cpu(), Dtype::F32);
  try {
    lora::Adapter::load(kData + "qwen2_lora/adapter", other);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("lora_"), std::string::npos) << msg;
    EXPECT_NE(msg.find("shape"), std::string::npos) << msg;
  }
}

TEST(PeftErrors, UnknownTargetAndRankTooLarge) {
  Fixture f;
  lora::LoraConfig bad;
  bad.target_modules = {"qkv"};
  auto message = [](const auto& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  std::string m = message([&] { lora::Adapter::init(f.base, bad, 0); });
  EXPECT_NE(m.find("lora: unknown target module 'qkv'"), std::string::npos) << m;
  lora::LoraConfig big;
  big.r = 100;  // q_proj is [64, 64]
  m = message([&] { lora::Adapter::init(f.base, big, 0); });
  EXPECT_NE(m.find("lora: rank 100 is larger than"), std::string::npos) << m;
  EXPECT_NE(m.find("q_proj [64, 64]"), std::string::npos) << m;
}

}  // namespace

namespace {

// The merged model (W + scale B A, written as a Hugging Face folder) gives the logits of the base
// with the adapter; transformers loading the same folder is checked by scripts/check-peft-interop.py.
TEST(PeftMerge, MergedFolderEqualsBasePlusAdapter) {
  Fixture f;
  lora::Adapter adapter = lora::Adapter::load(kData + "qwen2_lora/adapter", f.base);
  std::string dir = ::testing::TempDir() + "/wick_merged_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  models::save_decoder(lora::merge(f.base, adapter), dir, Dtype::F32);
  auto merged = models::DecoderModel::load(dir, Device::cpu(), Dtype::F32);
  Tensor ids = f.get("input_ids");
  models::LoraDeltas d = adapter.deltas();
  Tensor want = f.base.forward(ids, nullptr, std::nullopt, std::nullopt, &d);
  EXPECT_LE(relative_error(merged.forward(ids), want), 1e-5);
  EXPECT_LE(relative_error(merged.forward(ids), f.get("logits")), 1e-4);  // and PEFT's
  EXPECT_TRUE(merged.lm_head.same(merged.embed_tokens));                   // ties kept
  std::filesystem::remove_all(dir);
}

}  // namespace
