// sample_tokens on the GPU against its CPU evaluation (float64, the host sampler's steps): the same
// ids and log-probabilities within 1e-5 for vocabularies from 1 to 151936 tokens, batches of 1 to
// 64 rows mixing greedy and sampled rows, every filter alone and combined, tied logits, a top-p
// boundary closer than the kernel's float estimates can tell, replays from a captured CUDA graph,
// and bad values reported through the device error flag.
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <random>

#include "support/testing.h"
#include "wick/backend/cuda/runtime.h"

namespace wick::testing {
namespace {

Tensor on_gpu(const Tensor& x) { return to_device(x, Device::cuda(0)); }

enum class Logits { Flat, Peaked, Tied };

struct Inputs {
  Tensor logits, params, history, uniforms;  // on the CPU
};

std::vector<float> make_logits(std::mt19937_64& rng, int64_t v, Logits kind) {
  std::normal_distribution<double> normal(0, 1);
  std::vector<float> l(static_cast<size_t>(v));
  for (float& x : l) {
    double z = normal(rng);
    x = kind == Logits::Flat ? float(z) : kind == Logits::Peaked ? float(2.5 * z) : float(std::round(z * 4) / 2);
  }
  if (kind == Logits::Peaked) {  // a few tokens far above the rest, as a language model's logits
    std::uniform_int_distribution<int64_t> id(0, v - 1);
    for (int i = 0; i < 6; ++i) l[size_t(id(rng))] += float(8 + 2 * i);
  }
  return l;
}

// Options of one row: temperature, top_k, top_p, min_p, repetition_penalty.
using Options = std::array<double, 5>;

std::vector<Options> option_set() {
  return {
      {0, 0, 1, 0, 1},         {0, 0, 1, 0, 1.3},       {1, 0, 1, 0, 1},        {0.7, 0, 1, 0, 1.2},
      {1, 1, 1, 0, 1},         {0.7, 40, 1, 0, 1},      {1, 5000, 1, 0, 1},     {1.5, 20000, 1, 0, 0.8},
      {1, 0, 1e-6, 0, 1},      {1, 0, 0.9, 0, 1},       {0.8, 0, 0.5, 0, 1.3},  {0.7, 40, 0.95, 0, 1},
      {1, 50, 0.9, 0.05, 1.1}, {1, 0, 1, 0.05, 1},      {1.3, 0, 1, 0.5, 1},    {1, 0, 1, 1.0, 1},
      {0.7, 0, 0.95, 0.01, 1}, {0.3, 20000, 0.8, 0, 1}, {1, 200000, 0.7, 0, 1}, {1, 20, 1, 0.3, 1.5},
  };
}

Inputs make_inputs(std::mt19937_64& rng, int64_t rows, int64_t v, Logits kind, const std::vector<Options>& options) {
  std::vector<float> logits;
  std::vector<double> params, uniforms;
  std::vector<int32_t> history;
  const int64_t h = 24;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uniform_int_distribution<int32_t> id(0, int32_t(std::min<int64_t>(v, 30)) - 1);  // small ids: repeats
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<float> l = make_logits(rng, v, kind);
    logits.insert(logits.end(), l.begin(), l.end());
    Options o = options[size_t(r) % options.size()];
    // Tied logits stay tied after a penalty only where the quotient rounds onto the grid; without
    // one, every tie is exact on both devices and the tie rules are what is compared.
    if (kind == Logits::Tied) o[4] = 1.0;
    params.insert(params.end(), o.begin(), o.end());
    for (int64_t i = 0; i < h; ++i) history.push_back(i < h - 3 * (r % 4) ? id(rng) : -1);
    uniforms.push_back(unit(rng));
  }
  return {Tensor::from_vector(logits, {rows, v}, Device::cpu()), Tensor::from_vector(params, {rows, 5}, Device::cpu()),
          Tensor::from_vector(history, {rows, h}, Device::cpu()), Tensor::from_vector(uniforms, {rows}, Device::cpu())};
}

Tensor run(const Inputs& in, Device device) {
  return sample_tokens(to_device(in.logits, device), to_device(in.params, device), to_device(in.history, device),
                       to_device(in.uniforms, device));
}

::testing::AssertionResult same_choices(const Inputs& in) {
  std::vector<double> want = run(in, Device::cpu()).to_vector<double>();
  Tensor got_gpu = run(in, Device::cuda(0));
  if (!got_gpu.device().is_cuda()) return ::testing::AssertionFailure() << "result is not on the GPU";
  std::vector<double> got = got_gpu.to_vector<double>();
  std::vector<double> params = in.params.to_vector<double>();
  for (size_t r = 0; r < want.size() / 2; ++r) {
    if (got[2 * r] != want[2 * r] || !(std::abs(got[2 * r + 1] - want[2 * r + 1]) <= 1e-5))
      return ::testing::AssertionFailure()
             << "row " << r << " (temperature " << params[5 * r] << ", top_k " << params[5 * r + 1] << ", top_p "
             << params[5 * r + 2] << ", min_p " << params[5 * r + 3] << ", penalty " << params[5 * r + 4] << "): id "
             << got[2 * r] << " logprob " << got[2 * r + 1] << ", want id " << want[2 * r] << " logprob "
             << want[2 * r + 1];
  }
  return ::testing::AssertionSuccess();
}

TEST(CudaSampleTokens, MatchesTheCpuOnEveryFilterAndVocabulary) {
  WICK_REQUIRE_GPU();
  std::mt19937_64 rng(21);
  std::vector<Options> options = option_set();
  for (int64_t v : {1, 7, 100, 1000, 8192, 8193, 20000, 151936}) {
    for (Logits kind : {Logits::Flat, Logits::Peaked, Logits::Tied}) {
      Inputs in = make_inputs(rng, int64_t(options.size()), v, kind, options);
      EXPECT_TRUE(same_choices(in)) << "vocab " << v << " logits kind " << int(kind);
    }
  }
}

TEST(CudaSampleTokens, BatchesOfMixedRows) {
  WICK_REQUIRE_GPU();
  std::mt19937_64 rng(5);
  std::vector<Options> options = option_set();
  for (int64_t rows : {1, 3, 8, 64}) {
    std::shuffle(options.begin(), options.end(), rng);
    for (Logits kind : {Logits::Peaked, Logits::Flat}) {
      Inputs in = make_inputs(rng, rows, 151936, kind, options);
      EXPECT_TRUE(same_choices(in)) << rows << " rows, logits kind " << int(kind);
    }
  }
}

TEST(CudaSampleTokens, ManyDrawsFromOneDistribution) {
  WICK_REQUIRE_GPU();
  // 64 rows of the same logits and options with different u: every part of the cumulative
  // distribution is probed.
  std::mt19937_64 rng(9);
  for (const Options& o : option_set()) {
    Inputs in = make_inputs(rng, 64, 3000, Logits::Peaked, {o});
    std::vector<float> one = make_logits(rng, 3000, Logits::Peaked), all;
    for (int r = 0; r < 64; ++r) all.insert(all.end(), one.begin(), one.end());
    in.logits = Tensor::from_vector(all, {64, 3000}, Device::cpu());
    EXPECT_TRUE(same_choices(in)) << "options " << o[0] << " " << o[1] << " " << o[2] << " " << o[3] << " " << o[4];
  }
}

// top-p without top-k over a candidate list: the mass outside the list is first estimated in
// float. With top_p within 1e-11 of a cumulative mass the estimate cannot decide, and the kernel
// sums that mass exactly; the choice is then the CPU's.
TEST(CudaSampleTokens, TopPBoundaryBelowTheFloatEstimate) {
  WICK_REQUIRE_GPU();
  std::mt19937_64 rng(17);
  const int64_t v = 50000;
  std::vector<float> l = make_logits(rng, v, Logits::Flat);
  for (float& x : l) x -= 3.0f;
  for (int i = 0; i < 10; ++i) l[size_t(100 + 37 * i)] = 10.0f - 0.5f * float(i);
  // The CPU's probabilities (temperature 1, no penalty) and the mass of the three most likely.
  double m = *std::max_element(l.begin(), l.end()), total = 0;
  std::vector<double> p(static_cast<size_t>(v));
  for (size_t i = 0; i < p.size(); ++i) total += p[i] = std::exp(double(l[i]) - m);
  for (double& x : p) x /= total;
  double head = p[100] + p[137] + p[174];
  for (double top_p : {head * (1 + 1e-11), head * (1 - 1e-11)}) {
    std::vector<double> params, uniforms;
    for (int r = 0; r < 16; ++r) {
      params.insert(params.end(), {1.0, 0.0, top_p, 0.0, 1.0});
      uniforms.push_back((r + 0.5) / 16);
    }
    std::vector<float> logits;
    for (int r = 0; r < 16; ++r) logits.insert(logits.end(), l.begin(), l.end());
    Inputs in{Tensor::from_vector(logits, {16, v}, Device::cpu()), Tensor::from_vector(params, {16, 5}, Device::cpu()),
              zeros({16, 0}, Dtype::I32, Device::cpu()), Tensor::from_vector(uniforms, {16}, Device::cpu())};
    EXPECT_TRUE(same_choices(in)) << "top_p " << top_p;
  }
}

TEST(CudaSampleTokens, RunsAreIdentical) {
  WICK_REQUIRE_GPU();
  std::mt19937_64 rng(2);
  Inputs in = make_inputs(rng, 20, 151936, Logits::Flat, option_set());
  std::vector<double> a = run(in, Device::cuda(0)).to_vector<double>(),
                      b = run(in, Device::cuda(0)).to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << "element " << i;
}

void expect_device_error(const Inputs& in, const std::string& needle) {
  try {
    run(in, Device::cuda(0)).to_vector<double>();
    ADD_FAILURE() << "no error; expected one mentioning \"" << needle << "\"";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(CudaSampleTokens, BadValuesAreReportedAtTheNextSynchronisation) {
  WICK_REQUIRE_GPU();
  std::mt19937_64 rng(4);
  Inputs good = make_inputs(rng, 3, 50, Logits::Flat, {{1, 0, 0.9, 0, 1.2}});
  auto with_param = [&](int column, double value) {
    Inputs in = good;
    std::vector<double> p = good.params.to_vector<double>();
    p[5 + size_t(column)] = value;
    in.params = Tensor::from_vector(p, {3, 5}, Device::cpu());
    return in;
  };
  expect_device_error(with_param(kSampleTemperature, -0.5), "sample_tokens: row 1: temperature must be >= 0");
  expect_device_error(with_param(kSampleTopK, 1.5), "row 1: top_k must be a non-negative integer, got 1.5");
  expect_device_error(with_param(kSampleTopP, 1.5), "row 1: top_p must be in (0, 1], got 1.5");
  expect_device_error(with_param(kSampleMinP, -0.1), "row 1: min_p must be in [0, 1]");
  expect_device_error(with_param(kSampleRepetitionPenalty, 0), "row 1: repetition_penalty must be > 0");
  expect_device_error(with_param(kSampleTemperature, 1e-310), "overflow to infinity");
  Inputs u = good;
  u.uniforms = Tensor::from_vector(std::vector<double>{0.1, 0.2, 1.0}, {3}, Device::cpu());
  expect_device_error(u, "row 2: uniforms must be in [0, 1) for a sampled row, got 1");
  Inputs nan = good;
  std::vector<float> l = good.logits.to_vector<float>();
  l[50 + 7] = NAN;
  nan.logits = Tensor::from_vector(l, {3, 50}, Device::cpu());
  expect_device_error(nan, "row 1: logits hold nan at column 7");
  Inputs ids = good;
  std::vector<int32_t> h = good.history.to_vector<int32_t>();
  h[3] = 50;
  ids.history = Tensor::from_vector(h, {3, 24}, Device::cpu());
  expect_device_error(ids, "row 0: history holds id 50, outside [0, 50)");
  Inputs masked = good;
  std::vector<float> all_masked = good.logits.to_vector<float>();
  for (int j = 0; j < 50; ++j) all_masked[size_t(100 + j)] = -INFINITY;
  masked.logits = Tensor::from_vector(all_masked, {3, 50}, Device::cpu());
  expect_device_error(masked, "row 2: no token has a finite logit");
  // The flag is cleared once reported: the next call is fine.
  EXPECT_TRUE(same_choices(good));
  try {
    sample_tokens(on_gpu(good.logits), good.params, on_gpu(good.history), on_gpu(good.uniforms));
    ADD_FAILURE() << "inputs on two devices were accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("every input must be on the logits' device"), std::string::npos) << e.what();
  }
}

// Captured once into a CUDA graph, the op replays with new params and uniforms written into the
// same buffers, without the host in between.
TEST(CudaSampleTokens, ReplaysFromACapturedGraph) {
  WICK_REQUIRE_GPU();
  std::mt19937_64 rng(8);
  std::vector<Options> options = option_set();
  Inputs in = make_inputs(rng, 8, 151936, Logits::Peaked, options);
  Tensor logits = on_gpu(in.logits), params = on_gpu(in.params), history = on_gpu(in.history),
         uniforms = on_gpu(in.uniforms);
  // A first call sets the kernel up and leaves an output block in the allocator's cache, so the
  // captured call allocates nothing new.
  sample_tokens(logits, params, history, uniforms).to_vector<double>();
  cudaStream_t stream = cuda::stream(0);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  Tensor out = sample_tokens(logits, params, history, uniforms);
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  for (int step = 0; step < 3; ++step) {
    std::shuffle(options.begin(), options.end(), rng);
    Inputs next = make_inputs(rng, 8, 151936, Logits::Peaked, options);
    next.logits = in.logits;
    next.history = in.history;
    std::vector<double> p = next.params.to_vector<double>(), u = next.uniforms.to_vector<double>();
    ASSERT_EQ(cudaMemcpyAsync(params.data_ptr(), p.data(), p.size() * sizeof(double), cudaMemcpyHostToDevice, stream),
              cudaSuccess);
    ASSERT_EQ(cudaMemcpyAsync(uniforms.data_ptr(), u.data(), u.size() * sizeof(double), cudaMemcpyHostToDevice, stream),
              cudaSuccess);
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    expect_tensors_close(out, run(next, Device::cpu()), Tol{1e-5, 0}, "replay " + std::to_string(step));
  }
  EXPECT_EQ(cudaGraphExecDestroy(exec), cudaSuccess);
  EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
}

}  // namespace
}  // namespace wick::testing
