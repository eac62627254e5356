// Fused kernels made by the graph and by ops on the GPU: elementwise chains of the lazy graph
// (fusion on vs off vs the CPU), the LoRA delta against its reference, and the remaining view and
// random ops of ops.h.
#include "cuda_test_util.h"

namespace wick::test {
namespace {

class CudaFusion : public ::testing::TestWithParam<Dtype> {
 protected:
  void SetUp() override { cuda::set_allow_tf32(false); }
};

TEST_P(CudaFusion, ElementwiseChainsInLazyMode) {
  WICK_REQUIRE_GPU();
  Dtype dt = GetParam();
  Tensor xc = randn({7, 129}, dt), yc = randn({129}, dt), zc = randn({129, 7}, dt);
  auto chain = [](const Tensor& x, const Tensor& y, const Tensor& z) {
    Tensor h = silu(x) * y + tanh(x - y) * 0.5;
    return swiglu(h, transpose(z, 0, 1)) / (abs(h) + 1.0) + exp(neg(abs(x)));
  };
  Tensor want = chain(xc, yc, zc);
  Tensor x = on_gpu(xc), y = on_gpu(yc), z = on_gpu(zc);
  for (bool fuse : {true, false}) {
    bool saved = fusion_enabled();
    set_fusion_enabled(fuse);
    Tensor got;
    {
      ExecModeScope lazy(ExecMode::Lazy);
      got = chain(x, y, z);
      eval({got});
    }
    set_fusion_enabled(saved);
    EXPECT_TRUE(close(on_cpu(got), want, tol_for(dt))) << "fusion " << fuse;
  }
}

TEST_P(CudaFusion, LoraDelta) {
  WICK_REQUIRE_GPU();
  Dtype dt = GetParam();
  // 51 rows: the fused kernel; 120 rows: the two-GEMM path.
  for (int64_t rows : {17, 40})
  for (int64_t rank : {1, 8, 16, 33}) {
    Tensor x = randn({3, rows, 96}, dt), a = randn({rank, 96}, dt, 0.1), b = randn({65, rank}, dt, 0.1);
    Tol t = tol_for(dt);
    t = {t.rtol * 10, t.atol * 10};
    EXPECT_TRUE(same_on_gpu([](auto& in) { return lora_delta(in[0], in[1], in[2], 2.0); }, {x, a, b}, t)) << rank;
    std::vector<Tensor> g{on_gpu(x), on_gpu(a), on_gpu(b)};
    EXPECT_TRUE(close(on_cpu(lora_delta(g[0], g[1], g[2], 2.0)), on_cpu(reference::lora_delta(g[0], g[1], g[2], 2.0)), t))
        << "vs reference, rank " << rank;
    if (dt == Dtype::F32)
      EXPECT_TRUE(same_grads_on_gpu([](auto& in) { return lora_delta(in[0], in[1], in[2], 2.0); }, {x, a, b},
                                    Tol{1e-4, 1e-4}))
          << rank;
  }
}

// lora_add on the GPU (fused kernel below 64 rows, GEMMs from 64) against the CPU, with the base
// handed over and held elsewhere (then left unchanged).
TEST_P(CudaFusion, LoraAdd) {
  WICK_REQUIRE_GPU();
  Dtype dt = GetParam();
  for (int64_t rows : {17, 40}) {
    Tensor x = randn({3, rows, 96}, dt), a = randn({8, 96}, dt, 0.1), b = randn({65, 8}, dt, 0.1),
           base = randn({3, rows, 65}, dt);
    Tol t = tol_for(dt);
    t = {t.rtol * 10, t.atol * 10};
    EXPECT_TRUE(same_on_gpu([](auto& in) { return lora_add(in[3], in[0], in[1], in[2], 2.0); }, {x, a, b, base}, t))
        << rows;
    Tensor gbase = on_gpu(base);
    Tensor held = lora_add(gbase, on_gpu(x), on_gpu(a), on_gpu(b), 2.0);
    EXPECT_TRUE(close(on_cpu(gbase), base, Tol{0, 0})) << "a held base was written";
    Tensor own = (on_gpu(base) + 0.0).eval();
    const void* buffer = own.data_ptr();
    Tensor moved = lora_add(std::move(own), on_gpu(x), on_gpu(a), on_gpu(b), 2.0);
    EXPECT_EQ(moved.data_ptr(), buffer);
    EXPECT_TRUE(close(on_cpu(moved), on_cpu(held), Tol{0, 0}));
    if (dt == Dtype::F32)
      EXPECT_TRUE(same_grads_on_gpu([](auto& in) { return lora_add(in[3], in[0], in[1], in[2], 2.0); },
                                    {x, a, b, base}, Tol{1e-4, 1e-4}))
          << rows;
  }
}

// LoRA dropout (training): the keyed mask is the same on both devices, bit for bit, and so are the
// forward and the gradients of the update through it.
TEST_P(CudaFusion, LoraDeltaWithKeyedDropout) {
  WICK_REQUIRE_GPU();
  Dtype dt = GetParam();
  RandomKey key = fold_in(RandomKey{21}, 4);
  Shape odd{3, 17, 97};
  EXPECT_EQ(bernoulli(odd, 0.85, key, Device::cuda(0)).to_vector<uint8_t>(),
            bernoulli(odd, 0.85, key, Device::cpu()).to_vector<uint8_t>());
  Tensor x = randn(odd, dt), a = randn({8, 97}, dt, 0.1), b = randn({65, 8}, dt, 0.1);
  Tol t = tol_for(dt);
  t = {t.rtol * 10, t.atol * 10};
  auto f = [key](auto& in) { return lora_delta(dropout(in[0], 0.15, key), in[1], in[2], 2.0); };
  EXPECT_TRUE(same_on_gpu(f, {x, a, b}, t));
  EXPECT_TRUE(same_on_gpu([key](auto& in) { return dropout(in[0], 0.15, key); }, {x}, Tol{0, 0}));
  if (dt == Dtype::F32) EXPECT_TRUE(same_grads_on_gpu(f, {x, a, b}, Tol{1e-4, 1e-4}));
}

TEST_P(CudaFusion, ViewsAndDropout) {
  WICK_REQUIRE_GPU();
  Dtype dt = GetParam();
  Tensor x = randn({4, 1, 33, 6}, dt);
  Tensor idx = Tensor::from_vector<int32_t>({5, 0, 32}, {3});
  Tol exact{0, 0};
  EXPECT_TRUE(same_on_gpu([](auto& in) { return flatten(squeeze(in[0], 1), 1) + 0.0; }, {x}, tol_for(dt)));
  EXPECT_TRUE(same_on_gpu([](auto& in) { return contiguous(unsqueeze(narrow(in[0], 2, 3, 20), 0)); }, {x}, exact));
  EXPECT_TRUE(same_on_gpu([&](auto& in) { return index_select(in[0], 2, on_device_like(idx, in[0])); }, {x}, exact));
  EXPECT_TRUE(same_on_gpu([](auto& in) { return contiguous(broadcast_to(in[0], {2, 4, 5, 33, 6})); }, {x}, exact));
  Tensor inv_cpu = rope_inv_freq(64, 10000.0, Device::cpu());
  EXPECT_TRUE(close(on_cpu(rope_inv_freq(64, 10000.0, Device::cuda(0))), inv_cpu, Tol{1e-6, 0}));
  // Dropout draws the same mask on both devices.
  manual_seed(7);
  Tensor d_cpu = dropout(x, 0.25);
  manual_seed(7);
  Tensor d_gpu = dropout(on_gpu(x), 0.25);
  EXPECT_TRUE(close(on_cpu(d_gpu), d_cpu, tol_for(dt)));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaFusion, ::testing::Values(Dtype::F32, Dtype::BF16, Dtype::F16), dtype_param_name);

}  // namespace
}  // namespace wick::test
