// Indexing ops on every device: gathers (take, index_select, embedding; negative, repeated and
// strided indices), index_add with repeated indices and slice_update (incl. the buffer-donation path
// of KV-cache writes), against float64 loops; gradients against finite differences and in lower
// precisions.
#include "support/testing.h"

namespace wick {
namespace {

using namespace testing;

// numpy.take: out[pre, idx, post] = x[pre, index[idx], post].
Values take_ref(const Values& x, const Shape& sx, const std::vector<int64_t>& index, const Shape& si, int dim,
                Shape& so) {
  int64_t outer = 1, inner = 1, n = sx[dim];
  for (int d = 0; d < dim; ++d) outer *= sx[d];
  for (size_t d = dim + 1; d < sx.size(); ++d) inner *= sx[d];
  so.assign(sx.begin(), sx.begin() + dim);
  so.insert(so.end(), si.begin(), si.end());
  so.insert(so.end(), sx.begin() + dim + 1, sx.end());
  Values out;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i : index) {
      int64_t r = i < 0 ? i + n : i;
      for (int64_t j = 0; j < inner; ++j) out.push_back(x[(o * n + r) * inner + j]);
    }
  return out;
}

// 16-bit sums round after each addition; f32 sums (atomics on the GPU) in any order, of terms up to 8.
Tol index_add_tol(Dtype dt) {
  if (dt == Dtype::BF16) return {0.05, 0.02};
  if (dt == Dtype::F16) return {0.02, 0.01};
  return sum_tol(dt, 8.0);
}

WICK_DEVICE_SUITE(Indexing);

WICK_DEVICE_TEST(Indexing, TakeIndexSelectEmbedding) {
  const Shape sx{4, 6, 3};
  for (Dtype dt : {Dtype::F64, Dtype::F32, Dtype::BF16, Dtype::I32})
    for (Dtype it : {Dtype::I32, Dtype::I64})
      for (int dim : {0, 1, 2}) {
        Values xv = values(make(random_values(numel(sx), -5, 5), sx, dt));
        Tensor x = make(xv, sx, dt);
        std::vector<int64_t> idx = random_indices(10, sx[dim]);
        idx[1] = idx[0];  // a repeat
        idx[2] = -1;      // counted from the end
        Shape si{2, 5}, so;
        Values ref = take_ref(xv, sx, idx, si, dim, so);
        std::string what = str_cat("take ", dtype_name(dt), " ", dtype_name(it), " dim ", dim);
        Tensor y = take(x, ints(idx, si, it), dim);
        EXPECT_EQ(y.dtype(), dt);
        expect_close(y, ref, so, Tol{0, 0}, what);
        expect_close(take(noncontiguous(xv, sx, dt), ints(idx, si, it), dim), ref, so, Tol{0, 0}, what + " of a view");
        // A strided index.
        Tensor sidx = transpose(ints(idx, {5, 2}, it), 0, 1);
        std::vector<int64_t> tidx;
        for (int a = 0; a < 2; ++a)
          for (int b = 0; b < 5; ++b) tidx.push_back(idx[b * 2 + a]);
        expect_close(take(x, sidx, dim), take_ref(xv, sx, tidx, si, dim, so), so, Tol{0, 0}, what + " strided index");
        Shape s1;
        std::vector<int64_t> one(idx.begin(), idx.begin() + 4);
        expect_close(index_select(x, dim, ints(one, {4}, it)), take_ref(xv, sx, one, {4}, dim, s1), s1, Tol{0, 0},
                     "index_select");
      }
  Rand w = rand({11, 5}, Dtype::F32);
  std::vector<int64_t> ids = {3, 0, 10, 3, 7, 7};
  Shape so;
  expect_close(embedding(w.t, ints(ids, {2, 3}, Dtype::I64)), take_ref(w.v, {11, 5}, ids, {2, 3}, 0, so), so, Tol{0, 0},
               "embedding");
  EXPECT_EQ(shape_str(so), "[2,3,5]");
}

// Model-sized gathers in every dtype: an embedding table of 129 rows (ids incl. the last row and -1),
// i32 ids of shape [2, 3] into dim 0, and into dim 1 of a transposed tensor.
WICK_DEVICE_TEST(Indexing, GathersAtModelSizes) {
  for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16, Dtype::F64}) {
    std::string what = dtype_name(dt);
    Rand table = rand({129, 17}, dt), x = rand({5, 33, 7}, dt);
    std::vector<int64_t> ids = {3, 0, 128, 5, 5, -1, 77}, ids2 = {1, 4, 4, 0, 2, 3};
    Shape so;
    expect_close(embedding(table.t, ints(ids, {7})), take_ref(table.v, {129, 17}, ids, {7}, 0, so), so, Tol{0, 0},
                 "embedding " + what);
    expect_close(take(x.t, ints(ids2, {2, 3}, Dtype::I32), 0), take_ref(x.v, {5, 33, 7}, ids2, {2, 3}, 0, so), so,
                 Tol{0, 0}, "take dim 0 " + what);
    Values xt;  // x transposed to [7, 33, 5]
    for (int64_t a = 0; a < 7; ++a)
      for (int64_t b = 0; b < 33; ++b)
        for (int64_t c = 0; c < 5; ++c) xt.push_back(x.v[(c * 33 + b) * 7 + a]);
    expect_close(take(transpose(x.t, 0, 2), ints(ids2, {2, 3}, Dtype::I32), 1),
                 take_ref(xt, {7, 33, 5}, ids2, {2, 3}, 1, so), so, Tol{0, 0}, "take dim 1 of a transpose " + what);
    // index_add of [5, 7, 7] rows into dim 1 of [5, 33, 7], rows repeated.
    std::vector<int64_t> rows = {0, 32, 5, 5, 5, 1, 0};
    Rand src = rand({5, 7, 7}, dt);
    Values ref = x.v;
    for (int64_t a = 0; a < 5; ++a)
      for (int64_t i = 0; i < 7; ++i)
        for (int64_t c = 0; c < 7; ++c) ref[(a * 33 + rows[i]) * 7 + c] += src.v[(a * 7 + i) * 7 + c];
    expect_close(index_add(x.t, 1, ints(rows, {7}), src.t), ref, {5, 33, 7}, index_add_tol(dt), "index_add " + what);
  }
}

