// cross_entropy on every device: every reduction, i32 and i64 targets, ignored targets, vocabularies
// from 1 to 5003, 1-D logits, views, against float64 loops and the wick::reference composition;
// gradients against finite differences, the exact softmax - onehot (every dtype, every vocabulary),
// and in lower precisions against the float64 gradients. linear_cross_entropy: losses against float64
// products and loops, for chunks of one row, several rows with a remainder, and the default; both
// gradients against the float64 formulas and finite differences; equal to the unfused
// cross_entropy(x @ weight^T) in f32 within 1e-4, and in bf16 as close as the unfused one is to
// float64; in lazy mode; bad shapes, dtypes and targets named.
#include <cmath>

#include "support/testing.h"

namespace wick {
namespace {

using namespace testing;

const Dtype kDtypes[] = {Dtype::F64, Dtype::F32, Dtype::BF16, Dtype::F16};

// Per-row losses lse(row) - row[target] (0 for ignored rows) of logits [rows, V], in float64; the
// mean divides by the number of rows not ignored.
Values row_losses(const Values& logits, int64_t V, const std::vector<int64_t>& targets, int64_t ignore_index) {
  Values losses;
  for (size_t r = 0; r < targets.size(); ++r) {
    if (targets[r] == ignore_index) {
      losses.push_back(0);
      continue;
    }
    const double* row = &logits[r * V];
    double m = *std::max_element(row, row + V), s = 0;
    for (int64_t j = 0; j < V; ++j) s += std::exp(row[j] - m);
    losses.push_back(std::log(s) + m - row[targets[r]]);
  }
  return losses;
}
Values reduce_losses(const Values& losses, const std::vector<int64_t>& targets, int64_t ignore_index, Reduction red) {
  if (red == Reduction::None) return losses;
  double total = 0, count = 0;
  for (size_t r = 0; r < targets.size(); ++r)
    if (targets[r] != ignore_index) total += losses[r], count += 1;
  return {red == Reduction::Sum ? total : total / count};
}

const char* reduction_name(Reduction red) {
  return red == Reduction::None ? "none" : red == Reduction::Mean ? "mean" : "sum";
}

WICK_DEVICE_SUITE(Loss);

WICK_DEVICE_TEST(Loss, CrossEntropyMatchesFloat64) {
  const int64_t V = 7;
  const std::vector<int64_t> t = {0, 6, -100, 3, 3, -100};
  for (Dtype dt : kDtypes)
    for (Reduction red : {Reduction::None, Reduction::Mean, Reduction::Sum})
      for (Dtype it : {Dtype::I32, Dtype::I64}) {
        Rand logits = rand({2, 3, V}, dt, -3, 3);
        Values ref = reduce_losses(row_losses(logits.v, V, t, -100), t, -100, red);
        Shape so = red == Reduction::None ? Shape{2, 3} : Shape{};
        Tensor targets = ints(t, {2, 3}, it);
        std::string what = str_cat("cross_entropy ", dtype_name(dt), " ", reduction_name(red), " ", dtype_name(it));
        // The loss is computed in f32 whatever the logits' dtype.
        Tol tol = {1e-5, 1e-5};
        Tensor y = cross_entropy(logits.t, targets, -100, red);
        expect_close(y, ref, so, tol, what);
        expect_close(cross_entropy(noncontiguous(logits.v, {2, 3, V}, dt, 1), targets, -100, red), ref, so, tol,
                     what + " of a view");
        // The composition computes in the logits' dtype.
        Tol ref_tol = dt == Dtype::F64 || dt == Dtype::F32 ? Tol{1e-5, 1e-5} : Tol{0.05, 0.02};
        expect_close(reference::cross_entropy(logits.t, targets, -100, red), ref, so, ref_tol, what + " reference");
      }
  // 1-D logits with a 0-dim target.
  Tensor l = make({0.5, -1, 2}, {3});
  double lse = std::log(std::exp(0.5) + std::exp(-1.0) + std::exp(2.0));
  expect_close(cross_entropy(l, ints({1}, {}), -100, Reduction::None), {lse + 1}, {}, {1e-6, 1e-6}, "1-D logits");
  // Another ignore_index.
  Rand lg = rand({4, 3});
  std::vector<int64_t> tg = {1, 2, 2, 0};
  expect_close(cross_entropy(lg.t, ints(tg, {4}), 2, Reduction::Mean),
               reduce_losses(row_losses(lg.v, 3, tg, 2), tg, 2, Reduction::Mean), {}, {1e-5, 1e-5}, "ignore_index 2");
}

// Vocabularies from 1 to 5003 (one warp, one block, several); i32 targets for odd vocabularies.
WICK_DEVICE_TEST(Loss, CrossEntropyVocabularySizes) {
  for (Dtype dt : kDtypes)
    for (int64_t V : {1, 7, 129, 1000, 5003}) {
      Rand logits = rand({3, 4, V}, dt, -4, 4);
      std::vector<int64_t> t;
      for (int i = 0; i < 12; ++i) t.push_back(i % 5 == 3 ? -100 : (i * 7919) % V);
      Tensor targets = ints(t, {3, 4}, V % 2 ? Dtype::I32 : Dtype::I64);
      Values losses = row_losses(logits.v, V, t, -100);
      for (Reduction red : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
        std::string what = str_cat(dtype_name(dt), " V=", V, " ", reduction_name(red));
        Values ref = reduce_losses(losses, t, -100, red);
        Shape so = red == Reduction::None ? Shape{3, 4} : Shape{};
        expect_close(cross_entropy(logits.t, targets, -100, red), ref, so, Tol{1e-5, 1e-5}, what);
        Tol ref_tol = dt == Dtype::F64 || dt == Dtype::F32 ? Tol{1e-5, 1e-5} : Tol{0.1, 0.02};
        expect_close(reference::cross_entropy(logits.t, targets, -100, red), ref, so, ref_tol, what + " reference");
      }
    }
}

WICK_DEVICE_TEST(Loss, CrossEntropyGradients) {
  Rand x = rand({2, 3, 5});
  // cross_entropy computes its loss in f32: finite differences in f32 need a larger step and a
  // looser tolerance; the analytic float64 gradient softmax - onehot is checked tightly.
  std::vector<int64_t> tv = {4, -100, 0, 2, 1, 1};
  Tensor targets = ints(tv, {2, 3});
  for (Reduction red : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
    check_grads([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], targets, -100, red); }, {x.t},
                str_cat("cross_entropy ", reduction_name(red)), Tol{2e-3, 2e-2}, 1e-3);
    Values w = random_values(red == Reduction::None ? 6 : 1);
    Shape ws = red == Reduction::None ? Shape{2, 3} : Shape{};
    auto g =
        grad([&](const std::vector<Tensor>& in) { return sum(cross_entropy(in[0], targets, -100, red) * make(w, ws)); },
             {x.t});
    Values ref(30, 0.0);
    for (int r = 0; r < 6; ++r) {
      if (tv[r] == -100) continue;
      double m = *std::max_element(x.v.begin() + r * 5, x.v.begin() + r * 5 + 5), s = 0;
      for (int j = 0; j < 5; ++j) s += std::exp(x.v[r * 5 + j] - m);
      double c = red == Reduction::None ? w[r] : red == Reduction::Sum ? w[0] : w[0] / 5;
      for (int j = 0; j < 5; ++j) ref[r * 5 + j] = c * (std::exp(x.v[r * 5 + j] - m) / s - (j == tv[r]));
    }
    expect_close(g[0], ref, {2, 3, 5}, Tol{1e-7, 1e-5},
                 str_cat("cross_entropy analytic gradient ", reduction_name(red)));
    check_grads([&](const std::vector<Tensor>& in) { return reference::cross_entropy(in[0], targets, -100, red); },
                {x.t}, str_cat("reference cross_entropy ", reduction_name(red)));
  }
}

