// paged_attention and paged_kv_write on every device: attention of prefill chunks and decode tokens
// of several rows over a paged cache whose blocks are scattered in random order, against a float64
// loop over each token's context and against the reference composition (take +
// scaled_dot_product_attention); contexts long enough to be split across CTAs on the GPU; the cache
// write (plain and with RoPE on the keys, from strided views) against a float64 loop; bad paging.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "support/testing.h"

namespace wick {
namespace {

using namespace testing;

// Block tables of `rows` rows of `width` blocks each, drawn without repetition from 1..num_blocks-1.
std::vector<int32_t> scattered_tables(int64_t rows, int64_t width, int64_t num_blocks) {
  std::vector<int32_t> ids(size_t(num_blocks - 1));
  std::iota(ids.begin(), ids.end(), 1);
  std::shuffle(ids.begin(), ids.end(), rng());
  ids.resize(size_t(rows * width));
  return ids;
}

Tensor i32(const std::vector<int32_t>& v, const Shape& shape, Device device) {
  return to_device(Tensor::from_vector(v, shape, Device::cpu()), device);
}

struct Geometry {
  int64_t hq, hkv, d, bs, width;
};

// out[t, h, :] = softmax over p <= pos[t] of scale * q[t, h] . K(row, p, h / group) times V, in float64.
Values attention_ref(const Values& q, const Values& cache, const std::vector<int32_t>& tables,
                     const std::vector<int32_t>& rows, const std::vector<int32_t>& pos, const Geometry& g) {
  int64_t n = int64_t(pos.size()), group = g.hq / g.hkv;
  double scale = 1.0 / std::sqrt(double(g.d));
  Values out(size_t(n * g.hq * g.d), 0.0);
  auto at = [&](int which, int32_t row, int64_t p, int64_t kvh, int64_t j) {
    int64_t block = tables[row * g.width + p / g.bs], slot = p % g.bs;
    return cache[size_t((((block * 2 + which) * g.hkv + kvh) * g.bs + slot) * g.d + j)];
  };
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < g.hq; ++h) {
      int64_t len = pos[t] + 1, kvh = h / group;
      std::vector<double> s(static_cast<size_t>(len));
      double m = -INFINITY, total = 0;
      for (int64_t p = 0; p < len; ++p) {
        double dot = 0;
        for (int64_t j = 0; j < g.d; ++j) dot += q[size_t((t * g.hq + h) * g.d + j)] * at(0, rows[t], p, kvh, j);
        s[p] = dot * scale;
        m = std::max(m, s[p]);
      }
      for (double& v : s) total += (v = std::exp(v - m));
      for (int64_t j = 0; j < g.d; ++j) {
        double acc = 0;
        for (int64_t p = 0; p < len; ++p) acc += s[p] * at(1, rows[t], p, kvh, j);
        out[size_t((t * g.hq + h) * g.d + j)] = acc / total;
      }
    }
  return out;
}

WICK_DEVICE_SUITE(PagedAttention);

WICK_DEVICE_TEST(PagedAttention, MatchesFloat64ForPrefillAndDecodeTokens) {
  struct Case {
    Dtype dtype;
    Geometry g;
    std::vector<int32_t> rows, positions;
  };
  const Case cases[] = {
      // Row 0 a prefill chunk at positions 3..9, row 1 a decode at its last position, row 2 a first token.
      {Dtype::F32, {4, 2, 16, 4, 5}, {0, 0, 0, 0, 0, 0, 0, 1, 2}, {3, 4, 5, 6, 7, 8, 9, 19, 0}},
      {Dtype::F32, {7, 1, 64, 16, 3}, {0, 1}, {40, 3}},
      // Qwen2.5-0.5B's grouping (14 query heads over 2 kv heads of 64) in bf16.
      {Dtype::BF16, {14, 2, 64, 16, 8}, {0, 0, 0, 0, 1, 2, 3}, {0, 1, 2, 3, 77, 127, 5}},
      {Dtype::F16, {8, 8, 32, 8, 5}, {0, 1, 1}, {39, 0, 20}},
      // One token deep in a long context (split across CTAs on the GPU, then combined), odd head dim.
      {Dtype::F32, {8, 2, 128, 16, 128}, {0, 1}, {2047, 1000}},
      {Dtype::F32, {3, 1, 80, 4, 9}, {0}, {35}},
  };
  for (const Case& c : cases) {
    const Geometry& g = c.g;
    int64_t nrows = *std::max_element(c.rows.begin(), c.rows.end()) + 1, num_blocks = nrows * g.width + 3;
    int64_t n = int64_t(c.positions.size());
    std::vector<int32_t> tables = scattered_tables(nrows, g.width, num_blocks);
    Rand cache = rand({num_blocks, 2, g.hkv, g.bs, g.d}, c.dtype), q = rand({n, g.hq, g.d}, c.dtype);
    Tensor tt = i32(tables, {nrows, g.width}, device()), tr = i32(c.rows, {n}, device());
    Tensor tp = i32(c.positions, {n}, device());
    std::string what = str_cat(dtype_name(c.dtype), " hq ", g.hq, " hkv ", g.hkv, " d ", g.d);
    Values want = attention_ref(q.v, cache.v, tables, c.rows, c.positions, g);
    Tensor got = paged_attention(q.t, cache.t, tt, tr, tp, g.width * g.bs);
    // Softmax-weighted sums of values within [-2, 2]: an error of a few roundings of 2.
    Tol tol = c.dtype == Dtype::F32 ? Tol{2e-5, 1e-4} : scaled(tol_for(c.dtype), 2);
    expect_close(got, want, {n, g.hq, g.d}, tol, what);
    if (c.dtype == Dtype::F32 && g.width * g.bs <= 256)
      expect_close(reference::paged_attention(astype(q.t, Dtype::F64), astype(cache.t, Dtype::F64), tt, tr, tp), want,
                   {n, g.hq, g.d}, tol_for(Dtype::F64), what + " (reference composition)");
  }
}

// Unrotated queries as the q columns of a fused [n, (hq + 2 hkv) d] projection, rotated inside the
// attention: against float64 (q rotated in float64) and against rope, then attention.
WICK_DEVICE_TEST(PagedAttention, RotatesTheQueriesOfAStridedView) {
  const Geometry g{14, 2, 64, 16, 8};
  const std::vector<int32_t> rows{0, 0, 0, 1, 2}, positions{0, 1, 2, 100, 7};
  const int64_t n = 5, nrows = 3, num_blocks = nrows * g.width + 3, qd = g.hq * g.d;
  std::vector<int32_t> tables = scattered_tables(nrows, g.width, num_blocks);
  Tensor tt = i32(tables, {nrows, g.width}, device()), tr = i32(rows, {n}, device()), tp = i32(positions, {n}, device());
  Tensor inv = here(rope_inv_freq(int(g.d), 1000000.0, Device::cpu()));
  std::vector<float> invf = to_device(inv, Device::cpu()).to_vector<float>();
  for (Dtype dt : {Dtype::F32, Dtype::BF16}) {
    Rand qkv = rand({n, qd + 2 * g.hkv * g.d}, dt), cache = rand({num_blocks, 2, g.hkv, g.bs, g.d}, dt);
    Tensor q = reshape(narrow(qkv.t, 1, 0, qd), {n, g.hq, g.d});
    Values qr(size_t(n * qd));
    const int64_t half = g.d / 2;
    for (int64_t t = 0; t < n; ++t)
      for (int64_t h = 0; h < g.hq; ++h)
        for (int64_t j = 0; j < g.d; ++j) {
          auto qin = [&](int64_t jj) { return qkv.v[size_t(t * (qd + 2 * g.hkv * g.d) + h * g.d + jj)]; };
          double angle = double(float(positions[t]) * invf[size_t(j % half)]);
          qr[size_t((t * g.hq + h) * g.d + j)] = j < half ? qin(j) * std::cos(angle) - qin(j + half) * std::sin(angle)
                                                          : qin(j) * std::cos(angle) + qin(j - half) * std::sin(angle);
        }
    Values want = attention_ref(qr, cache.v, tables, rows, positions, g);
    Tensor got = paged_attention(q, cache.t, tt, tr, tp, g.width * g.bs, std::nullopt, inv);
    std::string what = str_cat("rotated queries ", dtype_name(dt));
    // bf16: q rounded once more after its rotation, as the rope op leaves it.
    expect_close(got, want, {n, g.hq, g.d}, dt == Dtype::F32 ? Tol{2e-5, 1e-4} : scaled(tol_for(dt), 3), what);
    RopeOptions o;
    o.inv_freq = inv;
    std::vector<int64_t> p64(positions.begin(), positions.end());
    Tensor roped = reshape(rope(reshape(contiguous(q), {n, g.hq, 1, g.d}), here(Tensor::from_vector(p64, {n, 1}, Device::cpu())), o),
                           {n, g.hq, g.d});
    expect_close(got, values(paged_attention(roped, cache.t, tt, tr, tp, g.width * g.bs)), {n, g.hq, g.d},
                 dt == Dtype::F32 ? Tol{1e-6, 1e-5} : tol_for(dt), what + " against rope, then attention");
  }
}

WICK_DEVICE_TEST(PagedAttention, KVWriteMatchesFloat64WithAndWithoutRope) {
  int64_t heads = 2, d = 6, bs = 4, width = 3, num_blocks = 8, n = 3;
  std::vector<int32_t> tables = scattered_tables(2, width, num_blocks), rows{0, 1, 1}, positions{5, 0, 11};
  Tensor tt = i32(tables, {2, width}, device()), tr = i32(rows, {n}, device()), tp = i32(positions, {n}, device());
  for (Dtype dt : {Dtype::F32, Dtype::BF16}) {
    // Keys and values as strided views of one [n, 2 * heads * d] projection output, as the step has them.
    Rand kv = rand({n, 2 * heads * d}, dt);
    Tensor k = reshape(narrow(kv.t, 1, 0, heads * d), {n, heads, d});
    Tensor v = reshape(narrow(kv.t, 1, heads * d, heads * d), {n, heads, d});
    Tensor inv = here(rope_inv_freq(int(d), 10000.0, Device::cpu()));
    std::vector<float> invf = to_device(inv, Device::cpu()).to_vector<float>();
    for (bool rope : {false, true}) {
      Rand cache = rand({num_blocks, 2, heads, bs, d}, dt);
      Values want = cache.v;
      for (int64_t t = 0; t < n; ++t) {
        int64_t block = tables[rows[t] * width + positions[t] / bs], slot = positions[t] % bs;
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t j = 0; j < d; ++j) {
            auto kin = [&](int64_t jj) { return kv.v[size_t(t * 2 * heads * d + h * d + jj)]; };
            double key = kin(j);
            if (rope) {  // rotate-half at the token's position; the angle formed in f32 as the rope op does
              int64_t i = j % (d / 2);
              double angle = double(float(positions[t]) * invf[i]);
              key = j < d / 2 ? kin(j) * std::cos(angle) - kin(j + d / 2) * std::sin(angle)
                              : kin(j) * std::cos(angle) + kin(j - d / 2) * std::sin(angle);
            }
            want[size_t((((block * 2 + 0) * heads + h) * bs + slot) * d + j)] = key;
            want[size_t((((block * 2 + 1) * heads + h) * bs + slot) * d + j)] = kv.v[size_t(t * 2 * heads * d + (heads + h) * d + j)];
          }
      }
      Tensor held = cache.t;
      const void* before = cache.t.data_ptr();
      Tensor got = paged_kv_write(std::move(cache.t), k, v, tt, tr, tp, rope ? std::optional<Tensor>(inv) : std::nullopt);
      std::string what = str_cat("paged_kv_write ", dtype_name(dt), rope ? " rope" : "");
      expect_close(got, want, {num_blocks, 2, heads, bs, d}, rope ? scaled(tol_for(dt), 4) : Tol{0, 0}, what);
      // `held` still refers to the cache, so the write went to a copy and the cache is unchanged.
      EXPECT_NE(got.data_ptr(), before) << what;
      expect_close(held, cache.v, {num_blocks, 2, heads, bs, d}, Tol{0, 0}, what + " (the held cache)");
    }
  }
}

