// Random draws on every device (uniform, normal, bernoulli) and dropout: statistics within bounds
// of several standard errors, dropout's scaling and its gradient (the same mask and scale).
#include <cmath>

#include "support/testing.h"

namespace wick {
namespace {

using namespace testing;

struct Stats {
  double mean, std;
};
Stats stats(const Values& v) {
  double m = 0, s = 0;
  for (double x : v) m += x;
  m /= double(v.size());
  for (double x : v) s += (x - m) * (x - m);
  return {m, std::sqrt(s / double(v.size()))};
}

WICK_DEVICE_SUITE(Random);

WICK_DEVICE_TEST(Random, UniformStatistics) {
  manual_seed(1);
  const int64_t n = 200001;
  Values u = values(uniform({n}, 0, 1, Dtype::F32, device()));
  for (double x : u) ASSERT_TRUE(x >= 0 && x < 1) << x;
  Stats s = stats(u);
  EXPECT_NEAR(s.mean, 0.5, 0.005);
  EXPECT_NEAR(s.std, std::sqrt(1.0 / 12), 0.005);
  std::vector<int> bins(10, 0);
  for (double x : u) ++bins[int(x * 10)];
  for (int b : bins) EXPECT_NEAR(double(b) / n, 0.1, 0.005);
  Tensor r = uniform({n}, -3, 5, Dtype::F64, device());
  EXPECT_EQ(r.dtype(), Dtype::F64);
  EXPECT_EQ(r.device(), device());
  Values rv = values(r);
  for (double x : rv) ASSERT_TRUE(x >= -3 && x < 5) << x;
  Stats rs = stats(rv);
  EXPECT_NEAR(rs.mean, 1, 0.05);
  EXPECT_NEAR(rs.std, 8 / std::sqrt(12.0), 0.05);
  EXPECT_EQ(uniform({3}, 0, 1, Dtype::BF16, device()).dtype(), Dtype::BF16);
}

WICK_DEVICE_TEST(Random, NormalStatistics) {
  manual_seed(2);
  const int64_t n = 200001;  // odd: the last Box-Muller pair is half used
  Values z = values(normal({n}, 0, 1, Dtype::F32, device()));
  Stats s = stats(z);
  EXPECT_NEAR(s.mean, 0, 0.01);
  EXPECT_NEAR(s.std, 1, 0.01);
  int64_t within1 = 0, within2 = 0;
  for (double x : z) {
    within1 += std::abs(x) < 1;
    within2 += std::abs(x) < 2;
  }
  EXPECT_NEAR(double(within1) / n, 0.682689, 0.005);
  EXPECT_NEAR(double(within2) / n, 0.954500, 0.003);
  // The two values of a Box-Muller pair are uncorrelated.
  double corr = 0;
  for (int64_t i = 0; i + 1 < n; i += 2) corr += z[i] * z[i + 1];
  EXPECT_NEAR(corr / double(n / 2), 0, 0.015);
  Stats t = stats(values(normal({n}, 3, 2, Dtype::F64, device())));
  EXPECT_NEAR(t.mean, 3, 0.02);
  EXPECT_NEAR(t.std, 2, 0.02);
  Tensor h = normal({4, 5}, 0, 1, Dtype::F16, device());
  EXPECT_EQ(h.dtype(), Dtype::F16);
  EXPECT_EQ(shape_str(h.shape()), "[4,5]");
}

WICK_DEVICE_TEST(Random, BernoulliFrequency) {
  manual_seed(3);
  const int64_t n = 100000;
  for (double p : {0.0, 0.3, 0.9, 1.0}) {
    Tensor b = bernoulli({n}, p, device());
    EXPECT_EQ(b.dtype(), Dtype::Bool);
    double freq = double(sum(b).item<int64_t>()) / n;
    EXPECT_NEAR(freq, p, 0.01) << p;
  }
}

WICK_DEVICE_TEST(Random, DropoutStatisticsScaleAndGradient) {
  manual_seed(4);
  const double p = 0.25;
  Rand x = rand({400, 250}, Dtype::F32, 0.5, 1.5);  // no zeros in x
  Tensor y = dropout(x.t, p);
  EXPECT_EQ(y.dtype(), Dtype::F32);
  EXPECT_EQ(y.device(), device());
  Values yv = values(y);
  int64_t kept = 0;
  for (size_t i = 0; i < yv.size(); ++i) {
    if (yv[i] == 0) continue;
    ++kept;
    ASSERT_NEAR(yv[i], x.v[i] / (1 - p), 1e-6 * x.v[i]) << i;
  }
  EXPECT_NEAR(double(kept) / double(yv.size()), 1 - p, 0.01);
  // The expectation is preserved.
  EXPECT_NEAR(stats(yv).mean, stats(x.v).mean, 0.01);
  // Evaluation mode and p = 0 are the identity.
  EXPECT_TRUE(dropout(x.t, p, false).same(x.t));
  EXPECT_TRUE(dropout(x.t, 0.0).same(x.t));
  // The gradient is the same mask and scale.
  Rand xd = rand({50, 40});
  Tensor out;
  auto [value, grads] = value_and_grad(
      [&](const std::vector<Tensor>& in) {
        out = dropout(in[0], 0.5);
        return sum(out);
      },
      {xd.t});
  Values ov = values(out), gv = values(grads[0]);
  for (size_t i = 0; i < ov.size(); ++i) ASSERT_EQ(gv[i], ov[i] == 0 ? 0.0 : 2.0) << i;
}

}  // namespace
}  // namespace wick
