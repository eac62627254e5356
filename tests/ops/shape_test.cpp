// Shape ops on every device: views and joins (reshape as a view where the strides allow and a copy
// otherwise, permute, slice, broadcast, squeeze, flatten, concat, stack, split, contiguous), 0-dim and
// empty tensors, random views, against float64 gathers; their gradients against finite differences.
#include "support/testing.h"

namespace wick {
namespace {

using namespace testing;

// out[i] = x[map(index of i in out_shape)], x row-major.
template <class Map>
Values gather_ref(const Values& x, const Shape& out_shape, Map map) {
  Values out(numel(out_shape));
  for (int64_t i = 0; i < numel(out_shape); ++i) out[i] = x[map(unravel(i, out_shape))];
  return out;
}

int64_t flat(const std::vector<int64_t>& idx, const Shape& shape) {
  int64_t f = 0;
  for (size_t d = 0; d < shape.size(); ++d) f = f * shape[d] + idx[d];
  return f;
}

bool shares_storage(const Tensor& a, const Tensor& b) { return a.storage().get() == b.storage().get(); }

WICK_DEVICE_SUITE(ShapeOps);

WICK_DEVICE_TEST(ShapeOps, ReshapeContiguousIsAView) {
  Rand x = rand({2, 3, 4}, Dtype::F32);
  for (Shape s : {Shape{24}, Shape{4, -1}, Shape{2, 12}, Shape{1, 24, 1}, Shape{3, 2, 2, 2}}) {
    Tensor y = reshape(x.t, s);
    EXPECT_TRUE(shares_storage(x.t, y)) << shape_str(s);
    expect_close(y, x.v, y.shape(), Tol{0, 0}, shape_str(s));
  }
  EXPECT_EQ(shape_str(reshape(x.t, {4, -1}).shape()), "[4,6]");
}

WICK_DEVICE_TEST(ShapeOps, ReshapeNonContiguousCopiesOrStaysAView) {
  Shape s{2, 3, 4};
  Rand x = rand(s);
  Tensor t = transpose(x.t, 0, 1);  // [3, 2, 4]
  Values tv = gather_ref(x.v, {3, 2, 4}, [&](auto i) { return flat({i[1], i[0], i[2]}, s); });
  // Merging the transposed dims needs a copy.
  Tensor merged = reshape(t, {6, 4});
  EXPECT_FALSE(shares_storage(x.t, merged));
  expect_close(merged, tv, {6, 4}, Tol{0, 0}, "merge");
  Tensor all = reshape(t, {24});
  expect_close(all, tv, {24}, Tol{0, 0}, "flatten copy");
  // Splitting a dim, or adding/removing unit dims, keeps the view.
  Tensor split_last = reshape(t, {3, 2, 2, 2});
  EXPECT_TRUE(shares_storage(x.t, split_last));
  expect_close(split_last, tv, {3, 2, 2, 2}, Tol{0, 0}, "split last");
  Tensor unit = reshape(t, {3, 1, 2, 4, 1});
  EXPECT_TRUE(shares_storage(x.t, unit));
  expect_close(unit, tv, {3, 1, 2, 4, 1}, Tol{0, 0}, "unit dims");
  // A row slice of a contiguous tensor can still merge its trailing dims.
  Tensor rows = narrow(reshape(x.t, {6, 4}), 0, 1, 3);
  Tensor rows_flat = reshape(rows, {12});
  EXPECT_TRUE(shares_storage(x.t, rows_flat));
  expect_close(rows_flat, Values(x.v.begin() + 4, x.v.begin() + 16), {12}, Tol{0, 0}, "row slice");
  // A column slice cannot.
  Tensor cols = slice(reshape(x.t, {6, 4}), 1, 0, 4, 2);
  Tensor cols_flat = reshape(cols, {12});
  Values cv;
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 4; j += 2) cv.push_back(x.v[i * 4 + j]);
  expect_close(cols_flat, cv, {12}, Tol{0, 0}, "column slice");
  // Broadcast (stride 0) inputs copy too.
  Tensor b = reshape(broadcast_to(reshape(x.t, {1, 24}), {2, 24}), {48});
  Values bv = x.v;
  bv.insert(bv.end(), x.v.begin(), x.v.end());
  expect_close(b, bv, {48}, Tol{0, 0}, "broadcast");
}

WICK_DEVICE_TEST(ShapeOps, PermuteAndTranspose) {
  Shape s{2, 3, 4, 5};
  Rand x = rand(s, Dtype::BF16);
  Tensor p = permute(x.t, {2, 0, 3, 1});
  EXPECT_TRUE(shares_storage(x.t, p));
  expect_close(p,
               gather_ref(x.v, {4, 2, 5, 3},
                          [&](auto i) {
                            return flat({i[1], i[3], i[0], i[2]}, s);
                          }),
               {4, 2, 5, 3}, Tol{0, 0}, "permute");
  Tensor t = transpose(x.t, -1, 1);
  expect_close(t,
               gather_ref(x.v, {2, 5, 4, 3},
                          [&](auto i) {
                            return flat({i[0], i[3], i[2], i[1]}, s);
                          }),
               {2, 5, 4, 3}, Tol{0, 0}, "transpose");
  // Permuting a permuted view composes.
  Tensor pp = permute(p, {1, 3, 0, 2});
  expect_close(pp, x.v, s, Tol{0, 0}, "inverse permute");
}

WICK_DEVICE_TEST(ShapeOps, SliceWithStepsAndNegatives) {
  Shape s{5, 9};
  Rand x = rand(s);
  auto ref = [&](int64_t start, int64_t stop, int64_t step) {
    // Python semantics, written out.
    int64_t n = 9;
    if (start < 0) start += n;
    if (stop < 0) stop += n;
    start = std::clamp<int64_t>(start, 0, n);
    stop = std::clamp<int64_t>(stop, 0, n);
    std::vector<int64_t> cols;
    for (int64_t j = start; j < stop; j += step) cols.push_back(j);
    Values v;
    for (int64_t i = 0; i < 5; ++i)
      for (int64_t j : cols) v.push_back(x.v[i * 9 + j]);
    return std::make_pair(v, Shape{5, int64_t(cols.size())});
  };
  struct Case {
    int64_t start, stop, step;
  };
  for (Case c : {Case{1, 8, 3}, Case{-5, -1, 1}, Case{-100, 100, 2}, Case{0, 9, 4}, Case{7, 3, 1}, Case{-1, 9, 1},
                 Case{2, 3, 5}}) {
    auto [v, shape] = ref(c.start, c.stop, c.step);
    Tensor y = slice(x.t, 1, c.start, c.stop, c.step);
    std::string what = str_cat("slice ", c.start, ":", c.stop, ":", c.step);
    expect_close(y, v, shape, Tol{0, 0}, what);
    if (y.numel()) {
      EXPECT_TRUE(shares_storage(x.t, y)) << what;
    }
    // The same slice of a non-contiguous tensor.
    expect_close(slice(noncontiguous(x.v, s), 1, c.start, c.stop, c.step), v, shape, Tol{0, 0}, what + " of a view");
  }
  // Slicing dim 0 with a negative dim index, then slicing again.
  Tensor y = slice(slice(x.t, -2, 1, 5, 2), 1, 2, 8, 3);
  Values v;
  for (int i = 1; i < 5; i += 2)
    for (int j = 2; j < 8; j += 3) v.push_back(x.v[i * 9 + j]);
  expect_close(y, v, {2, 2}, Tol{0, 0}, "slice of slice");
  expect_close(narrow(x.t, 0, 2, 3), Values(x.v.begin() + 18, x.v.begin() + 45), {3, 9}, Tol{0, 0}, "narrow");
}

WICK_DEVICE_TEST(ShapeOps, BroadcastExpandSqueezeUnsqueezeFlatten) {
  Rand x = rand({3, 1, 2}, Dtype::F32);
  Tensor b = broadcast_to(x.t, {4, 3, 5, 2});
  EXPECT_TRUE(shares_storage(x.t, b));
  expect_close(b, gather_ref(x.v, {4, 3, 5, 2}, [&](auto i) { return i[1] * 2 + i[3]; }), {4, 3, 5, 2}, Tol{0, 0},
               "broadcast_to");
  Tensor e = expand(x.t, {2, -1, 4, -1});
  expect_close(e, gather_ref(x.v, {2, 3, 4, 2}, [&](auto i) { return i[1] * 2 + i[3]; }), {2, 3, 4, 2}, Tol{0, 0},
               "expand");
  EXPECT_EQ(shape_str(squeeze(x.t, 1).shape()), "[3,2]");
  EXPECT_EQ(shape_str(squeeze(x.t, 0).shape()), "[3,1,2]");  // not of size 1: unchanged
  EXPECT_EQ(shape_str(unsqueeze(x.t, -1).shape()), "[3,1,2,1]");
  EXPECT_EQ(shape_str(unsqueeze(x.t, 0).shape()), "[1,3,1,2]");
  EXPECT_TRUE(shares_storage(x.t, squeeze(x.t, 1)));
  Tensor nc = noncontiguous(x.v, {3, 1, 2}, Dtype::F32, 1);
  expect_close(squeeze(nc, 1), x.v, {3, 2}, Tol{0, 0}, "squeeze of a view");
  expect_close(unsqueeze(nc, 2), x.v, {3, 1, 1, 2}, Tol{0, 0}, "unsqueeze of a view");
  Rand y = rand({2, 3, 4, 5});
  EXPECT_EQ(shape_str(flatten(y.t).shape()), "[120]");
  EXPECT_EQ(shape_str(flatten(y.t, 1, 2).shape()), "[2,12,5]");
  EXPECT_EQ(shape_str(flatten(y.t, -2).shape()), "[2,3,20]");
  expect_close(flatten(y.t, 1, 2), y.v, {2, 12, 5}, Tol{0, 0}, "flatten");
  EXPECT_EQ(shape_str(flatten(scalar(1.0, Dtype::F32, device())).shape()), "[1]");
}

WICK_DEVICE_TEST(ShapeOps, ConcatStackSplit) {
  Rand a = rand({2, 3, 4}), b = rand({2, 1, 4}, Dtype::F32), c = rand({2, 5, 4}, Dtype::BF16);
  Tensor cat = concat({a.t, noncontiguous(b.v, {2, 1, 4}, Dtype::F32, 1), transpose(transpose(c.t, 0, 2), 0, 2)}, -2);
  EXPECT_EQ(cat.dtype(), Dtype::F64);
  Values ref;
  for (int i = 0; i < 2; ++i) {
    ref.insert(ref.end(), a.v.begin() + i * 12, a.v.begin() + (i + 1) * 12);
    ref.insert(ref.end(), b.v.begin() + i * 4, b.v.begin() + (i + 1) * 4);
    ref.insert(ref.end(), c.v.begin() + i * 20, c.v.begin() + (i + 1) * 20);
  }
  expect_close(cat, ref, {2, 9, 4}, Tol{0, 0}, "concat");
  Tensor cat0 = concat({a.t, a.t}, 0);
  Values ref0 = a.v;
  ref0.insert(ref0.end(), a.v.begin(), a.v.end());
  expect_close(cat0, ref0, {4, 3, 4}, Tol{0, 0}, "concat dim 0");
  // Along the last dim, parts of contiguous rows (copied a row at a time) and a part whose rows
  // start at an odd offset into a larger tensor.
  Rand w = rand({2, 3, 9});
  Tensor cat_last = concat({a.t, narrow(w.t, 2, 3, 5)}, -1);
  Values ref_last;
  for (int r = 0; r < 6; ++r) {
    ref_last.insert(ref_last.end(), a.v.begin() + r * 4, a.v.begin() + (r + 1) * 4);
    ref_last.insert(ref_last.end(), w.v.begin() + r * 9 + 3, w.v.begin() + r * 9 + 8);
  }
  expect_close(cat_last, ref_last, {2, 3, 9}, Tol{0, 0}, "concat last dim");

  Rand p = rand({3, 2}), q = rand({3, 2});
  for (int dim : {0, 1, 2, -1}) {
    Tensor st = stack({p.t, q.t}, dim);
    int d = dim < 0 ? dim + 3 : dim;
    Shape shape{3, 2};
    shape.insert(shape.begin() + d, 2);
    Values v(numel(shape));
    for (int64_t k = 0; k < numel(shape); ++k) {
      auto idx = unravel(k, shape);
      int64_t which = idx[d];
      idx.erase(idx.begin() + d);
      v[k] = (which ? q.v : p.v)[idx[0] * 2 + idx[1]];
    }
    expect_close(st, v, shape, Tol{0, 0}, str_cat("stack dim ", dim));
  }

  Rand x = rand({4, 7});
  auto parts = split(x.t, {2, 0, 5}, 1);
  ASSERT_EQ(parts.size(), 3u);
  int64_t start = 0;
  for (int64_t k = 0; k < 3; ++k) {
    int64_t n = std::vector<int64_t>{2, 0, 5}[k];
    Values v;
    for (int i = 0; i < 4; ++i)
      for (int64_t j = start; j < start + n; ++j) v.push_back(x.v[i * 7 + j]);
    expect_close(parts[k], v, {4, n}, Tol{0, 0}, str_cat("split part ", k));
    start += n;
  }
}

// A strided view over existing host memory (as for a memory-mapped file), without a copy: the CPU's alone.
TEST(HostMemory, FromStorageIsAViewWithoutACopy) {
  std::vector<float> host(20);
  for (int i = 0; i < 20; ++i) host[i] = float(i);
  auto storage = std::make_shared<Storage>(host.data(), host.size() * sizeof(float), Device::cpu(), nullptr);
  Tensor t = Tensor::from_storage(storage, {3, 2}, {5, 2}, 1, Dtype::F32);
  expect_close(t, {1, 3, 6, 8, 11, 13}, {3, 2}, Tol{0, 0}, "from_storage");
  EXPECT_EQ(t.data_ptr(), static_cast<void*>(host.data() + 1));
  expect_close(sum(t, {0}), {18, 24}, {2}, Tol{0, 0}, "reduce of a from_storage view");
  expect_error(
      [&] {
        Tensor::from_storage(storage, {4, 2}, {6, 2}, 1, Dtype::F32);
      },
      {"from_storage", "[4,2]", "reaches past the end of its 80-byte storage"});
}

WICK_DEVICE_TEST(ShapeOps, ZeroDimTensors) {
  Tensor s = scalar(3.0, Dtype::F64, device());
  expect_close(squeeze(s, 0), {3}, {}, Tol{0, 0}, "squeeze");
  expect_close(squeeze(s, -1), {3}, {}, Tol{0, 0}, "squeeze -1");
  expect_close(transpose(s, 0, -1), {3}, {}, Tol{0, 0}, "transpose");
  expect_close(unsqueeze(s, 0), {3}, {1}, Tol{0, 0}, "unsqueeze");
  expect_close(reshape(s, {1, 1}), {3}, {1, 1}, Tol{0, 0}, "reshape");
  expect_close(reshape(full({1, 1}, 2.0, Dtype::F32, device()), {}), {2}, {}, Tol{0, 0}, "reshape to 0-dim");
  expect_close(stack({s, s * 2.0}, 0), {3, 6}, {2}, Tol{0, 0}, "stack");
  expect_close(broadcast_to(s, {2, 2}), Values(4, 3.0), {2, 2}, Tol{0, 0}, "broadcast_to");
  expect_close(softmax(s, 0), {1}, {}, "softmax");
  expect_close(sum(s, {0}), {3}, {}, Tol{0, 0}, "sum");
  expect_close(mean(s, {-1}), {3}, {}, Tol{0, 0}, "mean");
  expect_close(logsumexp(s, {0}), {3}, {}, "logsumexp");
  expect_close(argmax(s, 0), {0}, {}, Tol{0, 0}, "argmax");
  // Ops that index into a dim reject 0-dim tensors instead of reading past the shape.
  Tensor idx = ints({0}, {1});
  for (auto& [name, f] :
       std::vector<std::pair<std::string, std::function<void()>>>{{"slice", [&] { slice(s, 0, 0, 1); }},
                                                                  {"narrow", [&] { narrow(s, 0, 0, 1); }},
                                                                  {"concat",
                                                                   [&] {
                                                                     concat({s, s}, 0);
                                                                   }},
                                                                  {"split", [&] { split(s, {1}, 0); }},
                                                                  {"take", [&] { take(s, idx, 0); }},
                                                                  {"index_add", [&] { index_add(s, 0, idx, s); }}})
    expect_error(f, {name + ": expected a tensor with at least 1 dim, got a 0-dim tensor"});
  expect_error([&] { max(s, {3}); }, {"max: dim 3 out of range for a tensor of 0 dims"});
}

WICK_DEVICE_TEST(ShapeOps, EmptyTensors) {
  auto z = [&](const Shape& s) { return zeros(s, Dtype::F32, device()); };
  EXPECT_EQ(shape_str(matmul(z({2, 3, 0}), z({0, 4})).shape()), "[2,3,4]");
  expect_close(matmul(z({2, 3, 0}), z({0, 4})), Values(24, 0.0), {2, 3, 4}, Tol{0, 0}, "K = 0");
  EXPECT_EQ(shape_str(matmul(z({2, 0, 3}), z({3, 4})).shape()), "[2,0,4]");
  expect_close(sum(z({2, 0, 3}), {1}), Values(6, 0.0), {2, 3}, Tol{0, 0}, "sum over an empty dim");
  EXPECT_EQ(shape_str(concat({z({2, 0}), ones({2, 3}, Dtype::F32, device())}, 1).shape()), "[2,3]");
  EXPECT_EQ(shape_str(layer_norm(z({0, 4}), std::nullopt, std::nullopt).shape()), "[0,4]");
  expect_error([&] { expand(z({3}), {-1, 3}); }, {"expand: -1 is not allowed for the new leading dim 0 of [-1,3]"});
  expect_error([&] { broadcast_to(z({3}), {-2, 3}); }, {"broadcast_to: bad size in [-2,3]"});
}

WICK_DEVICE_TEST(ShapeOps, Gradients) {
  Rand x = rand({2, 3, 4});
  auto check = [&](const char* what, Fn f) { check_grads(f, {x.t}, what); };
  check("reshape", [](auto& in) { return reshape(in[0], {4, 6}); });
  check("reshape of a transpose", [](auto& in) { return reshape(transpose(in[0], 0, 2), {-1}) * 2.0; });
  check("permute", [](auto& in) { return permute(in[0], {2, 0, 1}); });
  check("transpose", [](auto& in) { return transpose(in[0], -1, 0); });
  check("slice", [](auto& in) { return slice(in[0], 2, -3, 4, 2); });
  check("slice twice", [](auto& in) { return slice(slice(in[0], 1, 0, 3, 2), 0, 1, 2); });
  check("narrow", [](auto& in) { return narrow(in[0], 1, 1, 2); });
  check("broadcast_to", [](auto& in) { return broadcast_to(narrow(in[0], 1, 0, 1), {5, 2, 3, 4}); });
  check("expand", [](auto& in) { return expand(narrow(in[0], 2, 1, 1), {-1, -1, 3}); });
  check("squeeze/unsqueeze", [](auto& in) { return unsqueeze(squeeze(narrow(in[0], 1, 2, 1), 1), 0); });
  check("flatten", [](auto& in) { return flatten(transpose(in[0], 0, 1), 0, 1); });
  check("concat", [](auto& in) { return concat({in[0], narrow(in[0], 1, 1, 1), in[0] * 2.0}, 1); });
  check("stack", [](auto& in) { return stack({in[0], transpose(in[0], 0, 0) * in[0]}, 3); });
  check("split", [](auto& in) {
    auto p = split(in[0], {1, 3}, 2);
    return p[0] * p[1];
  });
  check("contiguous", [](auto& in) { return contiguous(transpose(in[0], 0, 1)); });
  Rand a = rand({2, 3}), b = rand({2, 2});
  check_grads([](auto& in) { return concat({in[0], in[1]}, 1); }, {a.t, b.t}, "concat of two inputs");
}

// A random view of a fresh tensor: a permutation of its dims, then a slice of each dim.
Tensor random_view(const Shape& base_shape, Dtype dt, Device device) {
  Tensor t = rand(base_shape, dt, -2, 2, device).t;
  std::vector<int> perm(base_shape.size());
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = int(i);
  std::shuffle(perm.begin(), perm.end(), rng());
  t = permute(t, perm);
  for (int d = 0; d < t.ndim(); ++d) {
    int64_t n = t.shape(d);
    int64_t start = random_indices(1, std::max<int64_t>(n / 2, 1))[0], step = random_indices(1, 2)[0] + 1;
    t = slice(t, d, start, n, step);
  }
  return t;
}

Shape random_shape(int max_dims, int64_t max_size) {
  Shape s(random_indices(1, max_dims)[0] + 1);
  for (int64_t& d : s) d = random_indices(1, max_size)[0] + 1;
  return s;
}

WICK_DEVICE_TEST(ShapeOps, FuzzReshapeOfViews) {
  for (int trial = 0; trial < 300; ++trial) {
    Tensor v = random_view(random_shape(4, 4), Dtype::F32, device());
    Values expected = values(v);  // the view's elements in row-major order
    // A random target shape with the same number of elements: split numel into factors.
    int64_t n = v.numel();
    Shape target;
    for (int64_t rest = n; rest > 1;) {
      int64_t f = 2;
      while (rest % f) ++f;
      if (random_indices(1, 2)[0] && !target.empty())
        target.back() *= f;
      else
        target.push_back(f);
      rest /= f;
      if (random_indices(1, 3)[0] == 0) target.push_back(1);
    }
    Tensor r = reshape(v, target);
    expect_close(
        r, expected, target, Tol{0, 0},
        str_cat("reshape ", shape_str(v.shape()), " strides ", shape_str(v.strides()), " -> ", shape_str(target)));
    if (v.is_contiguous()) {
      EXPECT_TRUE(shares_storage(v, r)) << "a contiguous tensor reshapes as a view";
    }
  }
}

WICK_DEVICE_TEST(ShapeOps, FuzzStridedBinaryOps) {
  for (int trial = 0; trial < 200; ++trial) {
    Tensor a = random_view(random_shape(4, 5), Dtype::F64, device());
    Tensor b = rand(a.shape(), Dtype::F64).t;
    // b as a permuted copy viewed back to a's shape.
    std::vector<int> perm(a.ndim());
    for (int i = 0; i < a.ndim(); ++i) perm[i] = a.ndim() - 1 - i;
    Tensor bt = permute(contiguous(permute(b, perm)), perm);
    Values va = values(a), vb = values(b), ref;
    for (size_t i = 0; i < va.size(); ++i) ref.push_back(va[i] * 2 - vb[i]);
    expect_close(a * 2.0 - bt, ref, a.shape(), Tol{1e-15, 1e-15}, str_cat("strides ", shape_str(a.strides())));
  }
}

WICK_DEVICE_TEST(ShapeOps, Contiguous) {
  Rand a = rand({4, 6});
  Tensor t = transpose(a.t, 0, 1);
  EXPECT_FALSE(t.is_contiguous());
  Tensor c = contiguous(t);
  EXPECT_TRUE(c.is_contiguous());
  Values ref;
  for (int j = 0; j < 6; ++j)
    for (int i = 0; i < 4; ++i) ref.push_back(a.v[i * 6 + j]);
  expect_close(c, ref, {6, 4}, Tol{0, 0});
  EXPECT_TRUE(contiguous(a.t).same(a.t));  // already contiguous: the same tensor
}

// Copies out of views (the strided copy kernels) in every float dtype, at odd sizes.
WICK_DEVICE_TEST(ShapeOps, CopiesOfViewsInEveryDtype) {
  for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16, Dtype::F64}) {
    SCOPED_TRACE(dtype_name(dt));
    const Shape sx{5, 33, 7}, ss{5, 7, 7};
    Rand x = rand(sx, dt), src = rand(ss, dt);
    auto at = [&](const Values& v, const Shape& s, std::vector<int64_t> idx) { return v[flat(idx, s)]; };
    // concat of x, a transposed src and x again along dim 1.
    Tensor cat = concat({x.t, transpose(src.t, 1, 2), x.t}, 1);
    Values ref;
    for (int64_t a = 0; a < 5; ++a)
      for (int64_t b = 0; b < 73; ++b)
        for (int64_t c = 0; c < 7; ++c)
          ref.push_back(b < 33   ? at(x.v, sx, {a, b, c})
                        : b < 40 ? at(src.v, ss, {a, c, b - 33})
                                 : at(x.v, sx, {a, b - 40, c}));
    expect_close(cat, ref, {5, 73, 7}, Tol{0, 0}, "concat");
    // stack of x and 2x along dim 2 (2x is exact in every dtype).
    Values sref;
    for (int64_t a = 0; a < 5; ++a)
      for (int64_t b = 0; b < 33; ++b)
        for (int64_t k = 0; k < 2; ++k)
          for (int64_t c = 0; c < 7; ++c) sref.push_back(at(x.v, sx, {a, b, c}) * (k ? 2 : 1));
    expect_close(stack({x.t, x.t * 2.0}, 2), sref, {5, 33, 2, 7}, Tol{0, 0}, "stack");
    expect_close(split(x.t, {10, 23}, 1)[1] + 0.0,
                 gather_ref(x.v, {5, 23, 7},
                            [&](auto i) {
                              return flat({i[0], i[1] + 10, i[2]}, sx);
                            }),
                 {5, 23, 7}, Tol{0, 0}, "split");
    expect_close(reshape(transpose(x.t, 0, 1), {-1, 5}),
                 gather_ref(x.v, {33, 5, 7},
                            [&](auto i) {
                              return flat({i[1], i[0], i[2]}, sx);
                            }),
                 {231, 5}, Tol{0, 0}, "reshape of a transpose");
    expect_close(contiguous(expand(x.t, {2, 5, 33, 7})),
                 gather_ref(x.v, {2, 5, 33, 7},
                            [&](auto i) {
                              return flat({i[1], i[2], i[3]}, sx);
                            }),
                 {2, 5, 33, 7}, Tol{0, 0}, "contiguous of an expand");
    const Shape sy{4, 1, 33, 6};
    Rand y = rand(sy, dt);
    expect_close(flatten(squeeze(y.t, 1), 1) + 0.0, y.v, {4, 198}, Tol{0, 0}, "flatten of a squeeze");
    expect_close(contiguous(unsqueeze(narrow(y.t, 2, 3, 20), 0)),
                 gather_ref(y.v, {1, 4, 1, 20, 6},
                            [&](auto i) {
                              return flat({i[1], 0, i[3] + 3, i[4]}, sy);
                            }),
                 {1, 4, 1, 20, 6}, Tol{0, 0}, "unsqueeze of a narrow");
    expect_close(contiguous(broadcast_to(y.t, {2, 4, 5, 33, 6})),
                 gather_ref(y.v, {2, 4, 5, 33, 6},
                            [&](auto i) {
                              return flat({i[1], 0, i[3], i[4]}, sy);
                            }),
                 {2, 4, 5, 33, 6}, Tol{0, 0}, "broadcast_to");
  }
}

