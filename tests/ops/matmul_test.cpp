// matmul and linear on every device (1-D, 2-D, batched with broadcasting, transposed, permuted and
// strided operands, odd sizes), against a float64 triple loop; gradients against finite differences
// and, in 16-bit dtypes, against the float64 gradients of the rounded inputs.
#include "support/testing.h"

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

// The values of x viewed with its dims permuted (row-major values of permute(x, perm)).
Values permuted(const Values& x, const Shape& shape, const std::vector<int>& perm) {
  Shape ps;
  for (int p : perm) ps.push_back(shape[p]);
  Values out;
  for (int64_t i = 0; i < numel(ps); ++i) {
    auto idx = unravel(i, ps);
    std::vector<int64_t> src(shape.size());
    for (size_t d = 0; d < perm.size(); ++d) src[perm[d]] = idx[d];
    int64_t f = 0;
    for (size_t d = 0; d < shape.size(); ++d) f = f * shape[d] + src[d];
    out.push_back(x[f]);
  }
  return out;
}

Tol matmul_tol(Dtype dt, int64_t k) {
  // f32 accumulation error grows with K (no TF32: it is off unless asked for); 16-bit results are
  // accumulated in f32 and rounded once.
  if (dt == Dtype::F32) return {1e-6 * double(std::max<int64_t>(k, 1)), 1e-5};
  return tol_for(dt);
}

WICK_DEVICE_SUITE(Matmul);

WICK_DEVICE_TEST(Matmul, ShapesAndOddSizes) {
  struct Case {
    Shape a, b;
  };
  std::vector<Case> cases = {{{7}, {7}},
                             {{7}, {7, 5}},
                             {{33, 7}, {7}},
                             {{1, 1}, {1, 1}},
                             {{7, 33}, {33, 65}},
                             {{65, 1}, {1, 7}},
                             {{33, 65}, {65, 1}},
                             {{2, 7, 5}, {5, 3}},
                             {{2, 1, 7, 5}, {3, 5, 33}},
                             {{7, 5}, {4, 5, 3}},
                             {{3}, {2, 3, 4}},
                             {{2, 4, 3}, {3}},
                             {{1, 3, 2}, {4, 2, 6}},
                             {{0, 3}, {3, 4}},
                             {{2, 0}, {0, 3}},
                             {{129, 64}, {64, 127}},
                             {{2, 3, 17, 9}, {9, 11}},
                             {{4, 17, 9}, {4, 9, 11}},
                             {{3, 1, 5, 8}, {1, 2, 8, 6}},
                             {{33}, {33, 7}},
                             {{1000, 48}, {48, 33}},
                             {{131, 301}, {301, 75}}};  // bf16 on the CPU: the AVX512-BF16 kernel's size
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

WICK_DEVICE_TEST(Matmul, TransposedOperandsAndBroadcastBatches) {
  // x @ w^T with w stored [N, K], as linear layers do.
  Rand x = rand({5, 33}, Dtype::F32), w = rand({65, 33}, Dtype::F32);
  auto [ref, so] = matmul_ref(x.v, {5, 33}, permuted(w.v, {65, 33}, {1, 0}), {33, 65});
  expect_close(matmul(x.t, transpose(w.t, 0, 1)), ref, so, matmul_tol(Dtype::F32, 33), "x @ w^T");
  // A batch operand broadcast with stride 0 (expand).
  Rand a = rand({3, 4, 5}), b = rand({5, 2});
  Tensor bb = expand(b.t, {3, 5, 2});
  auto [ref2, so2] = matmul_ref(a.v, {3, 4, 5}, b.v, {5, 2});
  expect_close(matmul(a.t, bb), ref2, so2, "expanded b");
}

// Batched products of views in every float dtype: both operands transposed, stepped slices, and
// rows further apart than their length (ld > cols) with a batch stride smaller than a matrix.
WICK_DEVICE_TEST(Matmul, BatchedViews) {
  for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16, Dtype::F64}) {
    SCOPED_TRACE(dtype_name(dt));
    Rand a = rand({2, 33, 17}, dt), b = rand({2, 9, 33}, dt), a2 = rand({33, 2, 17}, dt);
    Tol tol = matmul_tol(dt, 33);
    // [2, 17, 33] @ [2, 33, 9]
    auto [r1, s1] = matmul_ref(permuted(a.v, {2, 33, 17}, {0, 2, 1}), {2, 17, 33}, permuted(b.v, {2, 9, 33}, {0, 2, 1}),
                               {2, 33, 9});
    expect_close(matmul(transpose(a.t, 1, 2), transpose(b.t, 1, 2)), r1, s1, tol, "both transposed");
    // [2, 9, 17] @ [2, 17, 17]: every other column of b, every other row of a.
    Values bs, as;
    for (int64_t t = 0; t < 2; ++t)
      for (int64_t i = 0; i < 9; ++i)
        for (int64_t c = 0; c < 33; c += 2) bs.push_back(b.v[(t * 9 + i) * 33 + c]);
    for (int64_t t = 0; t < 2; ++t)
      for (int64_t r = 0; r < 33; r += 2)
        for (int64_t c = 0; c < 17; ++c) as.push_back(a.v[(t * 33 + r) * 17 + c]);
    auto [r2, s2] = matmul_ref(bs, {2, 9, 17}, as, {2, 17, 17});
    expect_close(matmul(slice(b.t, 2, 0, 33, 2), slice(a.t, 1, 0, 33, 2)), r2, s2, matmul_tol(dt, 17), "stepped");
    // [2, 17, 33] @ [2, 33, 17] with the second operand a permuted [33, 2, 17] buffer.
    auto [r3, s3] = matmul_ref(permuted(a.v, {2, 33, 17}, {0, 2, 1}), {2, 17, 33},
                               permuted(a2.v, {33, 2, 17}, {1, 0, 2}), {2, 33, 17});
    expect_close(matmul(transpose(a.t, 1, 2), permute(a2.t, {1, 0, 2})), r3, s3, tol, "ld > cols");
  }
}