WICK_DEVICE_TEST(PagedAttention, AFreeCacheIsWrittenInPlace) {
  std::vector<int32_t> tables{1, 2};
  Tensor cache = zeros({4, 2, 1, 2, 2}, Dtype::F32, device()).eval();
  const void* before = cache.data_ptr();
  Tensor one = ones({1, 1, 2}, Dtype::F32, device());
  Tensor out = paged_kv_write(std::move(cache), one, one, i32(tables, {1, 2}, device()),
                              i32({0}, {1}, device()), i32({3}, {1}, device()));
  EXPECT_EQ(out.data_ptr(), before);
  EXPECT_EQ(sum(out).item<double>(), 4.0);
}

// Argument errors are raised by the op before any kernel, the same on every device; bad indices
// inside the tables are found by the kernels (at once on the CPU, at the next sync on CUDA).
WICK_DEVICE_TEST(PagedAttention, BadPagingIsAnErrorNamingTheValue) {
  Tensor cache = zeros({4, 2, 1, 2, 2}, Dtype::F32, device());
  Tensor tables = i32({1, 9}, {1, 2}, device());  // block 9 does not exist
  Tensor rows = i32({0}, {1}, device()), one = ones({1, 1, 2}, Dtype::F32, device());
  auto expect_error = [](const std::function<void()>& f, const std::string& part) {
    try {
      f();
      FAIL() << "expected an error mentioning " << part;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  auto at = [&](int32_t p) { return i32({p}, {1}, device()); };
  expect_error([&] { paged_attention(ones({1, 3, 2}, Dtype::F32, device()), zeros({4, 2, 2, 2, 2}, Dtype::F32, device()),
                                     tables, rows, at(0), 4); }, "heads");
  expect_error([&] { paged_kv_write(cache, one, one, astype(tables, Dtype::I64), rows, rows); },
               "block_tables must be an i32");
  expect_error([&] { paged_kv_write(zeros({4, 1, 2, 2}, Dtype::F32, device()), one, one, tables, rows, at(0)); },
               "[num_blocks, 2, kv_heads");
  std::string bad_block = on_cuda() ? "paged attention" : "block 9";
  expect_error([&] { paged_kv_write(cache, one, one, tables, rows, at(3)).to_vector<float>(); }, bad_block);
  std::string bad_position = on_cuda() ? "paged attention" : "position 4";
  expect_error([&] { paged_kv_write(cache, one, one, tables, rows, at(4)).to_vector<float>(); }, bad_position);
}

}  // namespace
}  // namespace wick