// The gradient of sum(w * loss) is w * (softmax(row) - onehot(target)) per row (divided by the
// number of rows not ignored for the mean): exact, for vocabularies up to 5003, in every dtype.
WICK_DEVICE_TEST(Loss, CrossEntropyGradientIsSoftmaxMinusOnehot) {
  for (Dtype dt : kDtypes)
    for (int64_t V : {7, 129, 1000, 5003}) {
      std::vector<int64_t> t;
      for (int i = 0; i < 12; ++i) t.push_back(i % 5 == 3 ? -100 : (i * 7919) % V);
      Tensor targets = ints(t, {3, 4}, V % 2 ? Dtype::I32 : Dtype::I64);
      Rand x = rand({3, 4, V}, dt, -4, 4);
      for (Reduction red : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
        // The loss is f32: so are the weights.
        Tensor wt = make(random_values(red == Reduction::None ? 12 : 1), red == Reduction::None ? Shape{3, 4} : Shape{},
                         Dtype::F32);
        Values w = values(wt);
        auto g = grad([&](const std::vector<Tensor>& in) { return sum(cross_entropy(in[0], targets, -100, red) * wt); },
                      {x.t});
        EXPECT_EQ(g[0].dtype(), dt);
        double counted = double(std::count_if(t.begin(), t.end(), [](int64_t v) { return v != -100; }));
        Values ref(size_t(12 * V), 0.0);
        for (int r = 0; r < 12; ++r) {
          if (t[r] == -100) continue;
          const double* row = &x.v[r * V];
          double m = *std::max_element(row, row + V), s = 0;
          for (int64_t j = 0; j < V; ++j) s += std::exp(row[j] - m);
          double c = red == Reduction::None ? w[r] : red == Reduction::Sum ? w[0] : w[0] / counted;
          for (int64_t j = 0; j < V; ++j) ref[r * V + j] = c * (std::exp(row[j] - m) / s - (j == t[r]));
        }
        // f32 probabilities err by a few ulp of 1 where p is close to 1.
        Tol tol = dt == Dtype::F64 ? Tol{1e-7, 1e-5} : dt == Dtype::F32 ? Tol{1e-6, 1e-5} : tol_for(dt);
        expect_close(g[0], ref, {3, 4, V}, tol, str_cat(dtype_name(dt), " V=", V, " ", reduction_name(red)));
      }
    }
}