WICK_DEVICE_TEST(Indexing, IndexAddRepeatedIndices) {
  const Shape sx{3, 5, 2};
  for (Dtype dt : {Dtype::F64, Dtype::F32, Dtype::BF16, Dtype::F16})
    for (int dim : {0, 1, 2}) {
      Rand x = rand(sx, dt);
      std::vector<int64_t> idx = random_indices(7, sx[dim]);
      idx[3] = idx[1];
      idx[4] = idx[1];
      Shape ss = sx;
      ss[dim] = 7;
      Rand src = rand(ss, dt);
      Values ref = x.v;
      int64_t outer = 1, inner = 1;
      for (int d = 0; d < dim; ++d) outer *= sx[d];
      for (int d = dim + 1; d < 3; ++d) inner *= sx[d];
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < 7; ++i)
          for (int64_t j = 0; j < inner; ++j) ref[(o * sx[dim] + idx[i]) * inner + j] += src.v[(o * 7 + i) * inner + j];
      std::string what = str_cat("index_add ", dtype_name(dt), " dim ", dim);
      Tol tol = index_add_tol(dt);
      expect_close(index_add(x.t, dim, ints(idx, {7}, Dtype::I64), src.t), ref, sx, tol, what);
      expect_close(
          index_add(noncontiguous(x.v, sx, dt), dim, ints(idx, {7}, Dtype::I32), noncontiguous(src.v, ss, dt, 1)), ref,
          sx, tol, what + " of views");
      // The input is not modified.
      expect_close(x.t, x.v, sx, Tol{0, 0}, what + " input untouched");
    }
}

WICK_DEVICE_TEST(Indexing, SliceUpdate) {
  const Shape sd{4, 6, 3};
  for (Dtype dt : {Dtype::F64, Dtype::F32, Dtype::BF16, Dtype::I64}) {
    Values dv = values(make(random_values(numel(sd), -5, 5), sd, dt));
    Shape ss{2, 3, 3}, start{1, 2, 0};
    Values sv = values(make(random_values(numel(ss), -5, 5), ss, dt));
    Values ref = dv;
    for (int64_t i = 0; i < numel(ss); ++i) {
      auto idx = unravel(i, ss);
      ref[((idx[0] + start[0]) * 6 + idx[1] + start[1]) * 3 + idx[2] + start[2]] = sv[i];
    }
    Tensor dst = make(dv, sd, dt);
    std::string what = str_cat("slice_update ", dtype_name(dt));
    // A dst that is still referenced is copied and left unchanged.
    Tensor out = slice_update(dst, make(sv, ss, dt), start);
    expect_close(out, ref, sd, Tol{0, 0}, what);
    expect_close(dst, dv, sd, Tol{0, 0}, what + " dst unchanged");
    EXPECT_NE(out.data_ptr(), dst.data_ptr());
    // Non-contiguous dst and src.
    expect_close(slice_update(noncontiguous(dv, sd, dt), noncontiguous(sv, ss, dt, 1), start), ref, sd, Tol{0, 0},
                 what + " of views");
    // A src of another dtype is converted.
    expect_close(slice_update(dst, make(sv, ss, Dtype::F64), start), ref, sd, Tol{0, 0}, what + " src converted");
  }
}

