// The random streams on every device: seeding the default generator replays its draws (eager and
// lazy), keyed draws (RandomKey) are pure functions of the key, and every device draws the values the
// CPU draws for the same seed or key (counter-based generator).
#include "support/testing.h"

namespace wick {
namespace {

using namespace testing;

WICK_DEVICE_SUITE(RandomStreams);

WICK_DEVICE_TEST(RandomStreams, SeedingIsReproducible) {
  Device d = device();
  manual_seed(42);
  Values a = values(normal({1001}, 0, 1, Dtype::F32, d)), b = values(uniform({7, 3}, 0, 1, Dtype::F32, d));
  manual_seed(42);
  Values a2 = values(normal({1001}, 0, 1, Dtype::F32, d)), b2 = values(uniform({7, 3}, 0, 1, Dtype::F32, d));
  EXPECT_EQ(a, a2);
  EXPECT_EQ(b, b2);
  // Consecutive draws and other seeds differ.
  Values c = values(normal({1001}, 0, 1, Dtype::F32, d));
  EXPECT_NE(a, c);
  manual_seed(43);
  EXPECT_NE(a, values(normal({1001}, 0, 1, Dtype::F32, d)));
  // Lazy draws give the same values as eager ones.
  manual_seed(7);
  Values eager = values(uniform({5, 5}, -1, 1, Dtype::F32, d));
  manual_seed(7);
  ExecModeScope lazy(ExecMode::Lazy);
  EXPECT_EQ(eager, values(uniform({5, 5}, -1, 1, Dtype::F32, d)));
}

// Keyed draws are untouched by the default generator, differ for folded-in data, and dropout
// through one is differentiable with its fixed mask.
WICK_DEVICE_TEST(RandomStreams, KeyedDrawsAreReplayable) {
  RandomKey key = fold_in(RandomKey{3}, 8);
  manual_seed(1);
  std::vector<uint8_t> m1 = bernoulli({301}, 0.6, key, device()).to_vector<uint8_t>();
  normal({77}, 0, 1, Dtype::F32, device());
  manual_seed(99);
  EXPECT_EQ(bernoulli({301}, 0.6, key, device()).to_vector<uint8_t>(), m1);
  EXPECT_NE(bernoulli({301}, 0.6, fold_in(RandomKey{3}, 9), device()).to_vector<uint8_t>(), m1);
  EXPECT_NE(bernoulli({301}, 0.6, fold_in(RandomKey{4}, 8), device()).to_vector<uint8_t>(), m1);
  EXPECT_NE(fold_in(key, 0).seed, fold_in(key, 1).seed);
  // The mask is bernoulli(1 - p) under the same key.
  Rand x = rand({301}, Dtype::F64, 0.5, 1.5);
  Values y = values(dropout(x.t, 0.4, key));
  std::vector<uint8_t> keep = bernoulli({301}, 0.6, key, device()).to_vector<uint8_t>();
  for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], keep[i] ? x.v[i] / 0.6 : 0.0, 1e-12) << i;
  check_grads([&](const std::vector<Tensor>& in) { return dropout(in[0], 0.4, key) * in[0]; }, {rand({6, 7}).t},
              "keyed dropout");
}

// Element i of a draw is a function of (seed, counter + i) alone: the device's draws are the CPU's,
// bit for bit (normal within the last bit of sinf/logf), for odd sizes.
WICK_DEVICE_TEST(RandomStreams, DrawsAreTheCpuDraws) {
  Device c = Device::cpu(), d = device();
  for (int64_t n : {1, 7, 33, 129, 1000}) {
    std::string what = str_cat("n=", n);
    manual_seed(42);
    Tensor u_dev = uniform({n}, -2, 3, Dtype::F32, d), n_dev = normal({n, 3}, 1, 2, Dtype::F32, d);
    Tensor b_dev = bernoulli({n}, 0.3, d);
    manual_seed(42);
    Tensor u_cpu = uniform({n}, -2, 3, Dtype::F32, c), n_cpu = normal({n, 3}, 1, 2, Dtype::F32, c);
    Tensor b_cpu = bernoulli({n}, 0.3, c);
    expect_close(u_dev, values(u_cpu), u_cpu.shape(), Tol{0, 0}, what + " uniform");
    expect_close(n_dev, values(n_cpu), n_cpu.shape(), Tol{1e-6, 1e-6}, what + " normal");
    expect_close(b_dev, values(b_cpu), b_cpu.shape(), Tol{0, 0}, what + " bernoulli");
  }
  RandomKey key = fold_in(RandomKey{21}, 4);
  Shape odd{3, 17, 97};
  EXPECT_EQ(bernoulli(odd, 0.85, key, d).to_vector<uint8_t>(), bernoulli(odd, 0.85, key, c).to_vector<uint8_t>());
  // Dropout draws the CPU's mask, from the default generator and from a key, in every float dtype.
  for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16}) {
    Tensor x = testing::rand({4, 1, 33, 6}, dt).t;
    manual_seed(7);
    Tensor d_cpu = dropout(x, 0.25);
    manual_seed(7);
    expect_close(dropout(here(x), 0.25), values(d_cpu), x.shape(), str_cat("dropout ", dtype_name(dt)));
    expect_close(dropout(here(x), 0.15, key), values(dropout(x, 0.15, key)), x.shape(), Tol{0, 0},
                 str_cat("keyed dropout ", dtype_name(dt)));
  }
}

}  // namespace
}  // namespace wick