// Copies whose rows are dense and 16-byte multiples move 16 bytes per thread on CUDA: attention's
// head layouts [B, H, T, D] <-> [B, T, H, D], a concat of heads, a broadcast head; and the same
// views started one element in (not 16-byte aligned), which copy one value at a time.
WICK_DEVICE_TEST(ShapeOps, CopiesOfHeadLayouts) {
  for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16, Dtype::F64}) {
    SCOPED_TRACE(dtype_name(dt));
    const Shape sx{2, 3, 5, 24};
    Rand x = rand(sx, dt);
    for (int64_t skip : {0, 1}) {
      SCOPED_TRACE(str_cat("skip ", skip));
      Tensor heads = narrow(x.t, 3, skip, 16);  // [2, 3, 5, 16]
      auto at = [&](int64_t b, int64_t h, int64_t t, int64_t d) { return x.v[flat({b, h, t, d + skip}, sx)]; };
      expect_close(reshape(transpose(heads, 1, 2), {10, 48}),
                   gather_ref(x.v, {10, 48}, [&](auto i) { return flat({i[0] / 5, i[1] / 16, i[0] % 5, i[1] % 16 + skip}, sx); }),
                   {10, 48}, Tol{0, 0}, "heads to rows");
      Tensor cat = concat({transpose(heads, 1, 2), transpose(narrow(heads, 1, 1, 1), 1, 2)}, 2);  // [2, 5, 4, 16]
      Values ref;
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t t = 0; t < 5; ++t)
          for (int64_t h = 0; h < 4; ++h)
            for (int64_t d = 0; d < 16; ++d) ref.push_back(at(b, h < 3 ? h : 1, t, d));
      expect_close(cat, ref, {2, 5, 4, 16}, Tol{0, 0}, "concat of heads");
      Values bref;
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t h = 0; h < 3; ++h)
          for (int64_t t = 0; t < 5; ++t)
            for (int64_t d = 0; d < 16; ++d) bref.push_back(at(b, 2, t, d));
      expect_close(contiguous(expand(narrow(heads, 1, 2, 1), {2, 3, 5, 16})), bref, {2, 3, 5, 16}, Tol{0, 0},
                   "broadcast head");
    }
  }
}

WICK_DEVICE_TEST(ShapeOps, GradientsInLowerPrecision) {
  const std::pair<const char*, Fn> cases[] = {
      {"views",
       [](auto& in) {
         return concat({transpose(in[0], 0, 1), slice(transpose(in[0], 0, 1), 0, 1, 5, 2)}, 0);
       }},
      {"concat",
       [](auto& in) {
         return concat({in[0], in[1] * 2.0}, 0);
       }},
  };
  for (const auto& [name, fn] : cases) {
    std::vector<Tensor> x64{rand({3, 5}).t, rand({4, 5}).t};
    for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16})
      check_grads_in(dt, fn, x64, dt == Dtype::F32 ? 1e-5 : dt == Dtype::F16 ? 1e-2 : 5e-2, name);
  }
}

}  // namespace
}  // namespace wick