WICK_DEVICE_TEST(Loss, GradientsInLowerPrecision) {
  Tensor targets = ints({1, -100, 4}, {3});
  std::vector<Tensor> x64{rand({3, 5}).t};
  for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16})
    check_grads_in(
        dt, [&](auto& in) { return cross_entropy(in[0], targets, -100, Reduction::Mean); }, x64,
        dt == Dtype::F32   ? 1e-5
        : dt == Dtype::F16 ? 1e-2
                           : 5e-2,
        "cross_entropy");
}

// The logits x @ weight^T [N, V] and their per-row losses in float64.
Values product_nt(const Values& x, const Values& w, int64_t n, int64_t d, int64_t v) {
  Values out(size_t(n * v), 0.0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < v; ++j)
      for (int64_t k = 0; k < d; ++k) out[r * v + j] += x[r * d + k] * w[j * d + k];
  return out;
}

// The float64 gradients of sum(c[r] * loss[r]) with respect to x [N, D] and weight [V, D].
std::pair<Values, Values> linear_xent_grads(const Values& x, const Values& w, const std::vector<int64_t>& t,
                                            const Values& c, int64_t n, int64_t d, int64_t v) {
  Values logits = product_nt(x, w, n, d, v), dx(size_t(n * d), 0.0), dw(size_t(v * d), 0.0);
  for (int64_t r = 0; r < n; ++r) {
    if (t[r] == -100) continue;
    const double* row = &logits[r * v];
    double m = *std::max_element(row, row + v), s = 0;
    for (int64_t j = 0; j < v; ++j) s += std::exp(row[j] - m);
    for (int64_t j = 0; j < v; ++j) {
      double g = c[r] * (std::exp(row[j] - m) / s - (j == t[r]));
      for (int64_t k = 0; k < d; ++k) {
        dx[r * d + k] += g * w[j * d + k];
        dw[j * d + k] += g * x[r * d + k];
      }
    }
  }
  return {dx, dw};
}