// A KV-cache-sized write: a [4, 3, 7] block into [4, 40, 7] at row 17, and a stepped slice of a
// wider buffer (a non-contiguous source) at row 37.
WICK_DEVICE_TEST(Indexing, SliceUpdateAtModelSizes) {
  for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16, Dtype::F64}) {
    Rand dst = rand({4, 40, 7}, dt), piece = rand({4, 3, 7}, dt), wide = rand({4, 6, 7}, dt);
    Values ref = dst.v, ref2 = dst.v;
    for (int64_t a = 0; a < 4; ++a)
      for (int64_t t = 0; t < 3; ++t)
        for (int64_t c = 0; c < 7; ++c) {
          ref[(a * 40 + 17 + t) * 7 + c] = piece.v[(a * 3 + t) * 7 + c];
          ref2[(a * 40 + 37 + t) * 7 + c] = wide.v[(a * 6 + 2 * t) * 7 + c];
        }
    expect_close(slice_update(dst.t, piece.t, {0, 17, 0}), ref, {4, 40, 7}, Tol{0, 0}, dtype_name(dt));
    expect_close(slice_update(dst.t, slice(wide.t, 1, 0, 6, 2), {0, 37, 0}), ref2, {4, 40, 7}, Tol{0, 0},
                 str_cat(dtype_name(dt), " from a stepped slice"));
  }
}

WICK_DEVICE_TEST(Indexing, SliceUpdateDonatesAMovedBuffer) {
  for (ExecMode mode : {ExecMode::Eager, ExecMode::Lazy}) {
    ExecModeScope scope(mode);
    Tensor cache = zeros({2, 8, 4}, Dtype::F32, device()).eval();
    void* p = cache.data_ptr();
    Rand src = rand({2, 1, 4}, Dtype::F32);
    for (int64_t t = 0; t < 3; ++t) {
      cache = slice_update(std::move(cache), src.t, {0, t, 0});
      cache.eval();
      EXPECT_EQ(cache.data_ptr(), p) << "step " << t << (mode == ExecMode::Lazy ? " lazy" : " eager");
    }
    Values v = values(cache);
    for (int b = 0; b < 2; ++b)
      for (int t = 0; t < 8; ++t)
        for (int c = 0; c < 4; ++c) EXPECT_EQ(v[(b * 8 + t) * 4 + c], t < 3 ? src.v[b * 4 + c] : 0.0);
  }
  // A view of the buffer keeps it alive elsewhere: no donation, and the view keeps its values.
  Tensor cache = zeros({4, 2}, Dtype::F32, device());
  Tensor view = narrow(cache, 0, 0, 2);
  Tensor out = slice_update(std::move(cache), ones({1, 2}, Dtype::F32, device()), {0, 0});
  expect_close(view, Values(4, 0.0), {2, 2}, Tol{0, 0}, "view of a non-donated buffer");
  expect_close(out, {1, 1, 0, 0, 0, 0, 0, 0}, {4, 2}, Tol{0, 0});
  // A bf16 cache written one position at a time keeps its buffer.
  Tensor kv = zeros({2, 64, 8}, Dtype::BF16, device());
  const void* before = kv.storage()->data();
  for (int t = 0; t < 5; ++t)
    kv = slice_update(std::move(kv), full({2, 1, 8}, t + 1, Dtype::BF16, device()), {0, t, 0});
  EXPECT_EQ(kv.storage()->data(), before);
  Values kvv = values(kv);
  for (int b = 0; b < 2; ++b)
    for (int t = 0; t < 64; ++t) EXPECT_EQ(kvv[(b * 64 + t) * 8], t < 5 ? t + 1.0 : 0.0) << b << " " << t;
}

