// Quantized weight matrices on the GPU against the CPU backend: every block type dequantizes to
// the same bits, products and input gradients agree, the graph keeps only the blocks, and a model
// quantized at load gives the CPU's logits and LoRA gradients.
#include <gtest/gtest.h>

#include "core/ggml_blocks.h"
#include "cuda_test_util.h"
#include "wick/core/quantized.h"
#include "wick/lora/adapter.h"
#include "wick/models/decoder.h"
#include "wick/train/loss.h"

namespace wick::test {
namespace {

using testing::block_types;
using testing::random_blocks;

int64_t cols_for(io::GgmlType type) { return io::ggml_type_info(type).block_size * 3; }

TEST(CudaQuantized, DequantizeGivesTheCpuBitsForEveryType) {
  WICK_REQUIRE_GPU();
  for (io::GgmlType type : block_types()) {
    SCOPED_TRACE(std::string(io::ggml_type_name(type)));
    QuantizedMatrix w = random_blocks(type, 37, cols_for(type), 3);
    QuantizedMatrix g = to_device(w, Device::cuda(0));
    for (Dtype dtype : {Dtype::F32, Dtype::BF16, Dtype::F16}) {
      Tensor want = dequantize(w, dtype), got = on_cpu(dequantize(g, dtype));
      std::vector<uint8_t> a(size_t(want.numel()) * want.itemsize()), b(a.size());
      copy_to_host(want, a.data());
      copy_to_host(got, b.data());
      EXPECT_EQ(a, b) << dtype_name(dtype);
    }
  }
}

TEST(CudaQuantized, LinearAndInputGradientMatchTheCpu) {
  WICK_REQUIRE_GPU();
  for (io::GgmlType type : {io::GgmlType::Q4_0, io::GgmlType::Q8_0, io::GgmlType::Q3_K, io::GgmlType::Q6_K}) {
    QuantizedMatrix w = random_blocks(type, 48, cols_for(type), 5);
    QuantizedMatrix g = to_device(w, Device::cuda(0));
    for (Dtype dtype : {Dtype::F32, Dtype::BF16}) {
      SCOPED_TRACE(std::string(io::ggml_type_name(type)) + " " + dtype_name(dtype));
      Tensor x = randn({2, 9, cols_for(type)}, dtype);
      auto f = [&](const std::vector<Tensor>& in) { return linear(in[0], in[0].device().is_cuda() ? g : w); };
      // 18 rows take the skinny kernel, which multiplies by the exact dequantized weights as the CPU
      // does in f32; the CPU's bf16 path rounds the dequantized matrix to bf16 first, so the forward
      // reference is the CPU's f32 product rounded once. K-quant values reach the hundreds: f32 sums
      // of such products differ in their last bits between summation orders, hence the absolute terms.
      Tensor want = astype(linear(astype(x, Dtype::F32), w), dtype);
      EXPECT_TRUE(close(on_cpu(linear(on_gpu(x), g)), want, dtype == Dtype::F32 ? Tol{2e-5, 2e-3} : tol_for(dtype)));
      EXPECT_TRUE(same_grads_on_gpu(f, {x}, grad_tol(dtype, {1e-4, 2e-3})));
    }
  }
}

TEST(CudaQuantized, TheGraphHoldsTheBlocksNotADenseCopy) {
  WICK_REQUIRE_GPU();
  int64_t rows = 2048, cols = 2048;
  QuantizedMatrix w = to_device(random_blocks(io::GgmlType::Q4_0, rows, cols, 8), Device::cuda(0));
  Tensor x = on_gpu(randn({4, cols}, Dtype::BF16));
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
  storage.quantize = io::GgmlType::Q4_1;
  models::DecoderModel cpu = models::DecoderModel::load(dir, Device::cpu(), Dtype::F32, storage);
  models::DecoderModel gpu = models::DecoderModel::load(dir, Device::cuda(0), Dtype::F32, storage);
  ASSERT_TRUE(gpu.layers[0].q.is_quantized());
  Tensor ids = Tensor::from_vector(std::vector<int64_t>{3, 17, 5, 90, 41, 8, 77, 2}, {2, 4});
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{-100, 17, 5, 90, -100, 8, 77, 2}, {2, 4});
  lora::LoraConfig cfg;
  cfg.r = 4;
  cfg.target_modules = {"all-linear"};
  // One set of parameters (B random so that A gets gradients), copied to each device.
  std::vector<Tensor> init = lora::Adapter::init(cpu, cfg, 1).parameters();
  for (size_t i = 1; i < init.size(); i += 2) init[i] = randn(init[i].shape(), Dtype::F32, 0.05);
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
  EXPECT_TRUE(close(on_cpu(loss_g), loss_c, {1e-5, 1e-5}));
  for (size_t i = 0; i < grads_c.size(); ++i) EXPECT_TRUE(close(on_cpu(grads_g[i]), grads_c[i], {1e-3, 1e-5})) << i;
}

}  // namespace
}  // namespace wick::test