WICK_DEVICE_TEST(Matmul, PermutedBatch) {
  Rand a = rand({4, 3, 5}), b = rand({3, 5, 2});
  Tensor ap = permute(a.t, {1, 0, 2});  // [3, 4, 5], batch stride is not the largest
  auto [ref, so] = matmul_ref(permuted(a.v, {4, 3, 5}, {1, 0, 2}), {3, 4, 5}, b.v, {3, 5, 2});
  expect_close(matmul(ap, b.t), ref, so, "permuted batch");
  expect_close(matmul(ap, transpose(transpose(b.t, 1, 2), 1, 2)), ref, so, "permuted batch 2");
}

WICK_DEVICE_TEST(Matmul, Linear) {
  for (Dtype dt : {Dtype::F64, Dtype::F32, Dtype::BF16, Dtype::F16})
    for (int64_t in : {7, 33}) {
      Rand x = rand({2, 3, in}, dt), w = rand({13, in}, dt), bias = rand({13}, dt);
      Values ref;
      for (int r = 0; r < 6; ++r)
        for (int o = 0; o < 13; ++o) {
          double s = 0;
          for (int i = 0; i < in; ++i) s += x.v[r * in + i] * w.v[o * in + i];
          ref.push_back(s);
        }
      std::string what = str_cat("linear ", dtype_name(dt), " in ", in);
      expect_close(linear(x.t, w.t), ref, {2, 3, 13}, matmul_tol(dt, in), what);
      Values refb = ref;
      for (size_t i = 0; i < refb.size(); ++i) refb[i] += bias.v[i % 13];
      // Adding the bias rounds once more in 16-bit dtypes.
      Tol tol = matmul_tol(dt, in);
      if (dt == Dtype::BF16) tol = {0.03, 0.02};
      if (dt == Dtype::F16) tol = {4e-3, 1e-2};
      expect_close(linear(x.t, w.t, bias.t), refb, {2, 3, 13}, tol, what + " with bias");
      expect_close(linear(noncontiguous(x.v, {2, 3, in}, dt), w.t, bias.t), refb, {2, 3, 13}, tol, what + " of a view");
    }
}

WICK_DEVICE_TEST(Matmul, Gradients) {
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

WICK_DEVICE_TEST(Matmul, GradientsInLowerPrecision) {
  std::vector<Tensor> mm{rand({3, 5}).t, rand({5, 4}).t};
  std::vector<Tensor> lin{rand({3, 7, 33}).t, rand({17, 33}).t, rand({17}).t};
  for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16}) {
    double rel = dt == Dtype::F32 ? 1e-5 : dt == Dtype::F16 ? 1e-2 : 5e-2;
    check_grads_in(
        dt, [](auto& in) { return matmul(in[0], in[1]); }, mm, rel, "matmul");
    check_grads_in(
        dt, [](auto& in) { return linear(in[0], in[1], in[2]); }, lin, rel, "linear");
  }
}

}  // namespace
}  // namespace wick
