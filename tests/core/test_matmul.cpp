// matmul (1-D, 2-D, batched with broadcasting, transposed and strided operands, odd sizes) and
// linear, against a float64 triple loop; and their gradients.
#include "testing.h"

namespace wick {
namespace {

using namespace testing;

// torch.matmul semantics written out: 1-D operands get a unit dim that is removed afterwards.
std::pair<Values, Shape> matmul_ref(const Values& a, Shape sa, const Values& b, Shape sb) {
  bool a1 = sa.size() == 1, b1 = sb.size() == 1;
  if (a1) sa.insert(sa.begin(), 1);
  if (b1) sb.push_back(1);
  int64_t m = sa[sa.size() - 2], k = sa.back(), n = sb.back();
  Shape ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
  Shape batch = broadcast_shapes(ba, bb, "ref");
  Values out;
  for (int64_t t = 0; t < numel(batch); ++t) {
    auto idx = unravel(t, batch);
    int64_t oa = ravel_broadcast(idx, ba) * m * k, ob = ravel_broadcast(idx, bb) * k * n;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t c = 0; c < k; ++c) s += a[oa + i * k + c] * b[ob + c * n + j];
        out.push_back(s);
      }
  }
  Shape so = batch;
  if (!a1) so.push_back(m);
  if (!b1) so.push_back(n);
  return {out, so};
}

Tol matmul_tol(Dtype dt, int64_t k) {
  // f32 accumulation error grows with K; 16-bit results are rounded once from f32.
  if (dt == Dtype::F32) return {1e-6 * double(std::max<int64_t>(k, 1)), 1e-5};
  return tol_for(dt);
}

TEST(Matmul, ShapesAndOddSizes) {
  struct Case {
    Shape a, b;
  };
  std::vector<Case> cases = {
      {{7}, {7}},        {{7}, {7, 5}},       {{33, 7}, {7}},         {{1, 1}, {1, 1}},           {{7, 33}, {33, 65}},
      {{65, 1}, {1, 7}}, {{33, 65}, {65, 1}}, {{2, 7, 5}, {5, 3}},    {{2, 1, 7, 5}, {3, 5, 33}}, {{7, 5}, {4, 5, 3}},
      {{3}, {2, 3, 4}},  {{2, 4, 3}, {3}},    {{1, 3, 2}, {4, 2, 6}}, {{0, 3}, {3, 4}},           {{2, 0}, {0, 3}}};
  for (const Case& c : cases)
    for (Dtype dt : {Dtype::F64, Dtype::F32, Dtype::BF16, Dtype::F16}) {
      Rand a = rand(c.a, dt), b = rand(c.b, dt);
      auto [ref, so] = matmul_ref(a.v, c.a, b.v, c.b);
      std::string what = str_cat(shape_str(c.a), " @ ", shape_str(c.b), " ", dtype_name(dt));
      Tensor y = matmul(a.t, b.t);
      EXPECT_EQ(y.dtype(), dt) << what;
      Tol tol = matmul_tol(dt, c.a.back());
      expect_close(y, ref, so, tol, what);
      // The same operands as non-contiguous views: transposed storage, and every other element.
      if (c.a.size() >= 2) expect_close(matmul(noncontiguous(a.v, c.a, dt, 0), b.t), ref, so, tol, what + " a^T view");
      if (c.b.size() >= 2) expect_close(matmul(a.t, noncontiguous(b.v, c.b, dt, 0)), ref, so, tol, what + " b^T view");
      expect_close(matmul(noncontiguous(a.v, c.a, dt, 1), noncontiguous(b.v, c.b, dt, 1)), ref, so, tol,
                   what + " strided");
    }
}

TEST(Matmul, TransposedOperandsAndBroadcastBatches) {
  // x @ w^T with w stored [N, K], as linear layers do.
  Rand x = rand({5, 33}, Dtype::F32), w = rand({65, 33}, Dtype::F32);
  Values wt(33 * 65);
  for (int i = 0; i < 65; ++i)
    for (int j = 0; j < 33; ++j) wt[j * 65 + i] = w.v[i * 33 + j];
  auto [ref, so] = matmul_ref(x.v, {5, 33}, wt, {33, 65});
  expect_close(matmul(x.t, transpose(w.t, 0, 1)), ref, so, matmul_tol(Dtype::F32, 33), "x @ w^T");
  // A batch operand broadcast with stride 0 (expand).
  Rand a = rand({3, 4, 5}), b = rand({5, 2});
  Tensor bb = expand(b.t, {3, 5, 2});
  auto [ref2, so2] = matmul_ref(a.v, {3, 4, 5}, b.v, {5, 2});
  expect_close(matmul(a.t, bb), ref2, so2, "expanded b");
}

