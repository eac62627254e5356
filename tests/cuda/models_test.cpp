// The model and LoRA parity fixtures (made by transformers and peft, see
// scripts/golden/models_golden.py) run on the GPU: f32 logits within 1e-3 and greedy tokens
// identical, bf16 logits within 2e-2, embeddings, and PEFT's gradients and AdamW losses.
#include <filesystem>

#include "support/testing.h"
#include "wick/backend/cuda/settings.h"
#include "wick/io/safetensors.h"
#include "wick/lora/adapter.h"
#include "wick/models/decoder.h"
#include "wick/models/encoder.h"
#include "wick/models/weights.h"
#include "wick/train/adamw.h"
#include "wick/train/loss.h"

namespace wick {
namespace {

Tensor on_cpu(const Tensor& x) { return to_device(x, Device::cpu()); }

const std::string kData = std::string(WICK_TEST_DATA_DIR) + "/models/";

Tensor fixture_tensor(const io::SafeTensors& file, const std::string& name, Device device) {
  const io::TensorView& v = file.get(name);
  bool integer = v.dtype == io::FileDtype::I64;
  return models::to_tensor(v, integer ? Dtype::I64 : Dtype::F32, device);
}

double relative_max_error(const Tensor& got, const Tensor& ref) {
  Tensor g = astype(on_cpu(got), Dtype::F64), r = astype(on_cpu(ref), Dtype::F64);
  return max(abs(g - r)).item<double>() / std::max(max(abs(r)).item<double>(), 1e-30);
}

class CudaDecoderParity : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaDecoderParity, LogitsF32AndBf16AndGreedyTokens) {
  WICK_REQUIRE_GPU();
  std::string dir = kData + GetParam();
  ASSERT_TRUE(std::filesystem::exists(dir + "/config.json")) << "missing fixture " << dir;
  Device gpu = Device::cuda(0);
  auto file = io::SafeTensors::open(dir + "/expected.safetensors");
  Tensor ids = fixture_tensor(file, "input_ids", gpu), ref = fixture_tensor(file, "logits", Device::cpu());
  auto f32 = models::DecoderModel::load(dir, gpu, Dtype::F32);
  EXPECT_LE(relative_max_error(f32.forward(ids), ref), 1e-3);
  auto bf16 = models::DecoderModel::load(dir, gpu, Dtype::BF16);
  EXPECT_LE(relative_max_error(bf16.forward(ids), ref), 2e-2);

  Tensor prompt = fixture_tensor(file, "prompt_ids", gpu);
  std::vector<int64_t> want = fixture_tensor(file, "greedy_ids", Device::cpu()).to_vector<int64_t>();
  models::KVCache cache = f32.make_cache(1, prompt.shape(1) + int64_t(want.size()));
  Tensor logits = f32.forward(prompt, &cache);
  std::vector<int64_t> got;
  for (size_t i = 0; i < want.size(); ++i) {
    Tensor next = argmax(narrow(logits, 1, logits.shape(1) - 1, 1), -1);
    got.push_back(next.item<int64_t>());
    logits = f32.forward(next, &cache);
  }
  EXPECT_EQ(got, want);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaDecoderParity,
                         ::testing::Values("qwen2_tied", "llama_gqa_llama3rope", "llama_untied"));

class CudaEncoderParity : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaEncoderParity, EmbeddingsF32) {
  WICK_REQUIRE_GPU();
  std::string dir = kData + GetParam();
  ASSERT_TRUE(std::filesystem::exists(dir + "/config.json")) << "missing fixture " << dir;
  Device gpu = Device::cuda(0);
  auto file = io::SafeTensors::open(dir + "/expected.safetensors");
  auto model = models::EncoderModel::load(dir, gpu, Dtype::F32);
  Tensor ids = fixture_tensor(file, "input_ids", gpu), mask = fixture_tensor(file, "attention_mask", gpu);
  Tensor hidden = model.forward(ids, mask);
  EXPECT_LE(relative_max_error(hidden, fixture_tensor(file, "last_hidden_state", Device::cpu())), 1e-3);
  Tensor emb = on_cpu(models::l2_normalize(models::pool(hidden, mask, models::Pooling::Mean)));
  Tensor want = fixture_tensor(file, "embeddings", Device::cpu());
  for (double c : sum(emb * want, {1}).to_vector<double>()) EXPECT_GE(c, 0.9999);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaEncoderParity, ::testing::Values("bert", "mpnet"));

