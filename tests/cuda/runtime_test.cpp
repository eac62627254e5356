// The CUDA runtime: caching allocator statistics, out-of-memory errors, errors raised by kernels,
// and lazy evaluation giving the same results as eager on the GPU.
#include "cuda_test_util.h"

namespace wick::test {
namespace {

TEST(CudaRuntime, MemoryStatsAndCache) {
  WICK_REQUIRE_GPU();
  synchronize(Device::cuda(0));
  cuda::empty_cache(0);
  cuda::reset_peak_memory(0);
  cuda::MemoryStats s0 = cuda::memory_stats(0);
  {
    Tensor a = zeros({1 << 20}, Dtype::F32, Device::cuda(0));  // 4 MiB
    cuda::MemoryStats s1 = cuda::memory_stats(0);
    EXPECT_GE(s1.active, s0.active + (size_t(4) << 20));
    EXPECT_GE(s1.peak, s1.active);
    EXPECT_GE(s1.reserved, s1.active);
  }
  cuda::MemoryStats s2 = cuda::memory_stats(0);
  EXPECT_EQ(s2.active, s0.active);
  EXPECT_GE(s2.peak, s0.active + (size_t(4) << 20));
  EXPECT_GE(s2.reserved, size_t(4) << 20);  // the block stays cached
  size_t reserved = s2.reserved;
  { Tensor b = zeros({1 << 20}, Dtype::F32, Device::cuda(0)); }  // reuses the cached block
  EXPECT_EQ(cuda::memory_stats(0).reserved, reserved);
  cuda::reset_peak_memory(0);
  EXPECT_EQ(cuda::memory_stats(0).peak, cuda::memory_stats(0).active);
  cuda::empty_cache(0);
  EXPECT_LT(cuda::memory_stats(0).reserved, reserved);
}

TEST(CudaRuntime, OutOfMemoryIsCatchable) {
  WICK_REQUIRE_GPU();
  try {
    Tensor huge = Tensor::empty({int64_t(10) << 40}, Dtype::U8, Device::cuda(0));  // 10 TiB
    FAIL() << "allocating 10 TiB succeeded";
  } catch (const OutOfMemory& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("10995116277760"), std::string::npos) << msg;
    EXPECT_NE(msg.find("free"), std::string::npos) << msg;
  }
  // The device still works afterwards.
  EXPECT_EQ(ones({3}, Dtype::F32, Device::cuda(0)).to_vector<float>()[2], 1.0f);
}

TEST(CudaRuntime, ManySmallUploadsKeepTheirValues) {
  WICK_REQUIRE_GPU();
  // Small host-to-device copies go through a few reused pinned buffers: each must land intact.
  std::vector<Tensor> uploaded;
  for (int i = 0; i < 40; ++i) {
    std::vector<float> v(1000 + i, float(i));
    uploaded.push_back(Tensor::from_vector(v, {int64_t(v.size())}, Device::cuda(0)));
  }
  for (int i = 0; i < 40; ++i) {
    std::vector<float> back = uploaded[i].to_vector<float>();
    ASSERT_EQ(back.size(), size_t(1000 + i));
    EXPECT_EQ(back.front(), float(i));
    EXPECT_EQ(back.back(), float(i));
  }
}

TEST(CudaRuntime, BadIndicesAreReportedAtTheNextSync) {
  WICK_REQUIRE_GPU();
  Tensor table = ones({5, 3}, Dtype::F32, Device::cuda(0));
  Tensor ids = on_gpu(Tensor::from_vector<int64_t>({1, 7}, {2}));
  Tensor out = embedding(table, ids);
  EXPECT_THROW(out.to_vector<float>(), Error);
  // The flag is cleared once reported.
  EXPECT_EQ(embedding(table, on_gpu(Tensor::from_vector<int64_t>({4}, {1}))).to_vector<float>()[0], 1.0f);
  Tensor logits = zeros({2, 4}, Dtype::F32, Device::cuda(0));
  Tensor targets = on_gpu(Tensor::from_vector<int64_t>({1, 9}, {2}));
  EXPECT_THROW(cross_entropy(logits, targets).item<float>(), Error);
}

TEST(CudaRuntime, LazyMatchesEager) {
  WICK_REQUIRE_GPU();
  Tensor xc = randn({8, 33, 64}), wc = randn({48, 64}), gc = randn({48});
  Tensor x = on_gpu(xc), w = on_gpu(wc), g = on_gpu(gc);
  auto model = [&]() {
    Tensor h = rms_norm(linear(x, w), g, 1e-6);
    Tensor a = softmax(matmul(h, transpose(h, 1, 2)) * 0.125);
    return sum(gelu(matmul(a, h)) * 0.5 + silu(h), {1});
  };
  cuda::set_allow_tf32(false);
  Tensor eager = model();
  Tensor lazy;
  {
    ExecModeScope scope(ExecMode::Lazy);
    lazy = model();
    EXPECT_FALSE(lazy.is_evaluated());
    eval({lazy});
  }
  EXPECT_TRUE(close(on_cpu(lazy), on_cpu(eager), Tol{1e-6, 1e-6}));
  // And both agree with the CPU backend.
  x = xc, w = wc, g = gc;
  EXPECT_TRUE(close(on_cpu(eager), model(), Tol{1e-4, 1e-4}));
}

}  // namespace
}  // namespace wick::test