TEST(Matmul, PermutedBatch) {
  Rand a = rand({4, 3, 5}), b = rand({3, 5, 2});
  Tensor ap = permute(a.t, {1, 0, 2});  // [3, 4, 5], batch stride is not the largest
  Values av;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j)
      for (int c = 0; c < 5; ++c) av.push_back(a.v[(j * 3 + i) * 5 + c]);
  auto [ref, so] = matmul_ref(av, {3, 4, 5}, b.v, {3, 5, 2});
  expect_close(matmul(ap, b.t), ref, so, "permuted batch");
  expect_close(matmul(ap, transpose(transpose(b.t, 1, 2), 1, 2)), ref, so, "permuted batch 2");
}

TEST(Matmul, Linear) {
  for (Dtype dt : {Dtype::F64, Dtype::F32, Dtype::BF16}) {
    Rand x = rand({2, 3, 7}, dt), w = rand({5, 7}, dt), bias = rand({5}, dt);
    Values ref;
    for (int r = 0; r < 6; ++r)
      for (int o = 0; o < 5; ++o) {
        double s = 0;
        for (int i = 0; i < 7; ++i) s += x.v[r * 7 + i] * w.v[o * 7 + i];
        ref.push_back(s);
      }
    Tensor y = linear(x.t, w.t);
    expect_close(y, ref, {2, 3, 5}, matmul_tol(dt, 7), str_cat("linear ", dtype_name(dt)));
    Values refb = ref;
    for (size_t i = 0; i < refb.size(); ++i) refb[i] += bias.v[i % 5];
    // Adding the bias rounds once more in 16-bit dtypes.
    Tol tol = matmul_tol(dt, 7);
    if (dt == Dtype::BF16) tol = {0.03, 0.02};
    expect_close(linear(x.t, w.t, bias.t), refb, {2, 3, 5}, tol, str_cat("linear with bias ", dtype_name(dt)));
    expect_close(linear(noncontiguous(x.v, {2, 3, 7}, dt), w.t, bias.t), refb, {2, 3, 5}, tol, "linear of a view");
  }
}

TEST(Matmul, LoraDelta) {
  const int64_t in = 7, r = 4, out = 5;
  for (Dtype dt : {Dtype::F64, Dtype::F32, Dtype::BF16})
    for (Shape sx : {Shape{2, 3, in}, Shape{in}, Shape{1, in}, Shape{0, in}}) {
      Rand x = rand(sx, dt), a = rand({r, in}, dt), b = rand({out, r}, dt);
      int64_t rows = numel(sx) / in;
      Values ref;
      for (int64_t m = 0; m < rows; ++m)
        for (int64_t o = 0; o < out; ++o) {
          double acc = 0;
          for (int64_t k = 0; k < r; ++k) {
            double xa = 0;
            for (int64_t i = 0; i < in; ++i) xa += x.v[m * in + i] * a.v[k * in + i];
            acc += xa * b.v[o * r + k];
          }
          ref.push_back(0.5 * acc);
        }
      Shape so = sx;
      so.back() = out;
      std::string what = str_cat("lora_delta ", dtype_name(dt), " ", shape_str(sx));
      // bf16 rounds x @ A^T before the second product: errors scale with its terms.
      Tol tol = dt == Dtype::BF16 ? Tol{0.05, 0.02} : matmul_tol(dt, in);
      expect_close(lora_delta(x.t, a.t, b.t, 0.5), ref, so, tol, what);
      expect_close(lora_delta(noncontiguous(x.v, sx, dt, 1), noncontiguous(a.v, {r, in}, dt),
                              noncontiguous(b.v, {out, r}, dt, 1), 0.5),
                   ref, so, tol, what + " of views");
      expect_close(reference::lora_delta(x.t, a.t, b.t, 0.5), ref, so, tol, what + " reference");
    }
  Rand x = rand({3, 2, 5}), a = rand({2, 5}), b = rand({4, 2});
  check_grads([](const std::vector<Tensor>& in) { return lora_delta(in[0], in[1], in[2], 2.0); }, {x.t, a.t, b.t},
              "lora_delta");
  check_grads([](const std::vector<Tensor>& in) { return lora_delta(in[0], in[1], in[2], 2.0); },
              {transpose(x.t, 0, 1), a.t, b.t}, "lora_delta of a view");
  expect_error(
      [] {
        lora_delta(zeros({2, 5}), zeros({3, 4}), zeros({6, 3}), 1.0);
      },
      {"lora_delta: expected x[..., in], A[r, in], B[out, r], got [2,5], [3,4], [6,3]"});
  expect_error([] { lora_delta(zeros({2, 5}), zeros({200, 5}), zeros({6, 200}), 1.0); }, {"lora_delta", "rank 200"});
}