WICK_DEVICE_TEST(Loss, LinearCrossEntropyMatchesFloat64) {
  const int64_t D = 9;
  for (Dtype dt : kDtypes)
    for (int64_t V : {1, 7, 129, 5003})
      for (int64_t chunk : {0, 1, 5}) {
        std::vector<int64_t> t;
        for (int i = 0; i < 12; ++i) t.push_back(i % 5 == 3 ? -100 : (i * 7919) % V);
        Tensor targets = ints(t, {3, 4}, V % 2 ? Dtype::I32 : Dtype::I64);
        Rand x = rand({3, 4, D}, dt, -1, 1), w = rand({V, D}, dt, -1, 1);
        Values losses = row_losses(product_nt(x.v, w.v, 12, D, V), V, t, -100);
        for (Reduction red : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
          std::string what = str_cat("linear_cross_entropy ", dtype_name(dt), " V=", V, " chunk=", chunk, " ",
                                     reduction_name(red));
          Shape so = red == Reduction::None ? Shape{3, 4} : Shape{};
          // 16-bit products round the logits to 8 or 11 bits; the loss itself is f32.
          Tol tol = dt == Dtype::F64 || dt == Dtype::F32 ? Tol{1e-5, 1e-5} : dt == Dtype::F16 ? Tol{0.01, 0.005}
                                                                                                : Tol{0.05, 0.02};
          expect_close(linear_cross_entropy(x.t, w.t, targets, -100, red, chunk),
                       reduce_losses(losses, t, -100, red), so, tol, what);
        }
      }
}

// Gradients of both inputs against the float64 formulas (every reduction, weights per row), and
// against finite differences.
WICK_DEVICE_TEST(Loss, LinearCrossEntropyGradients) {
  const int64_t N = 6, D = 5, V = 11;
  std::vector<int64_t> tv = {4, -100, 0, 10, 1, 1};
  Tensor targets = ints(tv, {2, 3});
  Rand x = rand({2, 3, D}, Dtype::F64, -1, 1), w = rand({V, D}, Dtype::F64, -1, 1);
  for (int64_t chunk : {0, 4})
    for (Reduction red : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
      std::string what = str_cat("linear_cross_entropy chunk=", chunk, " ", reduction_name(red));
      Tensor cw = make(random_values(red == Reduction::None ? N : 1), red == Reduction::None ? Shape{2, 3} : Shape{},
                       Dtype::F32);
      Values c0 = values(cw), c(N, 0.0);
      for (int64_t r = 0; r < N; ++r) c[r] = red == Reduction::None ? c0[r] : red == Reduction::Sum ? c0[0] : c0[0] / 5;
      auto g = grad(
          [&](const std::vector<Tensor>& in) {
            return sum(linear_cross_entropy(in[0], in[1], targets, -100, red, chunk) * cw);
          },
          {x.t, w.t});
      auto [dx, dw] = linear_xent_grads(x.v, w.v, tv, c, N, D, V);
      expect_close(g[0], dx, {2, 3, D}, Tol{1e-6, 1e-5}, what + " dx");
      expect_close(g[1], dw, {V, D}, Tol{1e-6, 1e-5}, what + " dweight");
      // Only x traced (the forward keeps its gradient), then only the weight.
      auto gx = grad(
          [&](const std::vector<Tensor>& in) { return sum(linear_cross_entropy(in[0], w.t, targets, -100, red, chunk) * cw); },
          {x.t});
      expect_close(gx[0], dx, {2, 3, D}, Tol{1e-6, 1e-5}, what + " dx alone");
      auto gw = grad(
          [&](const std::vector<Tensor>& in) { return sum(linear_cross_entropy(x.t, in[0], targets, -100, red, chunk) * cw); },
          {w.t});
      expect_close(gw[0], dw, {V, D}, Tol{1e-6, 1e-5}, what + " dweight alone");
      // The loss is f32: finite differences need a larger step.
      check_grads([&](const std::vector<Tensor>& in) { return linear_cross_entropy(in[0], in[1], targets, -100, red, chunk); },
                  {x.t, w.t}, what, Tol{2e-3, 2e-2}, 1e-3);
    }
}