WICK_DEVICE_TEST(Indexing, Gradients) {
  Rand x = rand({4, 3, 2});
  Tensor idx = ints({2, 0, 2, -1, 1}, {5}, Dtype::I64);
  check_grads([&](const std::vector<Tensor>& in) { return take(in[0], idx, 0); }, {x.t}, "take dim 0");
  check_grads([&](const std::vector<Tensor>& in) { return take(in[0], reshape(idx, {5, 1}), 1); }, {x.t}, "take dim 1");
  check_grads([&](const std::vector<Tensor>& in) { return index_select(transpose(in[0], 0, 2), 2, idx); }, {x.t},
              "index_select of a view");
  Rand w = rand({6, 3});
  Tensor ids = ints({1, 5, 1, 0}, {2, 2}, Dtype::I32);
  check_grads([&](const std::vector<Tensor>& in) { return embedding(in[0], ids); }, {w.t}, "embedding");
  Rand src = rand({4, 5, 2});
  Tensor add_idx = ints({2, 0, 2, 2, 1}, {5}, Dtype::I64);
  check_grads([&](const std::vector<Tensor>& in) { return index_add(in[0], 1, add_idx, in[1]); }, {x.t, src.t},
              "index_add");
  Rand upd = rand({2, 2, 2});
  check_grads(
      [&](const std::vector<Tensor>& in) {
        return slice_update(in[0], in[1], {1, 1, 0});
      },
      {x.t, upd.t}, "slice_update");
  check_grads(
      [&](const std::vector<Tensor>& in) {
        return slice_update(in[0] * 2.0, transpose(in[1], 0, 2), {1, 1, 0});
      },
      {x.t, upd.t}, "slice_update of computed and transposed inputs");
}

WICK_DEVICE_TEST(Indexing, GradientsInLowerPrecision) {
  Tensor ids = ints({2, 0, 2}, {3});
  Tensor table_ids = ints({3, 0, 32, 5, 5, 5}, {2, 3});
  std::vector<Tensor> in{rand({4, 5}).t, rand({3, 5}).t};
  std::vector<Tensor> table{rand({33, 9}).t};
  for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16}) {
    double rel = dt == Dtype::F32 ? 1e-5 : dt == Dtype::F16 ? 1e-2 : 5e-2;
    check_grads_in(
        dt, [&](auto& v) { return index_add(take(v[0], ids, 0), 0, ids, v[1]); }, in, rel, "indexing");
    check_grads_in(
        dt, [&](auto& v) { return embedding(v[0], table_ids); }, table, rel, "embedding");
  }
}

// place_blocks: zeros with blocks at their offsets (a block-diagonal matrix with a gap row band,
// one block a transposed view, one a 16-byte multiple wide), every dtype; gradients by finite
// differences; overlapping or misfit blocks are refused naming them.
WICK_DEVICE_TEST(Indexing, PlaceBlocks) {
  for (Dtype dt : {Dtype::F64, Dtype::F32, Dtype::BF16, Dtype::F16, Dtype::I64}) {
    SCOPED_TRACE(dtype_name(dt));
    Rand a = rand({3, 2}, dt), b = rand({4, 8}, dt), c = rand({1, 5}, dt);
    Tensor ct = transpose(testing::make(c.v, {5, 1}, dt, device()), 0, 1);
    const Shape shape{10, 15};
    Tensor out = place_blocks(shape, {a.t, b.t, ct}, {{0, 0}, {5, 2}, {9, 10}});
    Values ref(150, 0.0);
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 2; ++j) ref[size_t(i * 15 + j)] = a.v[size_t(i * 2 + j)];
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t j = 0; j < 8; ++j) ref[size_t((5 + i) * 15 + 2 + j)] = b.v[size_t(i * 8 + j)];
    for (int64_t j = 0; j < 5; ++j) ref[size_t(9 * 15 + 10 + j)] = c.v[size_t(j)];
    expect_close(out, ref, shape, Tol{0, 0}, "place_blocks");
  }
  check_grads(
      [](const std::vector<Tensor>& in) { return place_blocks({6, 7}, {in[0], in[1]}, {{0, 0}, {3, 2}}); },
      {rand({2, 2}).t, rand({3, 5}).t}, "place_blocks");
  Tensor x = zeros({2, 2}, Dtype::F32, device());
  expect_error([&] { place_blocks({4, 4}, {x, x}, {{0, 0}, {1, 1}}); }, {"place_blocks", "blocks 0 and 1 overlap"});
  expect_error([&] { place_blocks({4, 4}, {x}, {{3, 0}}); }, {"place_blocks", "does not fit in [4,4]"});
  expect_error([&] { place_blocks({4, 4}, {x, zeros({2, 2}, Dtype::F64, device())}, {{0, 0}, {2, 2}}); },
               {"place_blocks", "block 1 is f64"});
}

}  // namespace
}  // namespace wick
