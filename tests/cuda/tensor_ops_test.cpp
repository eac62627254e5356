// Reductions, matrix products, indexing, slicing and concatenation on the GPU against the CPU
// backend, with gradients.
#include "cuda_test_util.h"

namespace wick::test {
namespace {

class CudaTensorOps : public ::testing::TestWithParam<Dtype> {
 protected:
  void SetUp() override { cuda::set_allow_tf32(false); }
};

// Sums in f32 are accumulated in a different order than the CPU's double sums: allow for it.
Tol sum_tol(Dtype dt, int64_t n) {
  Tol t = tol_for(dt);
  double grow = std::sqrt(double(n));
  return {t.rtol * grow, t.atol * grow};
}

TEST_P(CudaTensorOps, Reductions) {
  WICK_REQUIRE_GPU();
  Dtype dt = GetParam();
  for (int64_t n : {1, 7, 33, 129, 1000, 5000}) {
    Tensor x = randn({3, n, 5}, dt);
    Tol t = sum_tol(dt, n * 15);
    for (std::vector<int> dims : std::vector<std::vector<int>>{{0}, {1}, {2}, {0, 2}, {1, 2}, {0, 1, 2}}) {
      EXPECT_TRUE(same_on_gpu([&](auto& in) { return sum(in[0], dims); }, {x}, t)) << "sum n=" << n;
      EXPECT_TRUE(same_on_gpu([&](auto& in) { return mean(in[0], dims, true); }, {x}, t)) << "mean n=" << n;
      EXPECT_TRUE(same_on_gpu([&](auto& in) { return max(in[0], dims); }, {x}, Tol{0, 0})) << "max n=" << n;
      EXPECT_TRUE(same_on_gpu([&](auto& in) { return min(transpose(in[0], 0, 1), dims); }, {x}, Tol{0, 0}))
          << "min transposed n=" << n;
    }
    for (int d : {0, 1, 2}) {
      EXPECT_TRUE(same_on_gpu([&](auto& in) { return argmax(in[0], d); }, {x}, Tol{0, 0})) << "argmax n=" << n;
      EXPECT_TRUE(same_on_gpu([&](auto& in) { return argmin(transpose(in[0], 1, 2), d, true); }, {x}, Tol{0, 0}))
          << "argmin n=" << n;
    }
    EXPECT_TRUE(same_on_gpu([&](auto& in) { return logsumexp(in[0], {1}); }, {x}, t)) << "logsumexp n=" << n;
  }
}

TEST(CudaReduce, NaNAndTies) {
  WICK_REQUIRE_GPU();
  std::vector<float> v = {1, 3, 3, 2, NAN, 3, -1, -1, 0};
  Tensor x = Tensor::from_vector(v, {3, 3});
  EXPECT_TRUE(same_on_gpu([](auto& in) { return max(in[0], {1}); }, {x}, Tol{0, 0}));
  EXPECT_TRUE(same_on_gpu([](auto& in) { return min(in[0], {0}); }, {x}, Tol{0, 0}));
  EXPECT_TRUE(same_on_gpu([](auto& in) { return argmax(in[0], 1); }, {x}, Tol{0, 0}));
  EXPECT_TRUE(same_on_gpu([](auto& in) { return argmin(in[0], 1); }, {x}, Tol{0, 0}));
  EXPECT_TRUE(same_on_gpu([](auto& in) { return argmax(in[0], 0); }, {x}, Tol{0, 0}));
  Tensor i = astype(randn({4, 1000}) * 100.0, Dtype::I64).eval();
  EXPECT_TRUE(same_on_gpu([](auto& in) { return sum(in[0], {1}); }, {i}, Tol{0, 0}));
  EXPECT_TRUE(same_on_gpu([](auto& in) { return argmax(in[0], 1); }, {i}, Tol{0, 0}));
}

TEST_P(CudaTensorOps, Matmul) {
  WICK_REQUIRE_GPU();
  Dtype dt = GetParam();
  struct Case {
    Shape a, b;
  };
  const Case cases[] = {{{1, 1}, {1, 1}},       {{7, 33}, {33, 5}},       {{129, 64}, {64, 127}},
                        {{2, 3, 17, 9}, {9, 11}}, {{4, 17, 9}, {4, 9, 11}}, {{3, 1, 5, 8}, {1, 2, 8, 6}},
                        {{33}, {33, 7}},         {{7, 33}, {33}},         {{1000, 48}, {48, 33}}};
  for (const Case& c : cases) {
    Tensor a = randn(c.a, dt), b = randn(c.b, dt);
    int64_t k = c.a.back();
    Tol t = sum_tol(dt, k);
    EXPECT_TRUE(same_on_gpu([](auto& in) { return matmul(in[0], in[1]); }, {a, b}, t))
        << shape_str(c.a) << " @ " << shape_str(c.b);
  }
  // Transposed operands (views), a stepped slice and a broadcast batch.
  Tensor a = randn({2, 33, 17}, dt), b = randn({2, 9, 33}, dt), w = randn({13, 17}, dt), bias = randn({13}, dt);
  Tol t = sum_tol(dt, 33);
  EXPECT_TRUE(same_on_gpu([](auto& in) { return matmul(transpose(in[0], 1, 2), transpose(in[1], 1, 2)); }, {a, b}, t));
  EXPECT_TRUE(same_on_gpu([](auto& in) { return matmul(slice(in[0], 2, 0, 33, 2), slice(in[1], 1, 0, 33, 2)); }, {b, a}, t));
  EXPECT_TRUE(same_on_gpu([](auto& in) { return linear(in[0], in[1], in[2]); }, {a, w, bias}, t));
  // Rows further apart than their length (ld > cols) and a batch stride smaller than a matrix.
  Tensor a2 = randn({33, 2, 17}, dt);
  EXPECT_TRUE(same_on_gpu([](auto& in) { return matmul(transpose(in[0], 1, 2), permute(in[1], {1, 0, 2})); }, {a, a2}, t));
}

TEST_P(CudaTensorOps, MatmulGradients) {
  WICK_REQUIRE_GPU();
  Dtype dt = GetParam();
  Tensor x = randn({3, 7, 33}, dt), w = randn({17, 33}, dt), b = randn({17}, dt);
  EXPECT_TRUE(same_grads_on_gpu([](auto& in) { return linear(in[0], in[1], in[2]); }, {x, w, b}, grad_tol(dt, Tol{1e-4, 1e-4})));
  EXPECT_TRUE(same_grads_on_gpu([](auto& in) { return sum(in[0] * in[0], {1}) + max(in[0], {1}); }, {x}, grad_tol(dt, Tol{1e-4, 1e-4})));
}

TEST(CudaMatmul, Tf32Toggle) {
  WICK_REQUIRE_GPU();
  Tensor a = randn({256, 512}), b = randn({512, 128});
  cuda::set_allow_tf32(true);
  EXPECT_TRUE(same_on_gpu([](auto& in) { return matmul(in[0], in[1]); }, {a, b}, Tol{2e-2, 5e-2}));
  cuda::set_allow_tf32(false);
  EXPECT_TRUE(same_on_gpu([](auto& in) { return matmul(in[0], in[1]); }, {a, b}, sum_tol(Dtype::F32, 512)));
}

TEST_P(CudaTensorOps, IndexingAndShapes) {
  WICK_REQUIRE_GPU();
  Dtype dt = GetParam();
  Tensor x = randn({5, 33, 7}, dt), table = randn({129, 17}, dt);
  Tensor ids = Tensor::from_vector<int64_t>({3, 0, 128, 5, 5, -1, 77}, {7});
  Tensor ids2 = Tensor::from_vector<int32_t>({1, 4, 4, 0, 2, 3}, {2, 3});
  Tol exact{0, 0};
  EXPECT_TRUE(same_on_gpu([](auto& in) { return embedding(in[0], in[1]); }, {table, ids}, exact));
  EXPECT_TRUE(same_on_gpu([](auto& in) { return take(in[0], in[1], 0); }, {x, ids2}, exact));
  EXPECT_TRUE(same_on_gpu([](auto& in) { return take(transpose(in[0], 0, 2), in[1], 1); }, {x, ids2}, exact));
  Tensor src = randn({5, 7, 7}, dt);
  Tensor rows = Tensor::from_vector<int64_t>({0, 32, 5, 5, 5, 1, 0}, {7});
  // Repeated indices add up in an order that may differ from the CPU's.
  EXPECT_TRUE(same_on_gpu([](auto& in) { return index_add(in[0], 1, in[1], in[2]); }, {x, rows, src}, sum_tol(dt, 4)));
  EXPECT_TRUE(same_on_gpu([](auto& in) { return concat({in[0], transpose(in[1], 1, 2), in[0]}, 1); }, {x, src}, exact));
  EXPECT_TRUE(same_on_gpu([](auto& in) { return stack({in[0], in[0] * 2.0}, 2); }, {x}, tol_for(dt)));
  EXPECT_TRUE(same_on_gpu([](auto& in) { return split(in[0], {10, 23}, 1)[1] + 0.0; }, {x}, tol_for(dt)));
  EXPECT_TRUE(same_on_gpu([](auto& in) { return reshape(transpose(in[0], 0, 1), {-1, 5}); }, {x}, exact));
  EXPECT_TRUE(same_on_gpu([](auto& in) { return contiguous(expand(in[0], {2, 5, 33, 7})); }, {x}, exact));
  Tensor dst = randn({4, 40, 7}, dt), piece = randn({4, 3, 7}, dt);
  EXPECT_TRUE(same_on_gpu([](auto& in) { return slice_update(in[0], in[1], {0, 17, 0}); }, {dst, piece}, exact));
  Tensor wide = randn({4, 6, 7}, dt);  // a stepped slice of it is a non-contiguous [4, 3, 7] source
  EXPECT_TRUE(same_on_gpu([](auto& in) { return slice_update(in[0], slice(in[1], 1, 0, 6, 2), {0, 37, 0}); },
                          {dst, wide}, exact));
}

TEST(CudaIndexing, SliceUpdateDonatesItsBuffer) {
  WICK_REQUIRE_GPU();
  Tensor cache = zeros({2, 64, 8}, Dtype::BF16, Device::cuda(0));
  const void* before = cache.storage()->data();
  for (int t = 0; t < 5; ++t) cache = slice_update(std::move(cache), full({2, 1, 8}, t + 1, Dtype::BF16, Device::cuda(0)), {0, t, 0});
  EXPECT_EQ(cache.storage()->data(), before);
  std::vector<float> v = cache.to_vector<float>();
  EXPECT_EQ(v[4 * 8], 5.0f);
  EXPECT_EQ(v[5 * 8], 0.0f);
  // A buffer that someone else holds is copied, not written.
  Tensor held = zeros({2, 64, 8}, Dtype::F32, Device::cuda(0));
  Tensor updated = slice_update(held, ones({2, 1, 8}, Dtype::F32, Device::cuda(0)), {0, 0, 0});
  EXPECT_EQ(held.to_vector<float>()[0], 0.0f);
  EXPECT_EQ(updated.to_vector<float>()[0], 1.0f);
}

TEST_P(CudaTensorOps, IndexingGradients) {
  WICK_REQUIRE_GPU();
  Dtype dt = GetParam();
  Tensor table = randn({33, 9}, dt), x = randn({4, 9}, dt);
  Tensor ids = Tensor::from_vector<int64_t>({3, 0, 32, 5, 5, 5}, {2, 3});
  EXPECT_TRUE(same_grads_on_gpu([&](auto& in) { return embedding(in[0], on_device_like(ids, in[0])); }, {table}, grad_tol(dt, Tol{1e-5, 1e-5})));
  EXPECT_TRUE(same_grads_on_gpu([](auto& in) { return concat({in[0], in[1] * 2.0}, 0); }, {table, x}, grad_tol(dt, Tol{1e-5, 1e-5})));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaTensorOps, ::testing::Values(Dtype::F32, Dtype::BF16, Dtype::F16, Dtype::F64),
                         dtype_param_name);

}  // namespace
}  // namespace wick::test

namespace wick::test {
namespace {

// Few outputs over long reductions take the two-pass path (partial sums per block, then combined).
TEST(CudaReduce, LongReductionsWithFewOutputs) {
  WICK_REQUIRE_GPU();
  Tensor x = randn({3, 400001});
  EXPECT_TRUE(same_on_gpu([](auto& in) { return sum(in[0]); }, {x}, sum_tol(Dtype::F32, 1200003)));
  EXPECT_TRUE(same_on_gpu([](auto& in) { return sum(in[0], {1}); }, {x}, sum_tol(Dtype::F32, 400001)));
  EXPECT_TRUE(same_on_gpu([](auto& in) { return max(in[0], {1}); }, {x}, Tol{0, 0}));
  EXPECT_TRUE(same_on_gpu([](auto& in) { return min(transpose(in[0], 0, 1), {0}); }, {x}, Tol{0, 0}));
  Tensor b = astype(randn({1 << 18}), Dtype::BF16).eval();
  EXPECT_TRUE(same_on_gpu([](auto& in) { return sum(in[0]); }, {b}, sum_tol(Dtype::BF16, 1 << 18)));
}

}  // namespace
}  // namespace wick::test