// Rows without a target take no part in the products: runs of ignored rows between kept ones, in
// chunks that do not divide the kept rows, give each ignored row a loss and gradient of exactly 0
// and the kept rows their float64 values; a batch with no target at all gives zeros.
WICK_DEVICE_TEST(Loss, LinearCrossEntropyRowsWithoutTargets) {
  const int64_t N = 11, D = 7, V = 23;
  std::vector<int64_t> tv = {-100, -100, 5, -100, 0, 22, -100, -100, -100, 9, -100};
  Rand x = rand({N, D}, Dtype::F64, -1, 1), w = rand({V, D}, Dtype::F64, -1, 1);
  Tensor ones = full({N}, 1.0, Dtype::F32, device());
  for (int64_t chunk : {0, 1, 2, 3}) {
    std::string what = str_cat("chunk=", chunk);
    Tensor targets = ints(tv, {N});
    auto [dx, dw] = linear_xent_grads(x.v, w.v, tv, Values(N, 1.0), N, D, V);
    Values losses = row_losses(product_nt(x.v, w.v, N, D, V), V, tv, -100);
    expect_close(linear_cross_entropy(x.t, w.t, targets, -100, Reduction::None, chunk), losses, {N},
                 Tol{1e-6, 1e-5}, what + " losses");
    auto g = grad([&](const std::vector<Tensor>& in) {
      return sum(linear_cross_entropy(in[0], w.t, targets, -100, Reduction::None, chunk) * ones);
    }, {x.t});
    expect_close(g[0], dx, {N, D}, Tol{1e-6, 1e-5}, what + " dx");
    Values gv = values(g[0]);
    for (int64_t r = 0; r < N; ++r)
      if (tv[size_t(r)] < 0)
        for (int64_t c = 0; c < D; ++c) EXPECT_EQ(gv[size_t(r * D + c)], 0.0) << what << " row " << r;
    Tensor none = ints(std::vector<int64_t>(N, -100), {N});
    expect_close(linear_cross_entropy(x.t, w.t, none, -100, Reduction::None, chunk), Values(N, 0.0), {N}, Tol{0, 0},
                 what + " no target");
    auto g0 = grad([&](const std::vector<Tensor>& in) {
      return sum(linear_cross_entropy(in[0], w.t, none, -100, Reduction::None, chunk) * ones);
    }, {x.t});
    expect_close(g0[0], Values(N * D, 0.0), {N, D}, Tol{0, 0}, what + " no target dx");
  }
}

