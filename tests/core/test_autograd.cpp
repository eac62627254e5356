// Autograd mechanics: accumulation into broadcast and reused inputs, gradients through views,
// only the requested inputs traced, no-grad scopes, stop_gradient, the general vjp, and lazy
// mode (with and without fusion) giving the same values and gradients as eager mode.
#include "testing.h"

namespace wick {
namespace {

using namespace testing;

// Activation checkpointing: the same value and gradients as the plain function, the segment run
// a second time in the backward, and nothing special outside a gradient computation.
TEST(Autograd, CheckpointRecomputesInTheBackward) {
  Tensor x = normal({3, 4}, 0, 1, Dtype::F64, Device::cpu()).eval();
  Tensor w = normal({4, 5}, 0, 1, Dtype::F64, Device::cpu()).eval();
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

TEST(Autograd, BroadcastInputsAccumulate) {
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

TEST(Autograd, ReusedTensors) {
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

TEST(Autograd, ThroughViewsAndCopies) {
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

TEST(Autograd, OnlyRequestedInputsGetGradients) {
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

TEST(Autograd, IntegerResultsCarryNoGradient) {
  // argmax has no derivative; an index computed from a traced tensor is a constant, as in torch.
  Rand x = rand({3, 5});
  auto [value, grads] = value_and_grad(
      [](const std::vector<Tensor>& in) {
        Tensor idx = argmax(in[0], 1);
        return sum(take(in[0], idx, 1) * 2.0) + sum(astype(gt(in[0], zeros({})), Dtype::F64));
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

TEST(Autograd, NoGradAndStopGradient) {
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

TEST(Autograd, AsTypeGradientsKeepTheInputDtype) {
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

TEST(Autograd, GeneralVjp) {
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

TEST(Autograd, GradientsInLowerPrecision) {
  // Gradients computed in f32/bf16/f16 keep the input dtype and match the float64 gradients within
  // max|g - g64| <= tol * max|g64| (16-bit vjps round every intermediate).
  struct Case {
    const char* name;
    std::vector<Shape> shapes;
    Fn fn;
  };
  Tensor targets = Tensor::from_vector(std::vector<int64_t>{1, -100, 4}, {3});
  Tensor ids = Tensor::from_vector(std::vector<int64_t>{2, 0, 2}, {3});
  std::vector<Case> cases = {
      {"elementwise", {{3, 5}, {5}}, [](auto& in) { return gelu(in[0]) * sigmoid(in[1]) + exp(in[0] / 4.0) - in[1]; }},
      {"matmul", {{3, 5}, {5, 4}}, [](auto& in) { return matmul(in[0], in[1]); }},
      {"reductions", {{3, 5}}, [](auto& in) { return sum(in[0], {1}) + max(in[0], {1}) + logsumexp(in[0], {1}); }},
      {"softmax", {{3, 5}}, [](auto& in) { return softmax(in[0], 0) + log_softmax(in[0]); }},
      {"norms", {{3, 5}, {5}}, [](auto& in) { return layer_norm(in[0], in[1], in[1]) + rms_norm(in[0], in[1]); }},
      {"rope", {{1, 2, 3, 4}}, [](auto& in) { return rope(in[0], 1); }},
      {"swiglu", {{3, 5}, {3, 5}}, [](auto& in) { return swiglu(in[0], in[1]); }},
      {"attention",
       {{1, 2, 3, 4}, {1, 1, 5, 4}},
       [](auto& in) { return scaled_dot_product_attention(in[0], in[1], in[1], std::nullopt, true); }},
      {"cross_entropy", {{3, 5}}, [&](auto& in) { return cross_entropy(in[0], targets, -100, Reduction::Mean); }},
      {"indexing", {{4, 5}, {3, 5}}, [&](auto& in) { return index_add(take(in[0], ids, 0), 0, ids, in[1]); }},
      {"views",
       {{3, 5}},
       [](auto& in) {
         return concat({transpose(in[0], 0, 1), slice(transpose(in[0], 0, 1), 0, 1, 5, 2)}, 0);
       }},
  };
  for (const Case& c : cases) {
    std::vector<Tensor> x64;
    for (const Shape& s : c.shapes) x64.push_back(rand(s).t);
    Tensor y = c.fn(x64);
    Tensor w = make(random_values(y.numel()), y.shape());
    auto objective = [&](const std::vector<Tensor>& in) { return sum(astype(c.fn(in), Dtype::F64) * w); };
    for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16}) {
      std::vector<Tensor> xs;
      for (const Tensor& x : x64) xs.push_back(astype(x, dt));
      std::vector<Tensor> xs64;  // the rounded inputs, in f64
      for (const Tensor& x : xs) xs64.push_back(astype(x, Dtype::F64));
      auto ref = grad(objective, xs64);
      auto g = grad(objective, xs);
      double tol = dt == Dtype::F32 ? 1e-5 : dt == Dtype::F16 ? 1e-2 : 5e-2;
      for (size_t i = 0; i < xs.size(); ++i) {
        std::string what = str_cat(c.name, " ", dtype_name(dt), " gradient ", i);
        EXPECT_EQ(g[i].dtype(), dt) << what;
        Values gv = values(g[i]), rv = values(ref[i]);
        double scale = 0, err = 0;
        for (size_t j = 0; j < rv.size(); ++j) {
          scale = std::max(scale, std::abs(rv[j]));
          err = std::max(err, std::abs(gv[j] - rv[j]));
        }
        EXPECT_LE(err, tol * std::max(scale, 1e-3)) << what << " (max |g| " << scale << ")";
      }
    }
  }
}

// A function that exercises many primitives, for comparing execution modes.
Tensor composite(const std::vector<Tensor>& in) {
  const Tensor &x = in[0], &w = in[1];
  Tensor h = gelu(linear(x, w)) + sigmoid(x) * 0.5;
  Tensor n = layer_norm(h, std::nullopt, std::nullopt);
  Tensor s = softmax(transpose(n, 0, 1), -1);
  Tensor r = concat({slice(s, 1, 0, 4, 2), exp(-abs(s))}, 1);
  return sum(r * r) + mean(logsumexp(n, {0})) + sum(square(silu(x)) * tanh(x));
}

TEST(Autograd, LazyMatchesEager) {
  Rand x = rand({5, 4}), w = rand({4, 4});
  auto [ve, ge] = value_and_grad(composite, {x.t, w.t});
  for (bool fusion : {false, true}) {
    bool saved = fusion_enabled();
    set_fusion_enabled(fusion);
    {
      ExecModeScope lazy(ExecMode::Lazy);
      // Forward only: nothing runs until eval.
      Tensor y = composite({x.t, w.t});
      EXPECT_FALSE(y.is_evaluated());
      eval({y});
      expect_close(y, values(ve), {}, Tol{1e-12, 1e-12}, str_cat("lazy forward, fusion ", fusion));
      auto [vl, gl] = value_and_grad(composite, {x.t, w.t});
      eval({vl, gl[0], gl[1]});
      std::string what = str_cat("lazy, fusion ", fusion);
      expect_close(vl, values(ve), {}, Tol{1e-12, 1e-12}, what + " value");
      expect_tensors_close(gl[0], ge[0], Tol{1e-12, 1e-10}, what + " grad x");
      expect_tensors_close(gl[1], ge[1], Tol{1e-12, 1e-10}, what + " grad w");
    }
    set_fusion_enabled(saved);
  }
  // And both match finite differences.
  check_grads(composite, {x.t, w.t}, "composite eager");
  {
    ExecModeScope lazy(ExecMode::Lazy);
    check_grads(composite, {x.t, w.t}, "composite lazy");
  }
}

// A tiny attention block ending in a loss, for comparing execution modes on the fused ops.
Tensor attention_block(const std::vector<Tensor>& in) {
  const Tensor &x = in[0], &wq = in[1], &wk = in[2], &norm = in[3];
  Tensor h = rms_norm(x, norm);                                      // [1, 4, 6]
  Tensor q = transpose(reshape(linear(h, wq), {1, 4, 2, 3}), 1, 2);  // [1, 2, 4, 3]
  Tensor k = transpose(reshape(linear(h, wk), {1, 4, 1, 3}), 1, 2);  // [1, 1, 4, 3]
  q = rope(concat({q, zeros({1, 2, 4, 1}, q.dtype())}, -1), 2);      // head dim 4
  k = rope(concat({k, zeros({1, 1, 4, 1}, k.dtype())}, -1), 2);
  Tensor o = scaled_dot_product_attention(q, k, k, std::nullopt, true);  // [1, 2, 4, 4]
  Tensor y = swiglu(o, o * 0.5 + 1.0);
  Tensor logits = reshape(transpose(y, 1, 2), {1, 4, 8});
  Tensor targets = Tensor::from_vector(std::vector<int64_t>{3, -100, 7, 0}, {1, 4});
  return cross_entropy(logits, targets) + sum(log_softmax(logits, 1) * 0.01);
}

TEST(Autograd, LazyMatchesEagerOnFusedOps) {
  Rand x = rand({1, 4, 6}), wq = rand({6, 6}), wk = rand({3, 6}), norm = rand({6});
  std::vector<Tensor> inputs{x.t, wq.t, wk.t, norm.t};
  auto [ve, ge] = value_and_grad(attention_block, inputs);
  ExecModeScope lazy(ExecMode::Lazy);
  auto [vl, gl] = value_and_grad(attention_block, inputs);
  eval({vl, gl[0], gl[1], gl[2], gl[3]});
  expect_tensors_close(vl, ve, Tol{1e-12, 1e-10}, "lazy value");
  for (size_t i = 0; i < inputs.size(); ++i)
    expect_tensors_close(gl[i], ge[i], Tol{1e-12, 1e-10}, str_cat("lazy gradient ", i));
}

TEST(Autograd, LazyGraphsSharingNodes) {
  Rand x = rand({4, 6}, Dtype::F32);
  auto ref_of = [&](auto f) {
    Values r;
    for (double v : x.v) r.push_back(f(v));
    return r;
  };
  ExecModeScope lazy(ExecMode::Lazy);
  Tensor b, c;
  {
    Tensor a = exp(x.t);  // dropped below: only b and c hold it
    b = a * 2.0;
    c = sqrt(a) + 1.0;
  }
  EXPECT_FALSE(b.is_evaluated());
  eval({b});
  EXPECT_FALSE(c.is_evaluated());
  expect_close(b, ref_of([](double v) { return std::exp(v) * 2; }), {4, 6}, "first consumer");
  expect_close(c, ref_of([](double v) { return std::sqrt(std::exp(v)) + 1; }), {4, 6}, "second consumer, later");
  // Views, a copying reshape and joins, evaluated together with one of their inputs.
  Tensor t = reshape(transpose(x.t * 1.0, 0, 1), {4, 6});
  Tensor s = concat({slice(t, 1, 1, 6, 2), narrow(t, 1, 0, 1)}, 1);
  Tensor total = sum(s, {0});
  eval({total, t});
  Values tv;
  for (int j = 0; j < 6; ++j)
    for (int i = 0; i < 4; ++i) tv.push_back(x.v[i * 6 + j]);
  expect_close(t, tv, {4, 6}, Tol{0, 0}, "lazy transpose-reshape");
  Values tot(4, 0.0);
  for (int i = 0; i < 4; ++i)
    for (int j : {1, 3, 5, 0}) tot[j == 0 ? 3 : j / 2] += tv[i * 6 + j];
  expect_close(total, tot, {4}, "lazy slices and concat");
}

TEST(Autograd, LazyLongChainsAndManyInputs) {
  // Chains longer than one fused program and with more inputs than it can load.
  std::vector<Rand> in;
  for (int i = 0; i < 12; ++i) in.push_back(rand({5, 3}, Dtype::F32, 0.5, 1.5));
  auto chain = [&]() {
    Tensor y = in[0].t;
    for (int step = 0; step < 60; ++step)
      y = step % 3 == 0 ? y * in[step % 12].t : step % 3 == 1 ? sin(y) + 1.0 : y / 1.5;
    return y;
  };
  Tensor eager = chain();
  Values ref(15);
  for (int e = 0; e < 15; ++e) {
    double y = in[0].v[e];
    for (int step = 0; step < 60; ++step)
      y = step % 3 == 0   ? double(float(y * in[step % 12].v[e]))
          : step % 3 == 1 ? double(float(float(std::sin(float(y))) + 1.0f))
                          : double(float(y / 1.5));
    ref[e] = y;
  }
  expect_close(eager, ref, {5, 3}, Tol{1e-5, 1e-4}, "eager chain");
  ExecModeScope lazy(ExecMode::Lazy);
  Tensor l = chain();
  eval({l});
  expect_tensors_close(l, eager, Tol{0, 0}, "lazy chain of 60 ops over 12 inputs");
}

TEST(Autograd, LazyForwardOfEveryOpFamily) {
  Rand x = rand({2, 3, 4}, Dtype::F32), w = rand({5, 4}, Dtype::F32), g = rand({4}, Dtype::F32);
  Tensor bias = rand({5}, Dtype::F32).t;
  Tensor ids = Tensor::from_vector(std::vector<int64_t>{1, 0, 1}, {3});
  Tensor add_ids = Tensor::from_vector(std::vector<int64_t>{3, 3}, {2});
  Tensor targets = Tensor::from_vector(std::vector<int64_t>{1, 3, -100, 0, 2, 1}, {2, 3});
  Tensor x4 = unsqueeze(x.t, 0);
  std::vector<std::pair<const char*, std::function<Tensor()>>> ops = {
      {"creation", [] { return arange(0, 6, 1, Dtype::F32) + full({6}, 2.0) * ones({}); }},
      {"astype", [&] { return astype(astype(x.t * 50.0, Dtype::I32), Dtype::BF16); }},
      {"views", [&] { return reshape(transpose(slice(x.t, 2, 1, 4, 2), 0, 2), {-1}); }},
      {"joins",
       [&] {
         return concat(split(x.t, {1, 3}, 2), 2) + stack({x.t, x.t * 2.0}, 0);
       }},
      {"reductions",
       [&] {
         return concat({sum(x.t, {0, 2}), reshape(max(x.t, {1}), {-1}), reshape(logsumexp(x.t, {2}), {-1})}, 0);
       }},
      {"argmax", [&] { return argmax(x.t, 1); }},
      {"matmul", [&] { return linear(x.t, w.t, bias) + sum(matmul(x.t, transpose(x.t, 1, 2))); }},
      {"indexing",
       [&] {
         return index_add(take(x.t, ids, 1), 2, add_ids, ones({2, 3, 2}));
       }},
      {"slice_update",
       [&] {
         return slice_update(zeros({2, 5, 4}), x.t, {0, 1, 0});
       }},
      {"norms", [&] { return layer_norm(x.t, g.t, g.t) + rms_norm(x.t, g.t) + softmax(x.t, 1) - log_softmax(x.t); }},
      {"rope", [&] { return rope(x4, 3); }},
      {"attention", [&] { return scaled_dot_product_attention(x4, x4, x4, std::nullopt, true); }},
      {"loss", [&] { return cross_entropy(x.t, targets, -100, Reduction::None) + sum(swiglu(x.t, x.t)); }},
  };
  for (const auto& [name, f] : ops) {
    Tensor eager = f();
    for (bool fusion : {false, true}) {
      bool saved = fusion_enabled();
      set_fusion_enabled(fusion);
      ExecModeScope lazy(ExecMode::Lazy);
      Tensor l = f();
      eval({l});
      expect_tensors_close(l, eager, Tol{0, 0}, str_cat("lazy ", name, fusion ? " fused" : ""));
      set_fusion_enabled(saved);
    }
  }
}

TEST(Autograd, LazyElementwiseChainsAllDtypes) {
  // Long elementwise chains are what fusion rewrites; compare lazy (fused) with eager per dtype.
  for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F64, Dtype::F16}) {
    Rand a = rand({3, 7}, dt), b = rand({7}, dt);
    auto chain = [](const Tensor& a, const Tensor& b) {
      Tensor t = exp(a * 0.5) - b;
      Tensor u = where(gt(a, b), sigmoid(t), tanh(t * b));  // a branch that rounding cannot flip
      return astype(u * u + relu(a) / (1.0 + abs(b)), Dtype::F32) + 1.0;
    };
    Tensor eager = chain(a.t, b.t);
    Tensor t_view = transpose(a.t, 0, 1);
    Tensor eager_view = chain(transpose(t_view, 0, 1), b.t);
    ExecModeScope lazy(ExecMode::Lazy);
    Tensor l = chain(a.t, b.t), lv = chain(transpose(t_view, 0, 1), b.t);
    Tensor kept = exp(a.t * 0.5);  // an intermediate also held outside
    Tensor l2 = sigmoid(kept) + kept;
    eval({l, lv, l2});
    // A fused chain keeps 16-bit intermediates in f32 (eager rounds each): a few roundings apart.
    Tol tol = dt == Dtype::BF16 ? Tol{0.02, 0.02} : dt == Dtype::F16 ? Tol{2e-3, 2e-3} : Tol{0, 0};
    expect_tensors_close(l, eager, tol, str_cat("lazy chain ", dtype_name(dt)));
    expect_tensors_close(lv, eager_view, tol, str_cat("lazy chain of a view ", dtype_name(dt)));
    ExecModeScope eager_scope(ExecMode::Eager);
    Tensor e2 = sigmoid(exp(a.t * 0.5)) + exp(a.t * 0.5);
    expect_tensors_close(l2, e2, tol, str_cat("lazy chain with a shared node ", dtype_name(dt)));
    expect_tensors_close(kept, exp(a.t * 0.5), Tol{0, 0}, "shared node value");
  }
}

}  // namespace
}  // namespace wick
