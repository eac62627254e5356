// Fused neural-network ops on the GPU: against the CPU backend, against their reference
// compositions (wick::reference::) on the GPU, and their gradients.
#include "cuda_test_util.h"

namespace wick::test {
namespace {

class CudaNN : public ::testing::TestWithParam<Dtype> {
 protected:
  void SetUp() override { cuda::set_allow_tf32(false); }
};

// The fused op and its reference composition, both on the GPU.
::testing::AssertionResult fused_matches_reference(const std::function<Tensor(const std::vector<Tensor>&)>& fused,
                                                   const std::function<Tensor(const std::vector<Tensor>&)>& ref,
                                                   const std::vector<Tensor>& cpu_inputs, Tol tol) {
  std::vector<Tensor> g;
  for (const Tensor& x : cpu_inputs) g.push_back(on_gpu(x));
  Tensor got = on_cpu(fused(g)), want = on_cpu(ref(g));
  if (got.dtype() != want.dtype()) {  // e.g. cross_entropy's loss is f32, its reference keeps the logits' dtype
    got = astype(got, Dtype::F64);
    want = astype(want, Dtype::F64);
  }
  return close(got, want, tol);
}

Tol loose(Dtype dt) {
  Tol t = tol_for(dt);
  return {t.rtol * 5, t.atol * 5};
}
// For results that pass through f32 whatever the input dtype (f32 losses, f32 rotary angles).
Tol at_least_f32(Dtype dt) {
  Tol t = loose(dt), f = loose(Dtype::F32);
  return {std::max(t.rtol, f.rtol), std::max(t.atol, f.atol)};
}

TEST_P(CudaNN, SoftmaxAndNorms) {
  WICK_REQUIRE_GPU();
  Dtype dt = GetParam();
  for (int64_t n : {1, 7, 33, 129, 1000, 1025, 4099}) {
    Tensor x = randn({5, n}, dt, 3.0), w = randn({n}, dt), b = randn({n}, dt);
    EXPECT_TRUE(same_on_gpu([](auto& in) { return softmax(in[0]); }, {x}, tol_for(dt))) << "softmax n=" << n;
    EXPECT_TRUE(same_on_gpu([](auto& in) { return log_softmax(in[0]); }, {x}, tol_for(dt))) << "log_softmax n=" << n;
    EXPECT_TRUE(same_on_gpu([](auto& in) { return softmax(in[0], 0); }, {x}, tol_for(dt))) << "softmax dim 0 n=" << n;
    EXPECT_TRUE(same_on_gpu([](auto& in) { return layer_norm(in[0], in[1], in[2], 1e-5); }, {x, w, b}, loose(dt)))
        << "layer_norm n=" << n;
    EXPECT_TRUE(same_on_gpu([](auto& in) { return layer_norm(in[0], std::nullopt, std::nullopt, 1e-5); }, {x}, loose(dt)))
        << "layer_norm (no affine) n=" << n;
    EXPECT_TRUE(same_on_gpu([](auto& in) { return rms_norm(in[0], in[1], 1e-6); }, {x, w}, loose(dt))) << "rms n=" << n;
    EXPECT_TRUE(fused_matches_reference([](auto& in) { return softmax(in[0]); },
                                        [](auto& in) { return reference::softmax(in[0]); }, {x}, loose(dt)));
    EXPECT_TRUE(fused_matches_reference([](auto& in) { return rms_norm(in[0], in[1], 1e-6); },
                                        [](auto& in) { return reference::rms_norm(in[0], in[1], 1e-6); }, {x, w},
                                        loose(dt)));
    EXPECT_TRUE(fused_matches_reference([](auto& in) { return layer_norm(in[0], in[1], in[2], 1e-5); },
                                        [](auto& in) { return reference::layer_norm(in[0], in[1], in[2], 1e-5); },
                                        {x, w, b}, loose(dt)));
  }
  // Fully masked rows give NaN, as on the CPU.
  Tensor m = full({2, 9}, -INFINITY, dt, Device::cpu());
  EXPECT_TRUE(same_on_gpu([](auto& in) { return softmax(in[0]); }, {m}, tol_for(dt)));
}

TEST_P(CudaNN, RoPE) {
  WICK_REQUIRE_GPU();
  Dtype dt = GetParam();
  Tensor x = randn({2, 3, 17, 64}, dt);
  Tensor pos = Tensor::from_vector<int64_t>({0, 5, 9, 100, 2047, 3, 7, 1, 1, 0, 11, 12, 13, 14, 15, 16, 17,
                                             4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4},
                                            {2, 17});
  for (bool interleaved : {false, true})
    for (int rd : {-1, 32}) {
      RopeOptions o;
      o.interleaved = interleaved;
      o.rotary_dim = rd;
      EXPECT_TRUE(same_on_gpu([&](auto& in) { return rope(in[0], on_device_like(pos, in[0]), o); }, {x}, loose(dt)))
          << "interleaved=" << interleaved << " rd=" << rd;
      EXPECT_TRUE(same_on_gpu([&](auto& in) { return rope(transpose(in[0], 1, 2), 5, o); }, {x}, loose(dt)))
          << "offset, transposed input";
      // The reference forms the angles in f32 even for f64 data; the fused kernel in f64.
      Tol ref_tol = dt == Dtype::F64 ? Tol{1e-4, 1e-4} : loose(dt);
      EXPECT_TRUE(fused_matches_reference([&](auto& in) { return rope(in[0], on_device_like(pos, in[0]), o); },
                                          [&](auto& in) { return reference::rope(in[0], on_device_like(pos, in[0]), o); },
                                          {x}, ref_tol));
    }
}

struct AttnCase {
  int64_t B, Hq, Hkv, Tq, Tk, D, Dv;
  bool causal;
  int mask;  // 0: none, 1: bool [Tq, Tk], 2: additive f32 [B, 1, 1, Tk]
};
const AttnCase kAttn[] = {
    {1, 1, 1, 1, 1, 8, 8, false, 0},     {2, 4, 2, 7, 7, 16, 16, true, 0},   {1, 2, 2, 33, 33, 64, 64, true, 0},
    {2, 6, 2, 5, 70, 64, 32, true, 0},   {1, 2, 1, 40, 40, 128, 128, false, 1}, {2, 4, 4, 17, 129, 32, 48, false, 2},
    {1, 14, 2, 1, 300, 64, 64, true, 2}, {1, 2, 2, 65, 65, 256, 256, true, 0},
    // At least 64 queries and head dims that are multiples of 16 up to 128: the tensor-core
    // forward for bf16/f16.
    {2, 4, 2, 100, 100, 64, 64, true, 0}, {1, 2, 2, 130, 200, 128, 128, false, 2},
    {1, 2, 1, 64, 64, 32, 48, false, 1}, {1, 3, 3, 200, 150, 16, 16, true, 0},
};

Tensor attn_mask(const AttnCase& c) {
  if (c.mask == 1) return gt(randn({c.Tq, c.Tk}), scalar(-1.0, Dtype::F32, Device::cpu())).eval();
  if (c.mask == 2) return (randn({c.B, 1, 1, c.Tk})).eval();
  return Tensor();
}

TEST_P(CudaNN, Attention) {
  WICK_REQUIRE_GPU();
  Dtype dt = GetParam();
  for (const AttnCase& c : kAttn) {
    Tensor q = randn({c.B, c.Hq, c.Tq, c.D}, dt), k = randn({c.B, c.Hkv, c.Tk, c.D}, dt),
           v = randn({c.B, c.Hkv, c.Tk, c.Dv}, dt);
    Tensor mask = attn_mask(c);
    std::vector<Tensor> inputs{q, k, v};
    if (mask.defined()) inputs.push_back(mask);
    auto f = [&](const std::vector<Tensor>& in) {
      std::optional<Tensor> m;
      if (in.size() > 3) m = in[3];
      return scaled_dot_product_attention(in[0], in[1], in[2], m, c.causal);
    };
    auto ref = [&](const std::vector<Tensor>& in) {
      std::optional<Tensor> m;
      if (in.size() > 3) m = in[3];
      return reference::scaled_dot_product_attention(in[0], in[1], in[2], m, c.causal, std::nullopt);
    };
    std::string what = str_cat("B", c.B, " Hq", c.Hq, " Hkv", c.Hkv, " Tq", c.Tq, " Tk", c.Tk, " D", c.D, " Dv", c.Dv,
                               " causal", c.causal, " mask", c.mask);
    for (bool tensor_cores : {true, false}) {
      cuda::set_attention_tensor_cores(tensor_cores);
      EXPECT_TRUE(same_on_gpu(f, inputs, loose(dt))) << what << " tensor cores " << tensor_cores;
      // Rows that see no key (causal with Tq > Tk) are 0 in the fused op (CPU and GPU) but NaN in
      // the reference composition (a softmax over all -inf): such cases skip the reference check.
      if (!(c.causal && c.Tq > c.Tk))
        EXPECT_TRUE(fused_matches_reference(f, ref, inputs, loose(dt))) << what << " vs reference";
    }
    cuda::set_attention_tensor_cores(true);
    if (dt == Dtype::F32 || dt == Dtype::F64) {
      std::vector<Tensor> diff{q, k, v};
      auto g = [&](const std::vector<Tensor>& in) {
        std::optional<Tensor> m;
        if (mask.defined()) m = on_device_like(mask, in[0]);
        return scaled_dot_product_attention(in[0], in[1], in[2], m, c.causal);
      };
      EXPECT_TRUE(same_grads_on_gpu(g, diff, Tol{1e-4, 1e-4})) << what << " gradients";
    }
  }
  // A transposed (non-contiguous) q, as produced by a [B, T, H, D] projection.
  Tensor qt = randn({2, 9, 4, 32}, dt), kt = randn({2, 9, 2, 32}, dt), vt = randn({2, 9, 2, 32}, dt);
  EXPECT_TRUE(same_on_gpu(
      [](auto& in) {
        return scaled_dot_product_attention(transpose(in[0], 1, 2), transpose(in[1], 1, 2), transpose(in[2], 1, 2),
                                            std::nullopt, true);
      },
      {qt, kt, vt}, loose(dt)));
}

// The bf16/f16 attention backward (tensor cores where the shapes suit: head dim 64 or 128, at
// least 64 queries) against the f32 backward of the same rounded inputs on the CPU. P and dS are
// rounded to the data type before their matrix products, so the check is on the relative error
// of each gradient as a whole: |g - ref| / |ref|.
TEST(CudaAttentionBackward, HalfPrecisionGradientsMatchF32) {
  WICK_REQUIRE_GPU();
  struct Case {
    int64_t B, Hq, Hkv, Tq, Tk, D;
    bool causal;
    int mask;
  };
  const Case cases[] = {{2, 14, 2, 128, 128, 64, true, 0}, {1, 4, 2, 100, 100, 64, true, 0},
                        {1, 2, 2, 130, 200, 128, false, 2}, {2, 4, 4, 64, 64, 64, false, 1},
                        {1, 2, 1, 96, 40, 64, true, 0},     {1, 3, 1, 70, 150, 128, true, 2},
                        {1, 2, 2, 40, 40, 64, true, 0}};
  auto rel = [](const Tensor& got, const Tensor& want) {
    std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
    double num = 0, den = 0;
    for (size_t i = 0; i < g.size(); ++i) num += (g[i] - w[i]) * (g[i] - w[i]), den += w[i] * w[i];
    return std::sqrt(num / std::max(den, 1e-30));
  };
  for (const Case& c : cases)
    for (Dtype dt : {Dtype::BF16, Dtype::F16})
      for (bool tensor_cores : {true, false}) {
        cuda::set_attention_tensor_cores(tensor_cores);
        AttnCase ac{c.B, c.Hq, c.Hkv, c.Tq, c.Tk, c.D, c.D, c.causal, c.mask};
        Tensor q = randn({c.B, c.Hq, c.Tq, c.D}, dt), k = randn({c.B, c.Hkv, c.Tk, c.D}, dt),
               v = randn({c.B, c.Hkv, c.Tk, c.D}, dt), mask = attn_mask(ac);
        Tensor w = randn({c.B, c.Hq, c.Tq, c.D}, Dtype::F32);
        auto loss = [&](const std::vector<Tensor>& in) {
          std::optional<Tensor> m;
          if (mask.defined()) m = on_device_like(mask, in[0]);
          Tensor y = scaled_dot_product_attention(in[0], in[1], in[2], m, c.causal);
          return sum(astype(y, Dtype::F32) * on_device_like(w, in[0]));
        };
        auto got = grad(loss, {on_gpu(q), on_gpu(k), on_gpu(v)});
        auto want = grad(loss, {astype(q, Dtype::F32).eval(), astype(k, Dtype::F32).eval(), astype(v, Dtype::F32).eval()});
        double limit = dt == Dtype::BF16 ? 2e-2 : 4e-3;
        const char* names[] = {"dq", "dk", "dv"};
        for (int i = 0; i < 3; ++i) {
          double e = rel(on_cpu(astype(got[i], Dtype::F32)), want[i]);
          EXPECT_LT(e, limit) << names[i] << " " << dtype_name(dt) << " B" << c.B << " Hq" << c.Hq << " Hkv" << c.Hkv
                              << " Tq" << c.Tq << " Tk" << c.Tk << " D" << c.D << " causal" << c.causal << " mask"
                              << c.mask << " tensor cores " << tensor_cores;
        }
      }
  cuda::set_attention_tensor_cores(true);
}

TEST_P(CudaNN, CrossEntropy) {
  WICK_REQUIRE_GPU();
  Dtype dt = GetParam();
  for (int64_t v : {1, 7, 129, 1000, 5003}) {
    Tensor logits = randn({3, 4, v}, dt, 2.0);
    std::vector<int64_t> t;
    for (int i = 0; i < 12; ++i) t.push_back(i % 5 == 3 ? -100 : (i * 7919) % v);
    Tensor targets = Tensor::from_vector(t, {3, 4});
    if (v % 2) targets = astype(targets, Dtype::I32).eval();  // both index dtypes
    for (Reduction r : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
      auto f = [&](const std::vector<Tensor>& in) { return cross_entropy(in[0], on_device_like(targets, in[0]), -100, r); };
      EXPECT_TRUE(same_on_gpu(f, {logits}, at_least_f32(dt))) << "V=" << v;
      EXPECT_TRUE(fused_matches_reference(
          f, [&](auto& in) { return reference::cross_entropy(in[0], on_device_like(targets, in[0]), -100, r); },
          {logits}, at_least_f32(dt)));
      if (dt == Dtype::F32 || dt == Dtype::F64) EXPECT_TRUE(same_grads_on_gpu(f, {logits}, Tol{1e-5, 1e-5})) << "V=" << v;
    }
  }
}

TEST_P(CudaNN, NormGradients) {
  WICK_REQUIRE_GPU();
  Dtype dt = GetParam();
  Tensor x = randn({4, 7, 129}, dt), w = randn({129}, dt), b = randn({129}, dt);
  Tol t = grad_tol(dt, Tol{1e-4, 1e-4});
  EXPECT_TRUE(same_grads_on_gpu([](auto& in) { return softmax(in[0]); }, {x}, t));
  EXPECT_TRUE(same_grads_on_gpu([](auto& in) { return log_softmax(in[0]); }, {x}, t));
  EXPECT_TRUE(same_grads_on_gpu([](auto& in) { return layer_norm(in[0], in[1], in[2], 1e-5); }, {x, w, b}, t));
  EXPECT_TRUE(same_grads_on_gpu([](auto& in) { return rms_norm(in[0], in[1], 1e-6); }, {x, w}, t));
  Tensor xr = randn({2, 3, 7, 32}, dt);
  EXPECT_TRUE(same_grads_on_gpu([](auto& in) { return rope(in[0], 3); }, {xr}, t));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaNN, ::testing::Values(Dtype::F32, Dtype::BF16, Dtype::F16, Dtype::F64),
                         dtype_param_name);

}  // namespace
}  // namespace wick::test