// Acceptance of the fused loss: equal to cross_entropy(x @ weight^T) and its gradients within 1e-4
// in f32 (a vocabulary of several thousand, chunks that do not divide the rows); in bf16, as close
// to float64 as the unfused loss is.
WICK_DEVICE_TEST(Loss, LinearCrossEntropyEqualsTheUnfusedLoss) {
  const int64_t D = 64, V = 3001;
  std::vector<int64_t> tv;
  for (int i = 0; i < 40; ++i) tv.push_back(i % 9 == 4 ? -100 : (i * 104729) % V);
  Tensor targets = ints(tv, {5, 8});
  for (Dtype dt : {Dtype::F32, Dtype::BF16}) {
    Tensor x = rand({5, 8, D}, dt, -1, 1).t, w = rand({V, D}, dt, -0.5, 0.5).t;
    for (int64_t chunk : {0, 7}) {
      std::string what = str_cat(dtype_name(dt), " chunk=", chunk);
      auto fused = value_and_grad(
          [&](const std::vector<Tensor>& in) { return linear_cross_entropy(in[0], in[1], targets, -100, Reduction::Mean, chunk); },
          {x, w});
      auto unfused = value_and_grad(
          [&](const std::vector<Tensor>& in) {
            return cross_entropy(matmul(in[0], transpose(in[1], 0, 1)), targets, -100, Reduction::Mean);
          },
          {x, w});
      Tol tol = dt == Dtype::F32 ? Tol{1e-4, 1e-4} : Tol{2e-2, 2e-2};
      expect_tensors_close(fused.first, unfused.first, tol, what + " loss");
      for (int i = 0; i < 2; ++i) {
        EXPECT_EQ(fused.second[i].dtype(), dt) << what;
        // Gradients are compared relative to their largest element.
        double scale = 0;
        for (double g : values(unfused.second[i])) scale = std::max(scale, std::abs(g));
        Tol gt = dt == Dtype::F32 ? Tol{1e-4 * scale, 1e-4} : Tol{2e-2 * scale, 2e-2};
        expect_tensors_close(fused.second[i], unfused.second[i], gt, str_cat(what, i ? " dweight" : " dx"));
      }
    }
  }
}

// Lazy mode: the backward reads what the forward kept, so it runs the forward when nothing has.
WICK_DEVICE_TEST(Loss, LinearCrossEntropyInLazyMode) {
  const int64_t N = 6, D = 5, V = 11;
  std::vector<int64_t> tv = {4, -100, 0, 10, 1, 1};
  Tensor targets = ints(tv, {N});
  Rand x = rand({N, D}, Dtype::F32, -1, 1), w = rand({V, D}, Dtype::F32, -1, 1);
  Values c(N, 0.2);
  c[1] = 0;
  auto [dx, dw] = linear_xent_grads(x.v, w.v, tv, c, N, D, V);
  ExecModeScope lazy(ExecMode::Lazy);
  auto g = grad([&](const std::vector<Tensor>& in) { return linear_cross_entropy(in[0], w.t, targets, -100, Reduction::Mean, 2); },
                {x.t});
  expect_close(g[0], dx, {N, D}, Tol{1e-6, 1e-5}, "lazy dx");
}

WICK_DEVICE_TEST(Loss, LinearCrossEntropyBadInputsAreNamed) {
  Tensor x = rand({4, 3}, Dtype::F32).t, w = rand({5, 3}, Dtype::F32).t;
  Tensor t = ints({0, 1, 2, 3}, {4});
  expect_error([&] { linear_cross_entropy(x, rand({5, 2}, Dtype::F32).t, t); }, {"linear_cross_entropy", "[5,2]"});
  expect_error([&] { linear_cross_entropy(x, rand({5, 3}, Dtype::BF16).t, t); }, {"linear_cross_entropy", "bf16"});
  expect_error([&] { linear_cross_entropy(x, w, ints({0, 1}, {2})); }, {"linear_cross_entropy", "targets of shape"});
  expect_error([&] { linear_cross_entropy(x, w, make({0, 1, 2, 3}, {4}, Dtype::F32)); }, {"linear_cross_entropy"});
  expect_error([&] { values(linear_cross_entropy(x, w, ints({0, 9, 2, 3}, {4}), -100, Reduction::None)); },
               {"target 9 is out of range for 5 classes"});
}

}  // namespace
}  // namespace wick
