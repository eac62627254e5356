// The causal LM loss against a float64 computation written out here: position t predicts label
// t + 1, -100 is ignored, the mean is over target tokens; and bf16 logits give the loss and the
// gradient of their f32 upcast (the loss is computed in f32 whatever the logits' dtype).
#include <gtest/gtest.h>

#include <cmath>

#include "wick/core/autograd.h"
#include "wick/core/ops.h"
#include "wick/train/loss.h"

using namespace wick;

namespace {

TEST(CausalLmLoss, ShiftedMeanOverTargetsMatchesFloat64) {
  const int64_t b = 2, t = 5, v = 7;
  Tensor logits = normal({b, t, v}, 0, 2, Dtype::F32, Device::cpu()).eval();
  std::vector<int64_t> lab = {3, 1, -100, 6, 0, /**/ 2, -100, -100, 4, 5};
  Tensor labels = Tensor::from_vector(lab, {b, t});
  std::vector<double> x = logits.to_vector<double>();
  double total = 0;
  int count = 0;
  for (int64_t i = 0; i < b; ++i)
    for (int64_t p = 0; p + 1 < t; ++p) {
      int64_t target = lab[i * t + p + 1];
      if (target == -100) continue;
      const double* row = &x[(i * t + p) * v];
      double m = row[0], s = 0;
      for (int64_t c = 0; c < v; ++c) m = std::max(m, row[c]);
      for (int64_t c = 0; c < v; ++c) s += std::exp(row[c] - m);
      total += std::log(s) + m - row[target];
      ++count;
    }
  EXPECT_EQ(count, 5);
  EXPECT_NEAR(train::causal_lm_loss(logits, labels).item<double>(), total / count, 1e-5);
  EXPECT_NEAR(train::causal_lm_loss_sum(logits, labels).item<double>(), total, 1e-4);
  EXPECT_EQ(train::count_targets(labels), 5);
}

TEST(CausalLmLoss, Bf16LogitsGiveTheLossAndGradientOfTheirF32Upcast) {
  Tensor logits = astype(normal({3, 9, 50}, 0, 3, Dtype::F32, Device::cpu()), Dtype::BF16).eval();
  Tensor labels = astype(uniform({3, 9}, 0, 50, Dtype::F32, Device::cpu()), Dtype::I64).eval();
  auto [l16, g16] = value_and_grad([&](const std::vector<Tensor>& p) { return train::causal_lm_loss(p[0], labels); },
                                   {logits});
  auto [l32, g32] = value_and_grad([&](const std::vector<Tensor>& p) { return train::causal_lm_loss(p[0], labels); },
                                   {astype(logits, Dtype::F32).eval()});
  EXPECT_EQ(l16.item<double>(), l32.item<double>());
  EXPECT_EQ(g16[0].dtype(), Dtype::BF16);
  // The bf16 gradient is the f32 gradient rounded once.
  EXPECT_EQ(g16[0].to_vector<float>(), astype(g32[0], Dtype::BF16).to_vector<float>());
  // The last position predicts nothing: its gradient is zero.
  Tensor last = narrow(g16[0], 1, 8, 1);
  EXPECT_EQ(sum(abs(astype(last, Dtype::F32))).item<double>(), 0.0);
}

}  // namespace
