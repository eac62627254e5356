// The inference path on the GPU (runtime/ and its ops): the paged KV-cache ops and the
// batched-adapter LoRA op against the CPU backend (incl. contexts split across CTAs), graph
// capture and replay, and the runner: CUDA
// logits equal the CPU's, graph-replayed decoding gives the same tokens as eager decoding, and
// greedy tokens match transformers' goldens, and overlapped (programmatic-dependent) product
// launches leave every logit as serial launches give it.
#include <filesystem>
#include <numeric>
#include <random>


#include "support/smollm2_golden.h"
#include "support/testing.h"
#include "wick/backend/cuda/settings.h"
#include "wick/core/capture.h"
#include "wick/core/quantized.h"
#include "wick/io/safetensors.h"
#include "wick/lora/adapter.h"
#include "wick/models/decoder.h"
#include "wick/models/weights.h"
#include "wick/runtime/decoder_runner.h"
#include "wick/runtime/generator.h"

namespace wick {
namespace {

Tensor on_gpu(const Tensor& x) { return to_device(x, Device::cuda(0)); }
Tensor on_cpu(const Tensor& x) { return to_device(x, Device::cpu()); }
Tensor randn(const Shape& shape) { return normal(shape, 0, 1, Dtype::F32, Device::cpu()).eval(); }
using testing::Tol;
using testing::expect_tensors_close;
using testing::expect_runtime_matches_smollm2_golden;
using testing::load_smollm2_with_blocks;
using testing::smollm2_q4_1_path;

const std::string kData = std::string(WICK_TEST_DATA_DIR) + "/models/";

TEST(CudaCapture, ReplayRecomputesFromTheStaticInputs) {
  WICK_REQUIRE_GPU();
  Device gpu = Device::cuda(0);
  Tensor input = zeros({64, 32}, Dtype::F32, gpu).eval();
  Tensor w = randn({32, 16});
  Tensor wg = on_gpu(w).eval();
  CapturedGraph g = CapturedGraph::capture(gpu, [&] { return std::vector<Tensor>{softmax(matmul(input, wg) * 2.0)}; });
  for (int round = 0; round < 3; ++round) {
    Tensor x = randn({64, 32});
    copy_into(input, on_gpu(x));
    g.replay();
    expect_tensors_close(on_cpu(g.outputs()[0]), softmax(matmul(x, w) * 2.0), Tol{1e-5, 1e-5}, str_cat("round ", round));
  }
}

runtime::RunnerOptions options(bool graphs) {
  runtime::RunnerOptions o;
  o.max_batch = 8;
  o.max_context = 128;
  o.block_size = 16;
  o.cuda_graphs = graphs;
  o.max_loras = 2;
  o.max_lora_rank = 8;
  return o;
}

TEST(CudaRunner, LogitsMatchTheCpuRunnerWithAndWithoutAdapters) {
  WICK_REQUIRE_GPU();
  std::string dir = kData + "qwen2_tied";
  auto cpu_model = models::DecoderModel::load(dir, Device::cpu(), Dtype::F32);
  auto gpu_model = models::DecoderModel::load(dir, Device::cuda(0), Dtype::F32);
  lora::Adapter cpu_adapter = lora::Adapter::load(kData + "qwen2_lora/adapter", cpu_model);
  lora::Adapter gpu_adapter = lora::Adapter::load(kData + "qwen2_lora/adapter", gpu_model);
  runtime::DecoderRunner cpu(cpu_model, options(false)), gpu(gpu_model, options(false));
  int cs = cpu.adapters().load("a", cpu_adapter.deltas()), gs = gpu.adapters().load("a", gpu_adapter.deltas());
  std::vector<int32_t> p0{3, 1, 4, 1, 5, 9, 2, 6, 5, 3}, p1{2, 7, 1, 8};
  std::vector<std::vector<int32_t>> cb(2), gb(2);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(cpu.blocks().allocate(1, cb[i]));
    ASSERT_TRUE(gpu.blocks().allocate(1, gb[i]));
  }
  Tensor want = cpu.step({{&cb[0], 0, p0, cs}, {&cb[1], 0, p1, -1}});
  Tensor got = gpu.step({{&gb[0], 0, p0, gs}, {&gb[1], 0, p1, -1}});
  expect_tensors_close(on_cpu(got), want, Tol{1e-3, 1e-3}, "runner logits, cuda vs cpu");
}

// Projections whose parts differ in type (v in Q8_0, up in Q4_0, the rest f32) run as several
// products whose outputs are cut into the parts (joined first for the rows' adapters): the GPU's
// logits equal the CPU runner's, with and without an adapter, eager and graph-replayed.
TEST(CudaRunner, PartsOfDifferentTypesMatchTheCpuRunner) {
  WICK_REQUIRE_GPU();
  std::string dir = kData + "qwen2_tied";
  auto mixed = [&](Device device) {
    auto model = models::DecoderModel::load(dir, device, Dtype::F32);
    for (models::DecoderLayer& l : model.layers) {
      l.v = to_device(quantize(on_cpu(l.v.dense()), ggml::GgmlType::Q8_0), device);
      l.up = to_device(quantize(on_cpu(l.up.dense()), ggml::GgmlType::Q4_0), device);
    }
    return model;
  };
  auto cpu_model = mixed(Device::cpu());
  lora::Adapter cpu_adapter = lora::Adapter::load(kData + "qwen2_lora/adapter", cpu_model);
  runtime::DecoderRunner cpu(cpu_model, options(false));
  int cs = cpu.adapters().load("a", cpu_adapter.deltas());
  std::vector<int32_t> p0{3, 1, 4, 1, 5, 9, 2, 6, 5, 3}, p1{2, 7, 1, 8}, next{42};
  std::vector<std::vector<int32_t>> cb(2);
  for (auto& b : cb) ASSERT_TRUE(cpu.blocks().allocate(1, b));
  Tensor want_prefill = cpu.step({{&cb[0], 0, p0, cs}, {&cb[1], 0, p1, -1}});
  Tensor want_decode = cpu.step({{&cb[0], 10, next, cs}, {&cb[1], 4, next, -1}});
  for (bool graphs : {false, true}) {
    auto gpu_model = mixed(Device::cuda(0));
    lora::Adapter gpu_adapter = lora::Adapter::load(kData + "qwen2_lora/adapter", gpu_model);
    runtime::DecoderRunner gpu(gpu_model, options(graphs));
    int gs = gpu.adapters().load("a", gpu_adapter.deltas());
    std::vector<std::vector<int32_t>> gb(2);
    for (auto& b : gb) ASSERT_TRUE(gpu.blocks().allocate(1, b));
    Tensor got_prefill = gpu.step({{&gb[0], 0, p0, gs}, {&gb[1], 0, p1, -1}});
    expect_tensors_close(on_cpu(got_prefill), want_prefill, Tol{1e-3, 1e-3}, str_cat("prefill, graphs ", graphs));
    Tensor got_decode = gpu.step({{&gb[0], 10, next, gs}, {&gb[1], 4, next, -1}});
    expect_tensors_close(on_cpu(got_decode), want_decode, Tol{1e-3, 1e-3}, str_cat("decode, graphs ", graphs));
  }
}

TEST(CudaRunner, GraphReplayedDecodingEqualsEagerAndTransformers) {
  WICK_REQUIRE_GPU();
  std::string dir = kData + "qwen2_tied";
  auto file = io::SafeTensors::open(dir + "/expected.safetensors");
  std::vector<int64_t> p64 = models::to_tensor(file.get("prompt_ids"), Dtype::I64, Device::cpu()).to_vector<int64_t>();
  std::vector<int64_t> g64 = models::to_tensor(file.get("greedy_ids"), Dtype::I64, Device::cpu()).to_vector<int64_t>();
  std::vector<int32_t> prompt(p64.begin(), p64.end()), golden(g64.begin(), g64.end());
  std::vector<std::vector<int32_t>> results;
  for (bool graphs : {false, true}) {
    auto model = models::DecoderModel::load(dir, Device::cuda(0), Dtype::F32);
    runtime::DecoderRunner runner(model, options(graphs));
    std::vector<runtime::GenerationJob> jobs;
    for (int i = 0; i < 3; ++i) {  // 3 rows: padded to the 4-row bucket
      runtime::GenerationJob job;
      job.prompt = prompt;
      if (i > 0) job.prompt.push_back(int32_t(10 + i));  // rows of different lengths
      job.options.max_tokens = 64;
      job.options.sampling.temperature = 0;
      jobs.push_back(job);
    }
    auto out = runtime::generate(runner, nullptr, jobs);
    for (const auto& r : out) results.push_back(r.ids);
  }
  for (int i = 0; i < 3; ++i) EXPECT_EQ(results[i], results[3 + i]) << "row " << i << ": graphs vs eager";
  EXPECT_EQ(std::vector<int32_t>(results[3].begin(), results[3].begin() + golden.size()), golden);
}

TEST(CudaRunner, SmolLM2QuantizedGreedyTokensMatchTransformers) {
  WICK_REQUIRE_GPU();
  std::string path = smollm2_q4_1_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "missing " << path;
  models::DecoderModel model = load_smollm2_with_blocks(Device::cuda(0));
  expect_runtime_matches_smollm2_golden(model);
}

// Skinny products launched as programmatic dependents start before the kernel that writes their
// activations has finished; if one read them before its grid-dependency wait, it would see the
// previous step's values. The same teacher-forced decode with graphs, overlapped and serial, must
// agree bit for bit: f32 weights (the dense path) and Q4_0 blocks with bf16 activations (the staged
// tensor-core path).
TEST(CudaRunner, OverlappedProductLaunchesLeaveTheLogitsUnchanged) {
  WICK_REQUIRE_GPU();
  const bool initial = cuda::overlapped_products();
  for (bool quantized : {false, true}) {
    models::WeightStorage storage;
    if (quantized) storage.quantize = ggml::GgmlType::Q4_0;
    auto model = models::DecoderModel::load(kData + "qwen2_tied", Device::cuda(0), quantized ? Dtype::BF16 : Dtype::F32,
                                            storage);
    std::vector<std::vector<float>> logits[2];
    for (int overlapped = 0; overlapped < 2; ++overlapped) {
      cuda::set_overlapped_products(overlapped == 1);
      runtime::DecoderRunner runner(model, options(true));
      std::vector<int32_t> blocks;
      ASSERT_TRUE(runner.blocks().allocate(4, blocks));
      std::vector<int32_t> prompt{3, 1, 4, 1, 5, 9, 2, 6, 5, 3};
      int64_t pos = 0;
      Tensor out = runner.step({{&blocks, pos, prompt, -1}});
      pos += int64_t(prompt.size());
      for (int step = 0; step < 40; ++step) {
        logits[overlapped].push_back(on_cpu(astype(out, Dtype::F32)).to_vector<float>());
        std::vector<int32_t> next{int32_t((7 + 37 * step) % 256)};
        out = runner.step({{&blocks, pos++, next, -1}});
      }
      logits[overlapped].push_back(on_cpu(astype(out, Dtype::F32)).to_vector<float>());
    }
    cuda::set_overlapped_products(initial);
    ASSERT_EQ(logits[0].size(), logits[1].size());
    for (size_t i = 0; i < logits[0].size(); ++i)
      EXPECT_EQ(logits[0][i], logits[1][i]) << (quantized ? "Q4_0" : "f32") << ", step " << i;
  }
}

}  // namespace
}  // namespace wick
