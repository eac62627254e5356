// What only a GPU can check of quantized weights: the graph of a product keeps the blocks (not a
// dense copy) in the GPU's memory, and a model quantized at load on the GPU gives the CPU's logits
// and LoRA gradients. The op-level checks (dequantize, products, gradients) run on every device in
// tests/ops/quantized_test.cpp.
#include <gtest/gtest.h>

#include "support/adapters.h"
#include "support/ggml_blocks.h"
#include "support/testing.h"
#include "wick/core/quantized.h"
#include "wick/lora/adapter.h"
#include "wick/models/decoder.h"
#include "wick/train/loss.h"

namespace wick {
namespace {

using namespace testing;

TEST(CudaQuantized, TheGraphHoldsTheBlocksNotADenseCopy) {
  WICK_REQUIRE_GPU();
  int64_t rows = 2048, cols = 2048;
  QuantizedMatrix w = to_device(random_blocks(ggml::GgmlType::Q4_0, rows, cols, 8), Device::cuda(0));
  Tensor x = rand({4, cols}, Dtype::BF16, -2, 2, Device::cuda(0)).t;
  cuda::synchronize(0);
  size_t before = cuda::memory_stats(0).active, during = 0;
  grad(
      [&](const std::vector<Tensor>& in) {
        Tensor y = linear(in[0], w);
        cuda::synchronize(0);
        during = cuda::memory_stats(0).active;
        return sum(astype(y, Dtype::F32));
      },
      {x});
  // A dense bf16 copy would be 8 MiB; what the forward leaves alive is far smaller.
  EXPECT_LT(during - before, size_t(rows * cols * 2) / 8) << "bytes held after the forward: " << during - before;
}

TEST(CudaQuantized, ModelQuantizedAtLoadMatchesTheCpu) {
  WICK_REQUIRE_GPU();
  std::string dir = std::string(WICK_TEST_DATA_DIR) + "/models/qwen2_tied";
  models::WeightStorage storage;
  storage.quantize = ggml::GgmlType::Q4_1;
  models::DecoderModel cpu = models::DecoderModel::load(dir, Device::cpu(), Dtype::F32, storage);
  models::DecoderModel gpu = models::DecoderModel::load(dir, Device::cuda(0), Dtype::F32, storage);
  ASSERT_TRUE(gpu.layers[0].q.is_quantized());
  Tensor ids = Tensor::from_vector(std::vector<int64_t>{3, 17, 5, 90, 41, 8, 77, 2}, {2, 4}, Device::cpu());
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{-100, 17, 5, 90, -100, 8, 77, 2}, {2, 4}, Device::cpu());
  lora::LoraConfig cfg;
  cfg.r = 4;
  cfg.target_modules = {"all-linear"};
  // One set of parameters (B random so that A gets gradients), copied to each device.
  std::vector<Tensor> init = wick::testing::parameters_with_random_b(lora::Adapter::init(cpu, cfg, 1), 1, 0.05);
  auto run = [&](const models::DecoderModel& m) {
    lora::Adapter adapter = lora::Adapter::init(m, cfg, 1);
    std::vector<Tensor> params;
    for (const Tensor& p : init) params.push_back(to_device(p, m.device()));
    return value_and_grad(
        [&](const std::vector<Tensor>& p) {
          models::LoraDeltas d = adapter.deltas(&p);
          return train::causal_lm_loss(m.forward(to_device(ids, m.device()), nullptr, std::nullopt, std::nullopt, &d),
                                       to_device(labels, m.device()));
        },
        params);
  };
  auto [loss_c, grads_c] = run(cpu);
  auto [loss_g, grads_g] = run(gpu);
  expect_tensors_close(loss_g, loss_c, Tol{1e-5, 1e-5}, "loss");
  for (size_t i = 0; i < grads_c.size(); ++i)
    expect_tensors_close(grads_g[i], grads_c[i], Tol{1e-5, 1e-3}, str_cat("gradient ", i));
}

// Loading onto the GPU places all weights in one allocation: the model costs its bytes, not one
// rounded-up block per tensor.
TEST(CudaQuantized, ModelWeightsTakeOneAllocation) {
  WICK_REQUIRE_GPU();
  std::string dir = std::string(WICK_TEST_DATA_DIR) + "/models/qwen2_tied";
  models::WeightStorage storage;
  storage.quantize = ggml::GgmlType::Q4_1;
  cuda::synchronize(0);
  cuda::empty_cache(0);  // the block comes from cudaMalloc, not a larger cached one
  size_t before = cuda::memory_stats(0).active;
  models::DecoderModel gpu = models::DecoderModel::load(dir, Device::cuda(0), Dtype::BF16, storage);
  cuda::synchronize(0);
  size_t used = cuda::memory_stats(0).active - before;
  size_t held = size_t(gpu.embed_tokens.numel() + gpu.final_norm.numel()) * 2 + size_t(gpu.inv_freq.numel()) * 4;
  for (const models::DecoderLayer& l : gpu.layers) {
    held += size_t(l.input_norm.numel() + l.post_norm.numel()) * 2;
    held += size_t(l.q_bias->numel() + l.k_bias->numel() + l.v_bias->numel()) * 2;
    for (const models::LinearWeight* w : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) held += w->nbytes();
  }
  EXPECT_EQ(gpu.layers[0].q.memory().storage(), gpu.embed_tokens.storage());
  EXPECT_EQ(gpu.layers.back().down.memory().storage(), gpu.embed_tokens.storage());
  // 256-byte alignment of each group and the allocator's 512-byte rounding, nothing per tensor.
  EXPECT_LE(used, held + 256 * (3 + 10 * gpu.layers.size()) + 512) << used << " bytes for " << held << " of weights";
}

}  // namespace
}  // namespace wick
