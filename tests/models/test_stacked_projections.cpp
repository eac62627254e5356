// Stacked projections in the decoder's forward: with the weights placed back to back
// (place_weights), q, k, v and gate, up run as one product each with one LoRA update over the
// adapted parts, and split hands out the parts. The logits and every LoRA gradient equal those of
// the same model with its weights apart (one product and one update per projection), with biases
// (qwen2) and without (llama, GQA), adapters on some or all projections, and any dropout falls
// back to one update per projection. split itself: views, and gradients joined (also when a
// backward wrote them side by side) equal to narrow's.
#include <gtest/gtest.h>

#include "support/adapters.h"
#include "support/testing.h"
#include "wick/core/autograd.h"
#include "wick/core/ops.h"
#include "wick/core/primitives.h"
#include "wick/lora/adapter.h"
#include "wick/models/weights.h"
#include "wick/train/loss.h"
#include "wick/train/trainer.h"

using namespace wick;
using namespace wick::testing;

namespace {

const std::string kData = std::string(WICK_TEST_DATA_DIR) + "/models/";

Tensor sample_ids() {
  return Tensor::from_vector(std::vector<int64_t>{3, 17, 101, 9, 42, 250, 7, 8, 99, 5, 64, 33, 1, 2}, {2, 7});
}

// Loss and LoRA gradients of `model` with adapter `a` (its parameters with random B).
std::pair<double, std::vector<Tensor>> loss_and_grads(const models::DecoderModel& model, const lora::Adapter& a,
                                                      const std::vector<Tensor>& params, bool training) {
  Tensor ids = sample_ids();
  auto [loss, grads] = value_and_grad(
      [&](const std::vector<Tensor>& p) {
        models::LoraDeltas d = training ? a.training_deltas(p, train::dropout_key(3, 1, 0)) : a.deltas(&p);
        return train::causal_lm_loss(model.forward(ids, nullptr, std::nullopt, std::nullopt, &d), ids);
      },
      params);
  return {loss.item<double>(), grads};
}

void expect_stacked_equals_apart(const std::string& folder, std::vector<std::string> targets, double dropout) {
  models::DecoderModel apart = models::DecoderModel::load(kData + folder, Device::cpu(), Dtype::F32);
  models::DecoderModel placed = models::DecoderModel::load(kData + folder, Device::cpu(), Dtype::F32);
  placed.place_weights(Device::cpu());
  const models::DecoderLayer& l = placed.layers[0];
  ASSERT_TRUE(models::stacked_view(std::vector<const models::LinearWeight*>{&l.q, &l.k, &l.v}).has_value());
  ASSERT_TRUE(models::stacked_view(std::vector<const models::LinearWeight*>{&l.gate, &l.up}).has_value());
  const models::DecoderLayer& la = apart.layers[0];
  ASSERT_FALSE(models::stacked_view(std::vector<const models::LinearWeight*>{&la.q, &la.k, &la.v}).has_value())
      << "the model loaded without place_weights should keep its projections apart";

  lora::LoraConfig cfg;
  cfg.r = 4;
  cfg.alpha = 12;  // scale 3: the block-diagonal B carries each part's scale
  cfg.target_modules = targets;
  cfg.dropout = dropout;
  lora::Adapter a = lora::Adapter::init(apart, cfg, 11);
  std::vector<Tensor> params = parameters_with_random_b(a, 11, 0.2);

  Tensor ids = sample_ids();
  models::LoraDeltas d = a.deltas(&params);
  Tensor want = apart.forward(ids, nullptr, std::nullopt, std::nullopt, &d);
  Tensor got = placed.forward(ids, nullptr, std::nullopt, std::nullopt, &d);
  expect_tensors_close(got, want, Tol{1e-5, 1e-5});

  auto [loss_apart, grads_apart] = loss_and_grads(apart, a, params, dropout > 0);
  auto [loss_placed, grads_placed] = loss_and_grads(placed, a, params, dropout > 0);
  EXPECT_NEAR(loss_placed, loss_apart, 1e-6 * std::abs(loss_apart));
  ASSERT_EQ(grads_apart.size(), grads_placed.size());
  for (size_t i = 0; i < grads_apart.size(); ++i) {
    SCOPED_TRACE(a.modules()[i / 2] + (i % 2 ? " B" : " A"));
    expect_tensors_close(grads_placed[i], grads_apart[i], Tol{1e-5, 1e-6});
  }
}

}  // namespace

TEST(StackedProjections, EqualToApartWithBiasesAllLinear) { expect_stacked_equals_apart("qwen2_tied", {"all-linear"}, 0); }

TEST(StackedProjections, EqualToApartSomeProjections) {
  // q and v adapted, k not (a zero block of B); up adapted, gate not.
  expect_stacked_equals_apart("qwen2_tied", {"q_proj", "v_proj", "up_proj"}, 0);
}

TEST(StackedProjections, EqualToApartGqaWithoutBiases) {
  expect_stacked_equals_apart("llama_gqa_llama3rope", {"all-linear"}, 0);
}

