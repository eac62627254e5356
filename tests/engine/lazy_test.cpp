// Lazy execution on every device: recorded graphs evaluate to the eager values and gradients (with
// and without fusion), for every op family and for graphs whose nodes are shared or released early.
#include "support/testing.h"

namespace wick {
namespace {

using namespace testing;

WICK_DEVICE_SUITE(Lazy);

// A function that exercises many primitives, for comparing execution modes.
Tensor composite(const std::vector<Tensor>& in) {
  const Tensor &x = in[0], &w = in[1];
  Tensor h = gelu(linear(x, w)) + sigmoid(x) * 0.5;
  Tensor n = layer_norm(h, std::nullopt, std::nullopt);
  Tensor s = softmax(transpose(n, 0, 1), -1);
  Tensor r = concat({slice(s, 1, 0, 4, 2), exp(-abs(s))}, 1);
  return sum(r * r) + mean(logsumexp(n, {0})) + sum(square(silu(x)) * tanh(x));
}

WICK_DEVICE_TEST(Lazy, MatchesEager) {
  Rand x = rand({5, 4}), w = rand({4, 4});
  auto [ve, ge] = value_and_grad(composite, {x.t, w.t});
  for (bool fusion : {false, true}) {
    FusionScope fusing(fusion);
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
  Tensor h = rms_norm(x, norm);                                              // [1, 4, 6]
  Tensor q = transpose(reshape(linear(h, wq), {1, 4, 2, 3}), 1, 2);          // [1, 2, 4, 3]
  Tensor k = transpose(reshape(linear(h, wk), {1, 4, 1, 3}), 1, 2);          // [1, 1, 4, 3]
  q = rope(concat({q, zeros({1, 2, 4, 1}, q.dtype(), q.device())}, -1), 2);  // head dim 4
  k = rope(concat({k, zeros({1, 1, 4, 1}, k.dtype(), k.device())}, -1), 2);
  Tensor o = scaled_dot_product_attention(q, k, k, std::nullopt, true);  // [1, 2, 4, 4]
  Tensor y = swiglu(o, o * 0.5 + 1.0);
  Tensor logits = reshape(transpose(y, 1, 2), {1, 4, 8});
  Tensor targets = ints({3, -100, 7, 0}, {1, 4}, Dtype::I64, x.device());
  return cross_entropy(logits, targets) + sum(log_softmax(logits, 1) * 0.01);
}

WICK_DEVICE_TEST(Lazy, MatchesEagerOnFusedOps) {
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

WICK_DEVICE_TEST(Lazy, GraphsSharingNodes) {
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

WICK_DEVICE_TEST(Lazy, ForwardOfEveryOpFamily) {
  Rand x = rand({2, 3, 4}, Dtype::F32), w = rand({5, 4}, Dtype::F32), g = rand({4}, Dtype::F32);
  Tensor bias = rand({5}, Dtype::F32).t;
  Tensor ids = ints({1, 0, 1}, {3});
  Tensor add_ids = ints({3, 3}, {2});
  Tensor targets = ints({1, 3, -100, 0, 2, 1}, {2, 3});
  Device d = device();
  Tensor x4 = unsqueeze(x.t, 0);
  std::vector<std::pair<const char*, std::function<Tensor()>>> ops = {
      {"creation",
       [&] { return arange(0, 6, 1, Dtype::F32, d) + full({6}, 2.0, Dtype::F32, d) * ones({}, Dtype::F32, d); }},
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
         return index_add(take(x.t, ids, 1), 2, add_ids, ones({2, 3, 2}, Dtype::F32, d));
       }},
      {"slice_update",
       [&] {
         return slice_update(zeros({2, 5, 4}, Dtype::F32, d), x.t, {0, 1, 0});
       }},
      {"norms", [&] { return layer_norm(x.t, g.t, g.t) + rms_norm(x.t, g.t) + softmax(x.t, 1) - log_softmax(x.t); }},
      {"rope", [&] { return rope(x4, 3); }},
      {"attention", [&] { return scaled_dot_product_attention(x4, x4, x4, std::nullopt, true); }},
      {"loss", [&] { return cross_entropy(x.t, targets, -100, Reduction::None) + sum(swiglu(x.t, x.t)); }},
  };
  for (const auto& [name, f] : ops) {
    Tensor eager = f();
    // Lazy runs the eager kernels: the same values, except that repeated indices of index_add are
    // added up in any order on the GPU.
    Tol tol = std::string(name) == "indexing" ? tol_for(Dtype::F32) : Tol{0, 0};
    for (bool fusion : {false, true}) {
      FusionScope fusing(fusion);
      ExecModeScope lazy(ExecMode::Lazy);
      Tensor l = f();
      eval({l});
      expect_tensors_close(l, eager, tol, str_cat("lazy ", name, fusion ? " fused" : ""));
    }
  }
}

// A projection, a norm, attention-like products and activations in f32: lazy gives the eager
// values, and both the float64 values of the same rounded inputs.
WICK_DEVICE_TEST(Lazy, MatchesEagerOnAModelLayer) {
  Rand xc = rand({8, 33, 64}, Dtype::F32), wc = rand({48, 64}, Dtype::F32, -0.2, 0.2), gc = rand({48}, Dtype::F32);
  auto model = [](const Tensor& x, const Tensor& w, const Tensor& g) {
    Tensor h = rms_norm(linear(x, w), g, 1e-6);
    Tensor a = softmax(matmul(h, transpose(h, 1, 2)) * 0.125);
    return sum(gelu(matmul(a, h)) * 0.5 + silu(h), {1});
  };
  Tensor eager = model(xc.t, wc.t, gc.t);
  Tensor lazy;
  {
    ExecModeScope scope(ExecMode::Lazy);
    lazy = model(xc.t, wc.t, gc.t);
    EXPECT_FALSE(lazy.is_evaluated());
    eval({lazy});
  }
  expect_tensors_close(lazy, eager, Tol{1e-6, 1e-6}, "lazy vs eager");
  Tensor f64 = model(astype(xc.t, Dtype::F64), astype(wc.t, Dtype::F64), astype(gc.t, Dtype::F64));
  expect_tensors_close(eager, f64, Tol{1e-4, 1e-4}, "f32 vs f64");
}

}  // namespace
}  // namespace wick