// lora_add = base + lora_delta: values against float64, gradients (base included) against finite
// differences, and the buffer hand-over: taken when the call holds the only reference, never
// when someone else can still read base.
TEST(Matmul, LoraAdd) {
  const int64_t in = 7, r = 4, out = 5;
  for (Dtype dt : {Dtype::F64, Dtype::F32, Dtype::BF16}) {
    Rand x = rand({2, 3, in}, dt), a = rand({r, in}, dt), b = rand({out, r}, dt), base = rand({2, 3, out}, dt);
    Values ref;
    for (int64_t m = 0; m < 6; ++m)
      for (int64_t o = 0; o < out; ++o) {
        double acc = 0;
        for (int64_t k = 0; k < r; ++k) {
          double xa = 0;
          for (int64_t i = 0; i < in; ++i) xa += x.v[m * in + i] * a.v[k * in + i];
          acc += xa * b.v[o * r + k];
        }
        ref.push_back(base.v[m * out + o] + 0.5 * acc);
      }
    Tol tol = dt == Dtype::BF16 ? Tol{0.05, 0.03} : matmul_tol(dt, in);
    std::string what = str_cat("lora_add ", dtype_name(dt));
    // base still held here: not taken, and its values stay as they were.
    std::vector<double> before = base.t.to_vector<double>();
    expect_close(lora_add(base.t, x.t, a.t, b.t, 0.5), ref, {2, 3, out}, tol, what);
    EXPECT_EQ(base.t.to_vector<double>(), before) << what << ": a base someone holds was written";
    // Handed over: the result lives in base's buffer.
    Tensor own = (base.t + 0.0).eval();  // a fresh buffer only this test holds
    const void* buffer = own.data_ptr();
    Tensor sum = lora_add(std::move(own), x.t, a.t, b.t, 0.5);
    expect_close(sum, ref, {2, 3, out}, tol, what + " in place");
    EXPECT_EQ(sum.data_ptr(), buffer) << what << ": the base's buffer was not reused";
    expect_close(reference::lora_add(base.t, x.t, a.t, b.t, 0.5), ref, {2, 3, out}, tol, what + " reference");
  }
  Rand x = rand({3, 2, 5}), a = rand({2, 5}), b = rand({4, 2}), base = rand({3, 2, 4});
  check_grads([](const std::vector<Tensor>& in) { return lora_add(in[3], in[0], in[1], in[2], 2.0); },
              {x.t, a.t, b.t, base.t}, "lora_add");
  // Inside a gradient computation, a matmul's output is taken over (its gradient does not read it)
  // and the gradients still match the composition.
  Rand w = rand({4, 5});
  auto fused = [&](const std::vector<Tensor>& in) {
    Tensor y = matmul(in[0], transpose(w.t, 0, 1));
    return lora_add(std::move(y), in[0], in[1], in[2], 2.0);
  };
  check_grads(fused, {x.t, a.t, b.t}, "lora_add over a matmul");
  expect_error([] { lora_add(zeros({2, 7}), zeros({2, 5}), zeros({3, 5}), zeros({6, 3}), 1.0); },
               {"lora_add: base [2,7] does not match the update [2,6]"});
}

TEST(Matmul, Gradients) {
  struct Case {
    Shape a, b;
  };
  for (Case c : {Case{{3, 4}, {4, 5}}, Case{{4}, {4, 3}}, Case{{3, 4}, {4}}, Case{{5}, {5}},
                 Case{{2, 1, 3, 4}, {3, 4, 2}}, Case{{2, 3, 4}, {4, 2}}, Case{{3, 4}, {2, 4, 2}}}) {
    Rand a = rand(c.a), b = rand(c.b);
    check_grads([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {a.t, b.t},
                str_cat("matmul ", shape_str(c.a), " @ ", shape_str(c.b)));
  }
  Rand a = rand({4, 3}), b = rand({5, 4});
  check_grads([](const std::vector<Tensor>& in) { return matmul(transpose(in[0], 0, 1), transpose(in[1], 0, 1)); },
              {a.t, b.t}, "transposed operands");
  Rand x = rand({2, 3, 4}), w = rand({5, 4}), bias = rand({5});
  check_grads([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {x.t, w.t, bias.t}, "linear");
}

}  // namespace
}  // namespace wick
