// What only a GPU has: the caching allocator's statistics, out-of-memory errors, pinned upload
// buffers, errors raised by kernels and reported at the next sync, and the TF32 switch of f32
// matrix products. (Every op, lazy execution and autograd run on the GPU in tests/ops and
// tests/engine, as the same test bodies as on the CPU.)
#include "support/testing.h"
#include "wick/backend/cuda/settings.h"

namespace wick {
namespace {

using namespace testing;

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
  Tensor ids = ints({1, 7}, {2}, Dtype::I64, Device::cuda(0));
  Tensor out = embedding(table, ids);
  EXPECT_THROW(out.to_vector<float>(), Error);
  // The flag is cleared once reported.
  EXPECT_EQ(embedding(table, ints({4}, {1}, Dtype::I64, Device::cuda(0))).to_vector<float>()[0], 1.0f);
  Tensor logits = zeros({2, 4}, Dtype::F32, Device::cuda(0));
  Tensor targets = ints({1, 9}, {2}, Dtype::I64, Device::cuda(0));
  EXPECT_THROW(cross_entropy(logits, targets).item<float>(), Error);
}

// f32 products may use TF32 tensor cores when allowed (~1e-3 relative error); off by default, they
// give f32 accuracy. The reference is the float64 product of the same values.
TEST(CudaSettings, Tf32Toggle) {
  WICK_REQUIRE_GPU();
  Rand a = rand({256, 512}, Dtype::F32), b = rand({512, 128}, Dtype::F32);
  Tensor ref = matmul(astype(a.t, Dtype::F64), astype(b.t, Dtype::F64));
  Tensor ga = to_device(a.t, Device::cuda(0)), gb = to_device(b.t, Device::cuda(0));
  cuda::set_allow_tf32(true);
  expect_tensors_close(matmul(ga, gb), ref, Tol{5e-2, 2e-2}, "tf32");
  cuda::set_allow_tf32(false);
  expect_tensors_close(matmul(ga, gb), ref, Tol{1e-6 * 512, 1e-5}, "f32");
}

}  // namespace
}  // namespace wick
