// Autograd mechanics on every device: accumulation into broadcast and reused inputs, gradients
// through views and copies, only the requested inputs traced, integer results without gradients,
// no-grad scopes, stop_gradient, dtypes of gradients, the general vjp and activation checkpointing.
#include "support/testing.h"

namespace wick {
namespace {

using namespace testing;

WICK_DEVICE_SUITE(Autograd);

// Activation checkpointing: the same value and gradients as the plain function, the segment run
// a second time in the backward, and nothing special outside a gradient computation.
WICK_DEVICE_TEST(Autograd, CheckpointRecomputesInTheBackward) {
  Tensor x = normal({3, 4}, 0, 1, Dtype::F64, device()).eval();
  Tensor w = normal({4, 5}, 0, 1, Dtype::F64, device()).eval();
  int calls = 0;
  auto segment = [&calls](const std::vector<Tensor>& in) {
    ++calls;
    return tanh(matmul(in[0], in[1])) * exp(sum(in[0]) * 0.1);
  };
  auto plain = [&](const std::vector<Tensor>& in) { return sum(segment(in) * segment(in)); };
  auto checkpointed = [&](const std::vector<Tensor>& in) {
    Tensor y = checkpoint(segment, in);
    return sum(y * y);
  };
  auto [v0, g0] = value_and_grad(plain, {x, w});
  calls = 0;
  auto [v1, g1] = value_and_grad(checkpointed, {x, w});
  EXPECT_EQ(calls, 2) << "one forward without a graph, one in the backward";
  EXPECT_NEAR(v1.item<double>(), v0.item<double>(), 1e-12);
  for (int i = 0; i < 2; ++i) EXPECT_LE(max(abs(g1[i] - g0[i])).item<double>(), 1e-12) << "input " << i;
  check_grads(checkpointed, {x, w}, "checkpoint");
  calls = 0;
  {
    NoGradGuard no_grad;
    checkpoint(segment, {x, w});
  }
  EXPECT_EQ(calls, 1);
  ExecModeScope lazy(ExecMode::Lazy);
  expect_error([&] { value_and_grad(checkpointed, {x, w}); }, {"checkpoint", "eager"});
}

WICK_DEVICE_TEST(Autograd, BroadcastInputsAccumulate) {
  Rand x = rand({3}), y = rand({2, 3}), s = rand({});
  auto [value, grads] = value_and_grad(
      [](const std::vector<Tensor>& in) {
        return sum(broadcast_to(in[0], {4, 3}) * 2.0) + sum(in[1] * in[2]);
      },
      {x.t, y.t, s.t});
  expect_close(grads[0], Values(3, 8.0), {3}, "broadcast_to");
  expect_close(grads[1], Values(6, s.v[0]), {2, 3}, "y");
  double ysum = 0;
  for (double v : y.v) ysum += v;
  expect_close(grads[2], {ysum}, {}, "0-dim scalar broadcast");
  check_grads([](const std::vector<Tensor>& in) { return in[0] * in[1] + in[2] - in[1] / (2.0 + in[2] * in[2]); },
              {x.t, y.t, s.t}, "mixed broadcasting");
}

WICK_DEVICE_TEST(Autograd, ReusedTensors) {
  Rand x = rand({2, 3});
  auto [value, grads] = value_and_grad([](const std::vector<Tensor>& in) { return sum(in[0] * in[0] + in[0]); }, {x.t});
  Values ref;
  for (double v : x.v) ref.push_back(2 * v + 1);
  expect_close(grads[0], ref, {2, 3}, "x*x + x");
  check_grads(
      [](const std::vector<Tensor>& in) {
        Tensor h = tanh(in[0]);
        Tensor t = transpose(h, 0, 1);
        return matmul(h, t) + sum(h * in[0], {1}, true) + sum(add(in[0], in[0]), {1}, true);
      },
      {x.t}, "diamond");
}

WICK_DEVICE_TEST(Autograd, ThroughViewsAndCopies) {
  Rand x = rand({4, 6});
  check_grads(
      [](const std::vector<Tensor>& in) {
        Tensor v = reshape(transpose(slice(in[0], 1, 1, 6, 2), 0, 1), {2, 6});  // slice, permute, copying reshape
        return concat({v * v, unsqueeze(sum(v, {0}), 0)}, 0);
      },
      {x.t}, "slice/permute/reshape/concat");
  check_grads(
      [](const std::vector<Tensor>& in) {
        return expand(unsqueeze(in[0], 1), {-1, 3, -1}) * unsqueeze(in[0], 1);
      },
      {x.t}, "expand");
}

WICK_DEVICE_TEST(Autograd, OnlyRequestedInputsGetGradients) {
  Rand a = rand({3}), b = rand({3});
  bool b_tracked = true;
  auto [value, grads] = value_and_grad(
      [&](const std::vector<Tensor>& in) {
        Tensor bb = exp(b.t);  // a constant: no graph is kept for it
        b_tracked = bb.tracks_grad();
        return sum(in[0] * bb);
      },
      {a.t});
  EXPECT_FALSE(b_tracked);
  ASSERT_EQ(grads.size(), 1u);
  Values ref;
  for (double v : b.v) ref.push_back(std::exp(v));
  expect_close(grads[0], ref, {3});
  // An input the function ignores gets zeros of its shape and dtype.
  auto g = grad([](const std::vector<Tensor>& in) { return sum(in[0]); }, {a.t, make({1, 2}, {2}, Dtype::F32)});
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[1].dtype(), Dtype::F32);
  expect_close(g[1], {0, 0}, {2}, Tol{0, 0});
  // Inputs keep no graph afterwards.
  EXPECT_FALSE(a.t.tracks_grad());
}

WICK_DEVICE_TEST(Autograd, IntegerResultsCarryNoGradient) {
  // argmax has no derivative; an index computed from a traced tensor is a constant, as in torch.
  Rand x = rand({3, 5});
  auto [value, grads] = value_and_grad(
      [](const std::vector<Tensor>& in) {
        Tensor idx = argmax(in[0], 1);
        return sum(take(in[0], idx, 1) * 2.0) +
               sum(astype(gt(in[0], zeros({}, Dtype::F64, in[0].device())), Dtype::F64));
      },
      {x.t});
  // take(in[0], idx[3], dim 1) gives [3, 3]: element (r, c) is x[r, idx[c]].
  Values ref(15, 0.0);
  Values idx;
  for (int r = 0; r < 3; ++r) {
    int best = 0;
    for (int c = 1; c < 5; ++c)
      if (x.v[r * 5 + c] > x.v[r * 5 + best]) best = c;
    idx.push_back(best);
  }
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) ref[r * 5 + int(idx[c])] += 2.0;
  expect_close(grads[0], ref, {3, 5}, "argmax path");
  // Rounding through an integer dtype is piecewise constant: its derivative is 0, not 1.
  auto g = grad([](const std::vector<Tensor>& in) { return sum(astype(astype(in[0] * 4.0, Dtype::I32), Dtype::F64)); },
                {x.t});
  expect_close(g[0], Values(15, 0.0), {3, 5}, "through an integer cast");
  auto g2 = grad(
      [](const std::vector<Tensor>& in) { return sum(astype(argmax(in[0], 0), Dtype::F64) * narrow(in[0], 0, 0, 1)); },
      {x.t});
  Values ref2(15, 0.0);
  for (int c = 0; c < 5; ++c) {
    int best = 0;
    for (int r = 1; r < 3; ++r)
      if (x.v[r * 5 + c] > x.v[best * 5 + c]) best = r;
    ref2[c] = best;
  }
  expect_close(g2[0], ref2, {3, 5}, "argmax used as a value");
}

