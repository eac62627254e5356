// Bad arguments throw wick::Error naming the op and the offending shapes, dtypes or devices.
#include "support/testing.h"
#include "wick/core/backend_hooks.h"

namespace wick {
namespace {

using namespace testing;

Tensor f32(const Shape& s) { return zeros(s); }
Tensor i64(const std::vector<int64_t>& v) { return Tensor::from_vector(v, {int64_t(v.size())}); }

TEST(Errors, Elementwise) {
  expect_error([] { add(f32({2, 3}), f32({4})); }, {"add: shapes [2,3] and [4] cannot be broadcast together"});
  expect_error([] { mul(f32({2, 3}), f32({3, 2})); }, {"mul", "[2,3]", "[3,2]"});
  expect_error([] { where(f32({2}), f32({2}), f32({2})); }, {"where: condition must be bool, got f32"});
  expect_error([] { where(zeros({2}, Dtype::Bool), f32({3}), f32({2})); }, {"where", "[2]", "[3]"});
  expect_error([] { neg(zeros({2}, Dtype::Bool)); }, {"neg", "bool"});
  expect_error([] { full({2, -1}, 1.0); }, {"full", "[2,-1]"});
  expect_error([] { arange(0, 3, 0); }, {"arange", "step"});
}

TEST(Errors, ShapesAndViews) {
  expect_error([] { reshape(f32({2, 3}), {4}); }, {"reshape: cannot reshape [2,3] (6 elements) into [4]"});
  expect_error([] { reshape(f32({2, 3}), {-1, -1}); }, {"reshape", "-1"});
  expect_error([] { reshape(f32({2, 3}), {4, -1}); }, {"reshape", "[2,3]", "[4,-1]"});
  expect_error([] { permute(f32({2, 3}), {0}); }, {"permute", "1 dims", "2 dims"});
  expect_error([] { permute(f32({2, 3}), {1, 1}); }, {"permute", "repeated"});
  expect_error([] { transpose(f32({2, 3}), 0, 5); }, {"transpose: dim 5 out of range for a tensor of 2 dims"});
  expect_error([] { slice(f32({4}), 0, 0, 4, 0); }, {"slice: step must be positive, got 0"});
  expect_error([] { narrow(f32({4, 5}), 1, 3, 3); }, {"narrow", "[3, 6)", "size 5"});
  expect_error([] { broadcast_to(f32({3}), {2, 4}); }, {"broadcast_to", "[3]", "[2,4]"});
  expect_error([] { expand(f32({2, 3}), {3, -1}); }, {"[2,3]", "[3,3]"});
  expect_error([] { squeeze(f32({2}), 1); }, {"squeeze", "dim 1"});
  expect_error([] { unsqueeze(f32({2}), 3); }, {"unsqueeze", "dim 3"});
  expect_error([] { flatten(f32({2, 3, 4}), 2, 1); }, {"flatten", "start_dim 2", "end_dim 1"});
  expect_error([] { concat({f32({2, 3}), f32({3, 3})}, 1); }, {"concat", "[2,3]", "[3,3]"});
  expect_error([] { concat({f32({2, 3}), f32({2})}, 0); }, {"concat"});
  expect_error([] { concat({}, 0); }, {"concat", "no tensors"});
  expect_error([] { stack({f32({2, 3}), f32({3, 2})}, 0); }, {"stack", "[2,3]", "[3,2]"});
  expect_error([] { split(f32({5, 2}), {2, 2}, 0); }, {"split", "4", "5"});
}

TEST(Errors, Reductions) {
  expect_error([] { sum(f32({2, 3}), {0, -2}); }, {"sum", "repeated"});
  expect_error([] { sum(f32({2, 3}), {2}); }, {"sum", "dim 2", "2 dims"});
  expect_error([] { max(f32({2, 0}), {1}); }, {"max", "empty", "[2,0]"});
  expect_error([] { argmin(f32({2, 0}), 1); }, {"argmin", "[2,0]"});
  expect_error([] { mean(f32({2, 3}), {3}); }, {"mean", "dim 3"});
}

TEST(Errors, LinearAlgebra) {
  expect_error(
      [] {
        matmul(f32({2, 3, 4}), f32({5, 6}));
      },
      {"matmul: expected a[..., M, K] and b[..., K, N], got [2,3,4] and [5,6]"});
  expect_error([] { matmul(f32({3}), f32({4})); }, {"matmul", "[3]", "[4]"});
  expect_error([] { matmul(f32({2, 3, 4}), f32({3, 4, 5})); }, {"matmul", "[2]", "[3]"});
  expect_error([] { matmul(zeros({2, 2}, Dtype::I32), f32({2, 2})); }, {"matmul", "floating", "i32"});
  expect_error([] { matmul(scalar(1.0), f32({2})); }, {"matmul", "at least 1 dim"});
  expect_error([] { linear(f32({2, 3}), f32({4, 5})); }, {"linear", "[2,3]", "[4,5]"});
  expect_error([] { linear(f32({2, 3}), f32({4, 3}), f32({3})); }, {"linear: bias [3]", "[4,3]"});
}

TEST(Errors, Indexing) {
  expect_error([] { take(f32({4, 3}), f32({2}), 0); }, {"take: index must be i32 or i64, got f32"});
  expect_error([] { take(f32({4, 3}), i64({1, 7}), 0).eval(); }, {"index 7 is out of range for a dim of size 4"});
  expect_error([] { take(f32({4, 3}), i64({-5}), 0).eval(); }, {"index -5", "size 4"});
  expect_error(
      [] {
        index_select(f32({4, 3}), 0, Tensor::from_vector(std::vector<int64_t>{1, 2}, {1, 2}));
      },
      {"index_select: index must be 1-D, got [1,2]"});
  expect_error([] { embedding(f32({4}), i64({1})); }, {"embedding", "[4]"});
  expect_error(
      [] {
        index_add(f32({4, 3}), 0, i64({1, 2}), f32({3, 3}));
      },
      {"index_add: src must have shape [2,3], got [3,3]"});
  expect_error([] { slice_update(f32({4, 3}), f32({2, 3}), {3, 0}); }, {"slice_update", "[2,3]", "[3,0]", "[4,3]"});
  expect_error([] { slice_update(f32({4, 3}), f32({2}), {0, 0}); }, {"slice_update", "rank"});
}

TEST(Errors, NeuralNetworkOps) {
  expect_error([] { softmax(zeros({2}, Dtype::I64)); }, {"softmax", "floating", "i64"});
  expect_error([] { softmax(f32({2, 3}), 2); }, {"softmax", "dim 2"});
  expect_error([] { layer_norm(f32({2, 3}), f32({4}), std::nullopt); }, {"layer_norm", "[3]", "[2,3]", "[4]"});
  expect_error([] { rms_norm(f32({2, 3}), f32({2})); }, {"rms_norm", "[3]", "[2,3]", "[2]"});
  expect_error([] { swiglu(f32({2, 3}), f32({3, 2})); }, {"swiglu", "[2,3]", "[3,2]"});
  expect_error([] { rope(f32({2, 3, 4}), 0); }, {"rope", "[2,3,4]"});
  expect_error(
      [] {
        rope(f32({1, 2, 3, 4}), 0, RopeOptions{10000.0, false, 3, std::nullopt});
      },
      {"rope", "rotary_dim 3"});
  expect_error([] { rope(f32({1, 2, 3, 4}), i64({0, 1})); }, {"rope", "positions", "[2]"});
  expect_error([] { rope(f32({1, 2, 3, 4}), f32({3})); }, {"rope", "f32"});
  expect_error(
      [] {
        scaled_dot_product_attention(f32({1, 3, 2, 4}), f32({1, 2, 5, 4}), f32({1, 2, 5, 4}));
      },
      {"scaled_dot_product_attention", "[1,3,2,4]", "[1,2,5,4]"});
  expect_error(
      [] {
        scaled_dot_product_attention(f32({1, 2, 2, 4}), f32({1, 2, 5, 3}), f32({1, 2, 5, 4}));
      },
      {"scaled_dot_product_attention", "[1,2,5,3]"});
  expect_error(
      [] {
        scaled_dot_product_attention(f32({2, 2, 4}), f32({1, 2, 5, 4}), f32({1, 2, 5, 4}));
      },
      {"scaled_dot_product_attention", "[2,2,4]"});
  expect_error(
      [] {
        scaled_dot_product_attention(f32({1, 2, 2, 4}), zeros({1, 2, 5, 4}, Dtype::F64), f32({1, 2, 5, 4}));
      },
      {"scaled_dot_product_attention", "f32", "f64"});
  expect_error(
      [] {
        scaled_dot_product_attention(f32({1, 2, 2, 4}), f32({1, 2, 5, 4}), f32({1, 2, 5, 4}), f32({1, 1, 1, 4}));
      },
      {"scaled_dot_product_attention", "mask [1,1,1,4]", "[1,2,2,5]"});
  expect_error([] { cross_entropy(f32({2, 5}), i64({1, 2, 3})); }, {"cross_entropy", "[2,5]", "[2]", "[3]"});
  expect_error([] { cross_entropy(f32({2, 5}), f32({2})); }, {"cross_entropy", "i32 or i64", "f32"});
  expect_error(
      [] {
        cross_entropy(f32({2, 5}), i64({1, 5})).eval();
      },
      {"cross_entropy: target 5 is out of range for 5 classes"});
  expect_error([] { dropout(f32({2}), 1.0); }, {"dropout", "p must be in [0, 1)"});
  expect_error([] { bernoulli({2}, 1.5); }, {"bernoulli", "1.5"});
  expect_error([] { uniform({2}, 0, 1, Dtype::I32); }, {"uniform", "floating", "i32"});
}

TEST(Errors, DevicesAndAccess) {
  Tensor on_gpu, gpu_bias;
  {
    // A lazy node is never allocated, so a CUDA tensor can stand in a CPU-only build.
    ExecModeScope lazy(ExecMode::Lazy);
    on_gpu = zeros({2, 3}, Dtype::F32, Device::cuda(0));
    gpu_bias = zeros({3}, Dtype::F32, Device::cuda(0));
  }
  expect_error([&] { add(f32({2, 3}), on_gpu); }, {"add: tensors are on different devices (cpu and cuda:0)"});
  expect_error([&] { matmul(f32({3, 2}), on_gpu); }, {"matmul", "different devices", "cuda:0"});
  expect_error([&] { concat({f32({2, 3}), on_gpu}, 0); }, {"concat", "cuda:0"});
  expect_error([&] { take(on_gpu, i64({0}), 0); }, {"take", "different devices"});
  expect_error([&] { slice_update(f32({2, 3}), on_gpu, {0, 0}); }, {"slice_update", "different devices"});
  expect_error([&] { layer_norm(f32({2, 3}), std::nullopt, gpu_bias); }, {"layer_norm", "different devices"});
  // Without a usable GPU, the error says why: no CUDA backend in this build, or no such device.
  if (!cuda::available()) {
#if defined(WICK_HAVE_CUDA)
    const char* why = "device 0 does not exist";
#else
    const char* why = "no CUDA backend";
#endif
    expect_error([&] { on_gpu.eval(); }, {why});
    expect_error([] { to_device(f32({2}), Device::cuda(0)); }, {why});
  }
  expect_error([] { Device::parse("gpu"); }, {"unknown device 'gpu'"});
  expect_error([] { f32({2}).item<float>(); }, {"item(): tensor has 2 elements, expected 1"});
  expect_error([] { f32({2}).data<double>(); }, {"data(): tensor is f32, not f64"});
  expect_error([] { Tensor::from_vector(std::vector<float>{1, 2, 3}, {2, 2}); }, {"from_vector", "3 values", "[2,2]"});
  expect_error([] { value_and_grad([](const std::vector<Tensor>& in) { return in[0] * 2.0; }, {f32({3})}); },
               {"value_and_grad", "one element", "[3]"});
  auto two = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{in[0] * 2.0, sum(in[0])}; };
  expect_error([&] { vjp(two, {f32({3})}, {f32({3})}); }, {"vjp: the function returned 2 outputs but 1 cotangents"});
  expect_error(
      [&] {
        vjp(two, {f32({3})}, {f32({3}), f32({2})});
      },
      {"vjp: cotangent 1 has shape [2] but the output has shape []"});
  expect_error([] { Tensor().shape(); }, {"undefined tensor"});
  expect_error([] { scalar(1.0).shape(-1); }, {"shape(-1): a 0-dim tensor has no dims"});
  expect_error([] { f32({2, 3}).shape(2); }, {"shape: dim 2 out of range for a tensor of 2 dims"});
  expect_error([] { rms_norm(scalar(1.0), f32({1})); }, {"rms_norm: input must have at least 1 dim"});
  expect_error([] { parse_dtype("float8"); }, {"unknown dtype 'float8'"});
}

}  // namespace
}  // namespace wick
