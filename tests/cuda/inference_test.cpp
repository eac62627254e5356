// The inference path on the GPU (runtime/ and its ops): the paged KV-cache ops and the
// batched-adapter LoRA op against the CPU backend (incl. contexts split across CTAs), graph
// capture and replay, and the runner: CUDA
// logits equal the CPU's, graph-replayed decoding gives the same tokens as eager decoding, and
// greedy tokens match transformers' goldens.
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include <nlohmann/json.hpp>

#include "cuda_test_util.h"
#include "wick/core/capture.h"
#include "wick/io/safetensors.h"
#include "wick/lora/adapter.h"
#include "wick/models/decoder.h"
#include "wick/models/weights.h"
#include "wick/runtime/decoder_runner.h"
#include "wick/runtime/generator.h"

namespace wick::test {
namespace {

const std::string kData = std::string(WICK_TEST_DATA_DIR) + "/models/";

Tensor random_tables(int64_t rows, int64_t width, int64_t num_blocks, uint32_t seed) {
  std::vector<int32_t> ids(size_t(num_blocks - 1));
  std::iota(ids.begin(), ids.end(), 1);
  std::mt19937 rng(seed);
  std::shuffle(ids.begin(), ids.end(), rng);
  ids.resize(size_t(rows * width));
  return Tensor::from_vector(ids, {rows, width}, Device::cpu());
}

struct AttnCase {
  Dtype dtype;
  int64_t hq, hkv, d, bs, width;
  std::vector<int32_t> rows, positions;
};

class CudaPagedAttention : public ::testing::TestWithParam<AttnCase> {};

TEST_P(CudaPagedAttention, MatchesTheCpu) {
  WICK_REQUIRE_GPU();
  AttnCase c = GetParam();
  int64_t nrows = *std::max_element(c.rows.begin(), c.rows.end()) + 1, num_blocks = nrows * c.width + 3;
  int64_t n = int64_t(c.positions.size());
  Tensor tables = random_tables(nrows, c.width, num_blocks, 5);
  Tensor cache = randn({num_blocks, 2, c.hkv, c.bs, c.d}, c.dtype);
  Tensor q = randn({n, c.hq, c.d}, c.dtype);
  Tensor tr = Tensor::from_vector(c.rows, {n}, Device::cpu()), pos = Tensor::from_vector(c.positions, {n}, Device::cpu());
  int64_t ctx = c.width * c.bs;
  Tensor want = paged_attention(q, cache, tables, tr, pos, ctx);
  Tensor got = paged_attention(on_gpu(q), on_gpu(cache), on_gpu(tables), on_gpu(tr), on_gpu(pos), ctx);
  EXPECT_TRUE(close(on_cpu(got), want, tol_for(c.dtype)));
  // The cache write for the same tokens: plain, and with the keys rotated (strided views of one
  // projection output, as the step passes them).
  Tensor kv = randn({n, 2 * c.hkv * c.d}, c.dtype);
  Tensor k = reshape(narrow(kv, 1, 0, c.hkv * c.d), {n, c.hkv, c.d});
  Tensor v = reshape(narrow(kv, 1, c.hkv * c.d, c.hkv * c.d), {n, c.hkv, c.d});
  Tensor kg = reshape(narrow(on_gpu(kv), 1, 0, c.hkv * c.d), {n, c.hkv, c.d});
  Tensor vg = reshape(narrow(on_gpu(kv), 1, c.hkv * c.d, c.hkv * c.d), {n, c.hkv, c.d});
  Tensor inv = rope_inv_freq(int(c.d), 10000.0, Device::cpu());
  for (bool rope : {false, true}) {
    std::optional<Tensor> ci = rope ? std::optional<Tensor>(inv) : std::nullopt;
    std::optional<Tensor> gi = rope ? std::optional<Tensor>(on_gpu(inv)) : std::nullopt;
    Tensor cw = paged_kv_write(cache, k, v, tables, tr, pos, ci);
    Tensor gw = paged_kv_write(on_gpu(cache), kg, vg, on_gpu(tables), on_gpu(tr), on_gpu(pos), gi);
    EXPECT_TRUE(close(on_cpu(gw), cw, rope ? tol_for(c.dtype) : Tol{0, 0})) << "rope " << rope;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaPagedAttention,
    ::testing::Values(
        // A prefill chunk and decodes of several rows, GQA 7:1 (the Qwen2.5-0.5B grouping).
        AttnCase{Dtype::BF16, 14, 2, 64, 16, 8, {0, 0, 0, 0, 1, 2, 3}, {0, 1, 2, 3, 77, 127, 5}},
        // One token deep in a long context: split across many CTAs (flash-decoding) and combined.
        AttnCase{Dtype::F32, 8, 2, 128, 16, 128, {0, 1}, {2047, 1000}},
        AttnCase{Dtype::F16, 4, 4, 32, 8, 40, {0, 1, 1}, {319, 0, 200}},
        AttnCase{Dtype::F32, 3, 1, 80, 4, 9, {0}, {35}}));

TEST(CudaPagedAttention, BadPagingIsReportedAtTheNextSync) {
  WICK_REQUIRE_GPU();
  Device gpu = Device::cuda(0);
  Tensor cache = zeros({4, 2, 1, 2, 2}, Dtype::F32, gpu);
  Tensor tables = Tensor::from_vector(std::vector<int32_t>{1, 9}, {1, 2}, gpu);
  Tensor rows = Tensor::from_vector(std::vector<int32_t>{0}, {1}, gpu);
  Tensor pos = Tensor::from_vector(std::vector<int32_t>{3}, {1}, gpu);
  Tensor one = ones({1, 1, 2}, Dtype::F32, gpu);
  Tensor out = paged_kv_write(cache, one, one, tables, rows, pos);
  try {
    out.to_vector<float>();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("paged"), std::string::npos) << e.what();
  }
}

TEST(CudaLoraGatherAdd, MatchesTheCpu) {
  WICK_REQUIRE_GPU();
  int64_t n = 37, in = 96, out = 200, slots = 5, r = 48;
  for (Dtype dtype : {Dtype::F32, Dtype::BF16}) {
    Tensor base = randn({n, out}, dtype), x = randn({n, in}, dtype);
    Tensor a = randn({slots, r, in}, dtype, 0.2), b = randn({slots, out, r}, dtype, 0.2);
    Tensor scales = Tensor::from_vector(std::vector<float>{0.5f, 2.0f, -1.0f, 1.0f, 0.25f}, {slots}, Device::cpu());
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) ids[i] = int32_t(i % (slots + 1)) - 1;  // no adapter, then slots 0..4
    Tensor slot_ids = Tensor::from_vector(ids, {n}, Device::cpu());
    Tensor want = lora_gather_add(base, x, slot_ids, a, b, scales);
    Tensor got = lora_gather_add(on_gpu(base), on_gpu(x), on_gpu(slot_ids), on_gpu(a), on_gpu(b), on_gpu(scales));
    EXPECT_TRUE(close(on_cpu(got), want, dtype == Dtype::F32 ? Tol{1e-4, 1e-4} : Tol{3e-2, 3e-2})) << dtype_name(dtype);
  }
}

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
    EXPECT_TRUE(close(on_cpu(g.outputs()[0]), softmax(matmul(x, w) * 2.0), Tol{1e-5, 1e-5})) << "round " << round;
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
  EXPECT_TRUE(close(on_cpu(got), want, Tol{1e-3, 1e-3}));
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
  std::string path = std::string(WICK_TEST_DATA_DIR) + "/../../models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "missing " << path;
  std::ifstream in(std::string(WICK_TEST_DATA_DIR) + "/models/smollm2_greedy_golden.json");
  nlohmann::json golden = nlohmann::json::parse(in);
  models::WeightStorage storage;
  storage.keep_file_blocks = true;
  storage.keep_embedding_blocks = true;
  auto model = models::DecoderModel::load_gguf(path, Device::cuda(0), Dtype::F32, storage);
  runtime::RunnerOptions o;
  o.max_batch = 4;
  o.max_context = 256;
  runtime::DecoderRunner runner(model, o);
  std::vector<runtime::GenerationJob> jobs;
  std::vector<std::vector<int32_t>> want;
  for (const auto& c : golden["cases"]) {
    runtime::GenerationJob job;
    job.prompt = c["prompt_ids"].get<std::vector<int32_t>>();
    want.push_back(c["greedy_ids"].get<std::vector<int32_t>>());
    job.options.max_tokens = int64_t(want.back().size());
    job.options.sampling.temperature = 0;
    jobs.push_back(job);
  }
  auto results = runtime::generate(runner, nullptr, jobs);
  for (size_t i = 0; i < jobs.size(); ++i) EXPECT_EQ(results[i].ids, want[i]) << "case " << i;
}

}  // namespace
}  // namespace wick::test