WICK_DEVICE_TEST(Autograd, NoGradAndStopGradient) {
  Rand x = rand({4});
  auto [value, grads] = value_and_grad(
      [](const std::vector<Tensor>& in) {
        Tensor c;
        {
          NoGradGuard guard;
          EXPECT_FALSE(grad_enabled());
          c = in[0] * 1.0;
          EXPECT_FALSE(c.tracks_grad());
        }
        EXPECT_TRUE(grad_enabled());
        return sum(c * in[0]) + sum(stop_gradient(in[0]) * in[0]);
      },
      {x.t});
  Values ref;
  for (double v : x.v) ref.push_back(2 * v);  // not 4v: both other factors are constants
  expect_close(grads[0], ref, {4}, "no-grad scope");
  EXPECT_TRUE(grad_enabled());
  // value_and_grad traces even inside a no-grad scope.
  NoGradGuard outer;
  auto g = grad([](const std::vector<Tensor>& in) { return sum(in[0] * in[0]); }, {x.t});
  Values ref2;
  for (double v : x.v) ref2.push_back(2 * v);
  expect_close(g[0], ref2, {4}, "inside an outer no-grad scope");
  EXPECT_FALSE(grad_enabled());
}

WICK_DEVICE_TEST(Autograd, AsTypeGradientsKeepTheInputDtype) {
  Rand x = rand({5});
  auto [value, grads] = value_and_grad(
      [](const std::vector<Tensor>& in) { return sum(astype(astype(in[0], Dtype::F32), Dtype::F64) * 3.0); }, {x.t});
  EXPECT_EQ(grads[0].dtype(), Dtype::F64);
  expect_close(grads[0], Values(5, 3.0), {5}, "astype");
  Tensor b = make({1, 2, 3}, {3}, Dtype::BF16);
  auto gb = grad([](const std::vector<Tensor>& in) { return sum(astype(in[0], Dtype::F32) * in[0]); }, {b});
  EXPECT_EQ(gb[0].dtype(), Dtype::BF16);
  expect_close(gb[0], {2, 4, 6}, {3}, "bf16 input");
}

WICK_DEVICE_TEST(Autograd, GeneralVjp) {
  Rand x = rand({2, 3}), ct0 = rand({3}), ct1 = rand({2, 3});
  auto [outs, grads] = vjp(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{sum(in[0], {0}), in[0] * 3.0};
      },
      {x.t}, {ct0.t, ct1.t});
  ASSERT_EQ(outs.size(), 2u);
  Values ref;
  for (int i = 0; i < 6; ++i) ref.push_back(ct0.v[i % 3] + 3 * ct1.v[i]);
  expect_close(grads[0], ref, {2, 3}, "vjp");
}

}  // namespace
}  // namespace wick