TEST(StackedProjections, EqualToApartWithoutAdapter) {
  models::DecoderModel apart = models::DecoderModel::load(kData + "llama_untied", Device::cpu(), Dtype::F32);
  models::DecoderModel placed = models::DecoderModel::load(kData + "llama_untied", Device::cpu(), Dtype::F32);
  placed.place_weights(Device::cpu());
  expect_tensors_close(placed.forward(sample_ids()), apart.forward(sample_ids()), Tol{1e-5, 1e-5});
}

TEST(StackedProjections, DropoutTakesOneUpdatePerProjection) {
  // Each module draws its own mask, so the parts cannot share x @ A^T: the same as apart.
  expect_stacked_equals_apart("qwen2_tied", {"all-linear"}, 0.3);
}

TEST(Split, PartsAreViewsAndGradientsJoin) {
  Tensor x = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {2, 6});
  std::vector<Tensor> parts = split(x, {1, 3, 2}, 1);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[1].shape(), (Shape{2, 3}));
  EXPECT_EQ(parts[1].to_vector<float>(), (std::vector<float>{1, 2, 3, 7, 8, 9}));
  EXPECT_EQ(parts[2].to_vector<float>(), (std::vector<float>{4, 5, 10, 11}));
  EXPECT_TRUE(parts[1].storage() == x.storage());
  // Gradients: the first part unused (zeros), the others weighted; against narrow's gradient.
  Tensor w1 = Tensor::from_vector(std::vector<float>{1, -2, 3, 0.5f, 4, -1}, {2, 3});
  Tensor w2 = Tensor::from_vector(std::vector<float>{7, 8, 9, 10}, {2, 2});
  auto f = [&](bool use_split) {
    return grad(
        [&](const std::vector<Tensor>& p) {
          Tensor b, c;
          if (use_split) {
            std::vector<Tensor> s = split(p[0], {1, 3, 2}, 1);
            b = s[1];
            c = s[2];
          } else {
            b = narrow(p[0], 1, 1, 3);
            c = narrow(p[0], 1, 4, 2);
          }
          return sum(b * w1) + sum(c * c * w2);
        },
        {x})[0];
  };
  expect_tensors_close(f(true), f(false), Tol{0, 0});
}

TEST(Split, SwigluGradientsSideBySideAreOneView) {
  Generator gen(4);
  Tensor y = normal({5, 2, 14}, 0, 1, Dtype::F32, Device::cpu(), gen);
  Tensor w = normal({5, 2, 7}, 0, 1, Dtype::F32, Device::cpu(), gen);
  auto f = [&](bool use_split) {
    return grad(
        [&](const std::vector<Tensor>& p) {
          std::vector<Tensor> parts =
              use_split ? split(p[0], {7, 7}, 2) : std::vector<Tensor>{narrow(p[0], 2, 0, 7), narrow(p[0], 2, 7, 7)};
          return sum(swiglu(parts[0], parts[1]) * w);
        },
        {y})[0];
  };
  Tensor joined = f(true);
  expect_tensors_close(joined, f(false), Tol{1e-7, 1e-7});
  // Against the reference composition, silu(gate) * up, differentiated op by op.
  Tensor want = grad(
      [&](const std::vector<Tensor>& p) {
        return sum(reference::swiglu(narrow(p[0], 2, 0, 7), narrow(p[0], 2, 7, 7)) * w);
      },
      {y})[0];
  expect_tensors_close(joined, want, Tol{1e-6, 1e-6});
}

TEST(Split, JoinOfGradientsSideBySideIsAView) {
  // Two gradients laid side by side in one buffer (as SwiGLU's backward writes them): split's vjp
  // (a concat) takes that buffer; in another order, or apart, it copies.
  Tensor x = zeros({3, 8}, Dtype::F32, Device::cpu());
  std::vector<float> values(24);
  for (size_t i = 0; i < values.size(); ++i) values[i] = float(i);
  Tensor buffer = Tensor::from_vector(values, {3, 8});
  Tensor left = Tensor::from_storage(buffer.storage(), {3, 4}, {8, 1}, 0, Dtype::F32);
  Tensor right = Tensor::from_storage(buffer.storage(), {3, 4}, {8, 1}, 4, Dtype::F32);
  Split s(1, {4, 4});
  std::vector<Tensor> outs = split(x, {4, 4}, 1);
  std::vector<Tensor> joined = s.vjp_outputs({x}, {left, right}, {0}, outs);
  EXPECT_TRUE(joined[0].storage() == buffer.storage());
  EXPECT_EQ(joined[0].to_vector<float>(), values);
  Tensor swapped = concat({right, left}, 1);
  EXPECT_FALSE(swapped.storage() == buffer.storage());
  std::vector<float> want(24);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 8; ++c) want[size_t(r * 8 + c)] = values[size_t(r * 8 + (c + 4) % 8)];
  EXPECT_EQ(swapped.to_vector<float>(), want);
  // One part without a gradient: zeros there.
  std::vector<Tensor> half = s.vjp_outputs({x}, {Tensor(), right}, {0}, outs);
  want = values;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) want[size_t(r * 8 + c)] = 0;
  EXPECT_EQ(half[0].to_vector<float>(), want);
}

TEST(Split, RejectsSizesThatDoNotAddUp) {
  Tensor x = zeros({2, 6}, Dtype::F32, Device::cpu());
  EXPECT_THROW(split(x, {2, 2}, 1), Error);
  EXPECT_THROW(split(x, {7, -1}, 1), Error);
}