TEST(CudaPeftParity, GradientsAndAdamWLosses) {
  WICK_REQUIRE_GPU();
  Device gpu = Device::cuda(0);
  auto base = models::DecoderModel::load(kData + "qwen2_tied", gpu, Dtype::F32);
  auto file = io::SafeTensors::open(kData + "qwen2_lora/expected.safetensors");
  lora::Adapter adapter = lora::Adapter::load(kData + "qwen2_lora/adapter", base);
  Tensor ids = fixture_tensor(file, "input_ids", gpu), labels = fixture_tensor(file, "labels", gpu);
  auto loss_of = [&](const std::vector<Tensor>& p) {
    models::LoraDeltas d = adapter.deltas(&p);
    return train::causal_lm_loss(base.forward(ids, nullptr, std::nullopt, std::nullopt, &d), labels);
  };
  models::LoraDeltas own = adapter.deltas();
  EXPECT_LE(relative_max_error(base.forward(ids, nullptr, std::nullopt, std::nullopt, &own),
                               fixture_tensor(file, "logits", Device::cpu())),
            1e-3);
  auto [loss, grads] = value_and_grad(loss_of, adapter.parameters());
  for (size_t i = 0; i < adapter.modules().size(); ++i)
    for (int which = 0; which < 2; ++which) {
      std::string name =
          "grad.base_model.model." + adapter.modules()[i] + (which ? ".lora_B.weight" : ".lora_A.weight");
      EXPECT_LE(relative_max_error(grads[2 * i + which], fixture_tensor(file, name, Device::cpu())), 1e-3) << name;
    }
  std::vector<double> want =
      astype(fixture_tensor(file, "adamw_losses", Device::cpu()), Dtype::F64).to_vector<double>();
  train::AdamW opt({.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01});
  std::vector<Tensor> params = adapter.parameters();
  for (size_t step = 0; step < want.size(); ++step) {
    auto [l, g] = value_and_grad(loss_of, params);
    EXPECT_NEAR(l.item<double>(), want[step], 1e-3 * std::abs(want[step])) << "step " << step;
    opt.step(params, g);
  }
}

// A training forward with LoRA dropout on the GPU draws the CPU's masks: the same loss and
// gradients of every LoRA parameter as the CPU backend.
TEST(CudaLoraDropout, TrainingForwardAndGradientsMatchTheCpu) {
  WICK_REQUIRE_GPU();
  cuda::set_allow_tf32(false);
  auto run = [](Device device) {
    auto base = models::DecoderModel::load(kData + "qwen2_tied", device, Dtype::F32);
    auto file = io::SafeTensors::open(kData + "qwen2_lora/expected.safetensors");
    lora::Adapter adapter = lora::Adapter::load(kData + "qwen2_lora/adapter", base);
    lora::LoraConfig cfg = adapter.config();
    cfg.dropout = 0.3;
    lora::Adapter dropped = lora::Adapter::init(base, cfg, 0);
    dropped.set_parameters(adapter.parameters());
    Tensor ids = fixture_tensor(file, "input_ids", device), labels = fixture_tensor(file, "labels", device);
    return value_and_grad(
        [&](const std::vector<Tensor>& p) {
          models::LoraDeltas d = dropped.training_deltas(p, fold_in(RandomKey{5}, 1));
          return train::causal_lm_loss(base.forward(ids, nullptr, std::nullopt, std::nullopt, &d), labels);
        },
        dropped.parameters());
  };
  auto [loss_cpu, grads_cpu] = run(Device::cpu());
  auto [loss_gpu, grads_gpu] = run(Device::cuda(0));
  EXPECT_LE(relative_max_error(loss_gpu, loss_cpu), 1e-4);
  for (size_t i = 0; i < grads_cpu.size(); ++i) EXPECT_LE(relative_max_error(grads_gpu[i], grads_cpu[i]), 1e-3) << i;
}

}  // namespace
}  // namespace wick

namespace wick {
namespace {

// The training forward as wick train runs it on the GPU (bf16 logits for the loss, layers
// checkpointed) gives the PEFT fixture's gradients, like the plain forward.
TEST(CudaTrainingForward, CheckpointedLayersAndCompactLogitsKeepTheGradients) {
  WICK_REQUIRE_GPU();
  Device gpu = Device::cuda(0);
  auto base = models::DecoderModel::load(kData + "qwen2_tied", gpu, Dtype::F32);
  auto file = io::SafeTensors::open(kData + "qwen2_lora/expected.safetensors");
  lora::Adapter adapter = lora::Adapter::load(kData + "qwen2_lora/adapter", base);
  Tensor ids = fixture_tensor(file, "input_ids", gpu), labels = fixture_tensor(file, "labels", gpu);
  for (bool ckpt : {false, true}) {
    auto [loss, grads] = value_and_grad(
        [&](const std::vector<Tensor>& p) {
          models::LoraDeltas d = adapter.deltas(&p);
          models::ForwardOptions fo{.logits_in_compute_dtype = true, .checkpoint_layers = ckpt};
          return train::causal_lm_loss(base.forward(ids, nullptr, std::nullopt, std::nullopt, &d, fo), labels);
        },
        adapter.parameters());
    for (size_t i = 0; i < adapter.modules().size(); ++i)
      for (int which = 0; which < 2; ++which) {
        std::string name =
            "grad.base_model.model." + adapter.modules()[i] + (which ? ".lora_B.weight" : ".lora_A.weight");
        EXPECT_LE(relative_max_error(grads[2 * i + which], fixture_tensor(file, name, Device::cpu())), 1e-3)
            << name << " checkpointing " << ckpt;
      }
  }
}

}  // namespace
}  // namespace wick
