// Fused neural-network ops (softmax, norms, rope, swiglu, attention, cross-entropy) against
// float64 loops written from the standard formulas, against their wick::reference compositions,
// and their gradients against finite differences.
#include <cmath>

#include "testing.h"

namespace wick {
namespace {

using namespace testing;

const Dtype kDtypes[] = {Dtype::F64, Dtype::F32, Dtype::BF16, Dtype::F16};

// Applies f to every row along `dim` of x (row-major `shape`), writing the row results in place.
template <class F>
Values rowwise(const Values& x, const Shape& shape, int dim, F f) {
  int nd = int(shape.size());
  dim = dim < 0 ? dim + nd : dim;
  int64_t n = shape[dim], inner = 1;
  for (int d = dim + 1; d < nd; ++d) inner *= shape[d];
  int64_t outer = numel(shape) / std::max<int64_t>(n * inner, 1);
  Values out(x.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < inner; ++j) {
      Values row(n);
      for (int64_t i = 0; i < n; ++i) row[i] = x[(o * n + i) * inner + j];
      Values r = f(row);
      for (int64_t i = 0; i < n; ++i) out[(o * n + i) * inner + j] = r[i];
    }
  return out;
}

Values softmax_row(const Values& r, bool log) {
  double m = *std::max_element(r.begin(), r.end()), s = 0;
  for (double v : r) s += std::exp(v - m);
  Values out;
  for (double v : r) out.push_back(log ? v - m - std::log(s) : std::exp(v - m) / s);
  return out;
}

TEST(NN, SoftmaxAnyDim) {
  const Shape shape{3, 4, 5};
  for (Dtype dt : kDtypes)
    for (int dim : {0, 1, 2, -1})
      for (bool log : {false, true}) {
        Rand x = rand(shape, dt, -4, 4);
        Values ref = rowwise(x.v, shape, dim, [&](const Values& r) { return softmax_row(r, log); });
        std::string what = str_cat(log ? "log_softmax " : "softmax ", dtype_name(dt), " dim ", dim);
        auto op = log ? static_cast<Tensor (*)(const Tensor&, int)>(log_softmax) : softmax;
        auto ref_op = log ? reference::log_softmax : reference::softmax;
        Tensor y = op(x.t, dim);
        EXPECT_EQ(y.dtype(), dt);
        expect_close(y, ref, shape, what);
        expect_close(op(noncontiguous(x.v, shape, dt), dim), ref, shape, what + " of a view");
        Tol composed = dt == Dtype::F64 || dt == Dtype::F32 ? tol_for(dt) : Tol{0.05, 0.03};
        expect_close(ref_op(x.t, dim), ref, shape, composed, what + " reference composition");
      }
  // Large and -inf logits.
  Tensor x = Tensor::from_vector(std::vector<float>{1000, 1001, -INFINITY, 0}, {1, 4});
  double e = std::exp(-1.0);
  expect_close(softmax(x), {e / (1 + e + std::exp(-1001.0)), 1 / (1 + e), 0, std::exp(-1001.0)}, {1, 4});
  expect_close(log_softmax(x), {-1 - std::log1p(e), -std::log1p(e), -INFINITY, -1001 - std::log1p(e)}, {1, 4});
}

Values layer_norm_row(const Values& r, const Values* w, const Values* b, double eps, bool rms) {
  double n = double(r.size()), mu = 0, var = 0;
  if (!rms)
    for (double v : r) mu += v / n;
  for (double v : r) var += (v - mu) * (v - mu) / n;
  Values out;
  for (size_t j = 0; j < r.size(); ++j)
    out.push_back((r[j] - mu) / std::sqrt(var + eps) * (w ? (*w)[j] : 1) + (b ? (*b)[j] : 0));
  return out;
}

TEST(NN, LayerNormAndRMSNorm) {
  const Shape shape{2, 3, 33};
  for (Dtype dt : kDtypes)
    for (int variant = 0; variant < 4; ++variant) {
      bool has_w = variant & 1, has_b = variant & 2;
      Rand x = rand(shape, dt, -3, 5), w = rand({33}, dt), b = rand({33}, dt);
      Values ref = rowwise(x.v, shape, -1, [&](const Values& r) {
        return layer_norm_row(r, has_w ? &w.v : nullptr, has_b ? &b.v : nullptr, 1e-5, false);
      });
      std::optional<Tensor> ow = has_w ? std::optional<Tensor>(w.t) : std::nullopt;
      std::optional<Tensor> ob = has_b ? std::optional<Tensor>(b.t) : std::nullopt;
      std::string what = str_cat("layer_norm ", dtype_name(dt), has_w ? " weight" : "", has_b ? " bias" : "");
      // Rounding x*w+b once in 16 bits makes |err| scale with the largest term, not the result.
      Tol tol = dt == Dtype::BF16 ? Tol{0.05, 0.02} : dt == Dtype::F16 ? Tol{0.01, 0.01} : tol_for(dt);
      expect_close(layer_norm(x.t, ow, ob), ref, shape, tol, what);
      expect_close(layer_norm(noncontiguous(x.v, shape, dt, 1), ow, ob), ref, shape, tol, what + " of a view");
      if (dt == Dtype::F64 || dt == Dtype::F32)
        expect_close(reference::layer_norm(x.t, ow, ob, 1e-5), ref, shape, tol_for(dt), what + " reference");
    }
  for (Dtype dt : kDtypes) {
    Rand x = rand(shape, dt), w = rand({33}, dt);
    Values ref = rowwise(x.v, shape, -1, [&](const Values& r) { return layer_norm_row(r, &w.v, nullptr, 1e-6, true); });
    Tol tol = dt == Dtype::BF16 ? Tol{0.05, 0.02} : dt == Dtype::F16 ? Tol{0.01, 0.01} : tol_for(dt);
    std::string what = str_cat("rms_norm ", dtype_name(dt));
    expect_close(rms_norm(x.t, w.t), ref, shape, tol, what);
    expect_close(rms_norm(noncontiguous(x.v, shape, dt), w.t), ref, shape, tol, what + " of a view");
    if (dt == Dtype::F64 || dt == Dtype::F32)
      expect_close(reference::rms_norm(x.t, w.t, 1e-6), ref, shape, tol_for(dt), what + " reference");
  }
}

// Standard rotary embedding of x[B, H, T, D] with positions pos[b][t], in double. inv_freq is
// rounded to f32, as every implementation (and wick) stores it.
Values rope_ref(const Values& x, const Shape& s, const std::vector<std::vector<int64_t>>& pos, int rd, double theta,
                bool interleaved) {
  int64_t B = s[0], H = s[1], T = s[2], D = s[3], half = rd / 2;
  Values out = x;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t) {
        const double* src = &x[((b * H + h) * T + t) * D];
        double* dst = &out[((b * H + h) * T + t) * D];
        for (int64_t i = 0; i < half; ++i) {
          double inv = double(float(1.0 / std::pow(theta, double(2 * i) / rd)));
          double a = double(pos[pos.size() == 1 ? 0 : b][t]) * inv;
          int64_t i1 = interleaved ? 2 * i : i, i2 = interleaved ? 2 * i + 1 : i + half;
          dst[i1] = src[i1] * std::cos(a) - src[i2] * std::sin(a);
          dst[i2] = src[i2] * std::cos(a) + src[i1] * std::sin(a);
        }
      }
  return out;
}

TEST(NN, Rope) {
  const Shape shape{2, 3, 5, 8};
  for (Dtype dt : kDtypes)
    for (bool interleaved : {false, true})
      for (int rd : {8, 4})
        for (int variant = 0; variant < 3; ++variant) {
          Rand x = rand(shape, dt);
          RopeOptions opt;
          opt.interleaved = interleaved;
          opt.rotary_dim = rd == 8 ? -1 : rd;
          opt.theta = 500.0;
          std::vector<std::vector<int64_t>> pos;
          Tensor y;
          std::string what = str_cat("rope ", dtype_name(dt), interleaved ? " interleaved" : " neox", " rd ", rd);
          if (variant == 0) {  // an offset
            pos = {{7, 8, 9, 10, 11}};
            y = rope(x.t, 7, opt);
            what += " offset";
          } else if (variant == 1) {  // [T] positions
            pos = {{0, 3, 1, 4, 15}};
            y = rope(x.t, Tensor::from_vector(pos[0], {5}), opt);
            what += " [T]";
          } else {  // [B, T] positions, i32
            pos = {{2, 3, 4, 5, 6}, {0, 0, 1, 9, 2}};
            std::vector<int32_t> flat;
            for (auto& r : pos) flat.insert(flat.end(), r.begin(), r.end());
            y = rope(noncontiguous(x.v, shape, dt), Tensor::from_vector(flat, {2, 5}), opt);
            what += " [B,T] of a view";
          }
          Values ref = rope_ref(x.v, shape, pos, rd, 500.0, interleaved);
          Tol tol = dt == Dtype::F32 ? Tol{1e-5, 1e-5} : dt == Dtype::F64 ? tol_for(dt) : Tol{0.02, 0.02};
          expect_close(y, ref, shape, tol, what);
          if (variant == 1 && (dt == Dtype::F64 || dt == Dtype::F32))
            expect_close(reference::rope(x.t, Tensor::from_vector(pos[0], {5}), opt), ref, shape, {1e-5, 1e-5},
                         what + " reference");
        }
}

TEST(NN, RopeInvFreq) {
  Values ref;
  for (int i = 0; i < 4; ++i) ref.push_back(std::pow(500000.0, -2.0 * i / 8));
  Tensor f = rope_inv_freq(8, 500000.0);
  EXPECT_EQ(f.dtype(), Dtype::F32);
  expect_close(f, ref, {4}, "rope_inv_freq");
  expect_error([] { rope_inv_freq(7, 10000.0); }, {"rope: rotary_dim must be positive and even, got 7"});
}

TEST(NN, SwiGLU) {
  for (Dtype dt : kDtypes) {
    Rand g = rand({3, 7}, dt, -5, 5), u = rand({3, 7}, dt);
    Values ref;
    for (size_t i = 0; i < g.v.size(); ++i) ref.push_back(g.v[i] / (1 + std::exp(-g.v[i])) * u.v[i]);
    std::string what = str_cat("swiglu ", dtype_name(dt));
    expect_close(swiglu(g.t, u.t), ref, {3, 7}, what);
    expect_close(swiglu(noncontiguous(g.v, {3, 7}, dt), noncontiguous(u.v, {3, 7}, dt, 1)), ref, {3, 7},
                 what + " views");
    Tol tol = dt == Dtype::F64 || dt == Dtype::F32 ? tol_for(dt) : Tol{0.03, 0.02};
    expect_close(reference::swiglu(g.t, u.t), ref, {3, 7}, tol, what + " reference");
  }
}

// Attention in double: q[B,Hq,Tq,D], k/v[B,Hkv,Tk,*], mask additive (already broadcast, may be empty).
Values attention_ref(const Values& q, const Values& k, const Values& v, const Values& mask, int64_t B, int64_t Hq,
                     int64_t Hkv, int64_t Tq, int64_t Tk, int64_t D, int64_t Dv, bool causal, double scale) {
  Values out;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      int64_t hk = h / (Hq / Hkv);
      for (int64_t i = 0; i < Tq; ++i) {
        Values s(Tk);
        for (int64_t j = 0; j < Tk; ++j) {
          double dot = 0;
          for (int64_t c = 0; c < D; ++c)
            dot += q[((b * Hq + h) * Tq + i) * D + c] * k[((b * Hkv + hk) * Tk + j) * D + c];
          s[j] = dot * scale + (mask.empty() ? 0 : mask[((b * Hq + h) * Tq + i) * Tk + j]);
          if (causal && j > i + (Tk - Tq)) s[j] = -INFINITY;
        }
        Values p = softmax_row(s, false);
        for (int64_t c = 0; c < Dv; ++c) {
          double acc = 0;
          for (int64_t j = 0; j < Tk; ++j) acc += p[j] * v[((b * Hkv + hk) * Tk + j) * Dv + c];
          out.push_back(acc);
        }
      }
    }
  return out;
}

TEST(NN, ScaledDotProductAttention) {
  const int64_t B = 2, Hq = 4, Tq = 3, Tk = 5, D = 8, Dv = 6;
  for (Dtype dt : kDtypes)
    for (int64_t Hkv : {4, 2, 1})
      for (int masking = 0; masking < 4; ++masking)
        for (bool causal : {false, true}) {
          Rand q = rand({B, Hq, Tq, D}, dt), k = rand({B, Hkv, Tk, D}, dt), v = rand({B, Hkv, Tk, Dv}, dt);
          Values full_mask;
          std::optional<Tensor> mask;
          if (masking == 1) {  // bool padding mask [B, 1, 1, Tk]; every row keeps its first key
            std::vector<bool> keep = {true, false, true, true, false, true, true, true, true, false};
            mask = Tensor::from_vector(keep, {B, 1, 1, Tk});
            for (int64_t b = 0; b < B; ++b)
              for (int64_t r = 0; r < Hq * Tq; ++r)
                for (int64_t j = 0; j < Tk; ++j) full_mask.push_back(keep[b * Tk + j] ? 0.0 : -INFINITY);
          } else if (masking == 2) {  // additive [1, 1, Tq, Tk]
            Values add = random_values(Tq * Tk, -1, 1);
            mask = make(add, {1, 1, Tq, Tk}, Dtype::F32);
            add = values(*mask);
            for (int64_t r = 0; r < B * Hq; ++r) full_mask.insert(full_mask.end(), add.begin(), add.end());
          } else if (masking == 3) {  // additive padding mask [B, 1, 1, Tk] in q's dtype
            // (the kernels read masks as f32, so an f64 mask is given f32 values)
            Values add = random_values(B * Tk, -2, 0);
            add[3] = -INFINITY;
            mask = make(add, {B, 1, 1, Tk}, dt == Dtype::F64 ? Dtype::F32 : dt);
            add = values(*mask);
            for (int64_t b = 0; b < B; ++b)
              for (int64_t r = 0; r < Hq * Tq; ++r)
                full_mask.insert(full_mask.end(), add.begin() + b * Tk, add.begin() + (b + 1) * Tk);
          }
          double scale = causal ? 0.3 : 1 / std::sqrt(double(D));
          std::optional<double> scale_arg = causal ? std::optional<double>(0.3) : std::nullopt;
          Values ref = attention_ref(q.v, k.v, v.v, full_mask, B, Hq, Hkv, Tq, Tk, D, Dv, causal, scale);
          Shape so{B, Hq, Tq, Dv};
          std::string what = str_cat("sdpa ", dtype_name(dt), " Hkv ", Hkv, " mask ", masking, causal ? " causal" : "");
          Tol tol = dt == Dtype::F64 || dt == Dtype::F32 ? tol_for(dt) : Tol{0.02, 0.02};
          expect_close(scaled_dot_product_attention(q.t, k.t, v.t, mask, causal, scale_arg), ref, so, tol, what);
          expect_close(scaled_dot_product_attention(noncontiguous(q.v, q.t.shape(), dt), k.t,
                                                    noncontiguous(v.v, v.t.shape(), dt, 1), mask, causal, scale_arg),
                       ref, so, tol, what + " of views");
          if (dt == Dtype::F64 || dt == Dtype::F32)
            expect_close(reference::scaled_dot_product_attention(q.t, k.t, v.t, mask, causal, scale_arg), ref, so, tol,
                         what + " reference");
        }
}

TEST(NN, AttentionRowsThatSeeNoKey) {
  // Causal with Tq > Tk: the first queries see no key; a padding mask can hide every key too.
  Rand q = rand({2, 2, 4, 3}), k = rand({2, 1, 2, 3}), v = rand({2, 1, 2, 2});
  Tensor mask = Tensor::from_vector(std::vector<bool>{true, true, false, false}, {2, 1, 1, 2});
  for (bool causal : {true, false}) {
    std::optional<Tensor> m = causal ? std::nullopt : std::optional<Tensor>(mask);
    Values full_mask;
    if (!causal)
      for (int b = 0; b < 2; ++b)
        for (int r = 0; r < 8; ++r)
          for (int j = 0; j < 2; ++j) full_mask.push_back(b == 0 ? 0.0 : -INFINITY);
    Values ref = attention_ref(q.v, k.v, v.v, full_mask, 2, 2, 1, 4, 2, 3, 2, causal, 1 / std::sqrt(3.0));
    for (double& x : ref)
      if (std::isnan(x)) x = 0;  // no key seen: nothing attended
    std::string what = causal ? "causal Tq > Tk" : "all keys masked";
    expect_close(scaled_dot_product_attention(q.t, k.t, v.t, m, causal), ref, {2, 2, 4, 2}, what);
    expect_close(reference::scaled_dot_product_attention(q.t, k.t, v.t, m, causal, std::nullopt), ref, {2, 2, 4, 2},
                 what + " reference");
    check_grads(
        [&](const std::vector<Tensor>& in) { return scaled_dot_product_attention(in[0], in[1], in[2], m, causal); },
        {q.t, k.t, v.t}, what + " gradients");
    check_grads(
        [&](const std::vector<Tensor>& in) {
          return reference::scaled_dot_product_attention(in[0], in[1], in[2], m, causal, std::nullopt);
        },
        {q.t, k.t, v.t}, what + " reference gradients");
  }
}

TEST(NN, CrossEntropy) {
  const int64_t V = 7;
  for (Dtype dt : kDtypes)
    for (Reduction red : {Reduction::None, Reduction::Mean, Reduction::Sum})
      for (Dtype it : {Dtype::I32, Dtype::I64}) {
        Rand logits = rand({2, 3, V}, dt, -3, 3);
        std::vector<int64_t> t = {0, 6, -100, 3, 3, -100};
        Values losses;
        double total = 0, count = 0;
        for (int r = 0; r < 6; ++r) {
          if (t[r] == -100) {
            losses.push_back(0);
            continue;
          }
          Values row(logits.v.begin() + r * V, logits.v.begin() + (r + 1) * V);
          double m = *std::max_element(row.begin(), row.end()), s = 0;
          for (double x : row) s += std::exp(x - m);
          losses.push_back(std::log(s) + m - row[t[r]]);
          total += losses.back();
          count += 1;
        }
        Tensor targets = astype(Tensor::from_vector(t, {2, 3}), it);
        std::string what = str_cat("cross_entropy ", dtype_name(dt), " reduction ", int(red));
        // The loss is computed in f32 whatever the logits' dtype.
        Tol tol = {1e-5, 1e-5};
        Tensor y = cross_entropy(logits.t, targets, -100, red);
        if (red == Reduction::None)
          expect_close(y, losses, {2, 3}, tol, what);
        else
          expect_close(y, {red == Reduction::Sum ? total : total / count}, {}, tol, what);
        Tensor yv = cross_entropy(noncontiguous(logits.v, {2, 3, V}, dt, 1), targets, -100, red);
        expect_close(yv, values(y), y.shape(), tol, what + " of a view");
        Tol ref_tol = dt == Dtype::F64 || dt == Dtype::F32 ? Tol{1e-5, 1e-5} : Tol{0.05, 0.02};
        expect_close(reference::cross_entropy(logits.t, targets, -100, red), values(y), y.shape(), ref_tol,
                     what + " reference");
      }
  // Custom inverse frequencies (e.g. Llama 3 scaling) replace theta.
  {
    Rand x = rand({1, 2, 3, 4});
    RopeOptions opt;
    opt.inv_freq = Tensor::from_vector(std::vector<float>{0.5f, 0.125f}, {2});
    Values ref = x.v;
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t t = 0; t < 3; ++t)
        for (int i = 0; i < 2; ++i) {
          double a = double(t + 5) * (i == 0 ? 0.5 : 0.125);
          double* row = &ref[(h * 3 + t) * 4];
          const double* src = &x.v[(h * 3 + t) * 4];
          row[i] = src[i] * std::cos(a) - src[i + 2] * std::sin(a);
          row[i + 2] = src[i + 2] * std::cos(a) + src[i] * std::sin(a);
        }
    expect_close(rope(x.t, 5, opt), ref, {1, 2, 3, 4}, "rope with inv_freq");
  }
  // 1-D logits with a 0-dim target.
  {
    Tensor l = Tensor::from_vector(std::vector<double>{0.5, -1, 2}, {3});
    double lse = std::log(std::exp(0.5) + std::exp(-1.0) + std::exp(2.0));
    expect_close(cross_entropy(l, Tensor::from_vector(std::vector<int64_t>{1}, {}), -100, Reduction::None), {lse + 1},
                 {}, {1e-6, 1e-6}, "1-D logits");
  }
  // Another ignore_index.
  Rand lg = rand({4, 3});
  Tensor tg = Tensor::from_vector(std::vector<int64_t>{1, 2, 2, 0}, {4});
  Tensor y = cross_entropy(lg.t, tg, 2, Reduction::Mean);
  double a = std::log(std::exp(lg.v[0]) + std::exp(lg.v[1]) + std::exp(lg.v[2])) - lg.v[1];
  double b = std::log(std::exp(lg.v[9]) + std::exp(lg.v[10]) + std::exp(lg.v[11])) - lg.v[9];
  expect_close(y, {(a + b) / 2}, {}, {1e-5, 1e-5}, "ignore_index 2");
}

TEST(NN, Gradients) {
  Rand x = rand({2, 3, 5});
  for (int dim : {0, 1, -1}) {
    check_grads([&](const std::vector<Tensor>& in) { return softmax(in[0], dim); }, {x.t}, str_cat("softmax ", dim));
    check_grads([&](const std::vector<Tensor>& in) { return log_softmax(in[0], dim); }, {x.t},
                str_cat("log_softmax ", dim));
  }
  Rand w = rand({5}), b = rand({5});
  check_grads([](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2]); }, {x.t, w.t, b.t},
              "layer_norm");
  check_grads([](const std::vector<Tensor>& in) { return layer_norm(in[0], std::nullopt, std::nullopt); }, {x.t},
              "layer_norm without affine");
  check_grads([](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], std::nullopt); }, {x.t, w.t},
              "layer_norm weight only");
  check_grads([](const std::vector<Tensor>& in) { return layer_norm(in[0], std::nullopt, in[1]); }, {x.t, b.t},
              "layer_norm bias only");
  check_grads([](const std::vector<Tensor>& in) { return rms_norm(in[0], in[1]); }, {x.t, w.t}, "rms_norm");
  check_grads([](const std::vector<Tensor>& in) { return swiglu(in[0], in[1]); }, {x.t, rand({2, 3, 5}).t}, "swiglu");
  Rand r = rand({1, 2, 3, 6});
  for (bool inter : {false, true}) {
    RopeOptions opt;
    opt.interleaved = inter;
    opt.rotary_dim = 4;
    check_grads([&](const std::vector<Tensor>& in) { return rope(in[0], 3, opt); }, {r.t}, "rope");
  }
  Rand q = rand({1, 4, 2, 3}), k = rand({1, 2, 4, 3}), v = rand({1, 2, 4, 2});
  Tensor pad = Tensor::from_vector(std::vector<bool>{true, true, false, true}, {1, 1, 1, 4});
  for (bool causal : {false, true})
    for (bool masked : {false, true})
      check_grads(
          [&](const std::vector<Tensor>& in) {
            return scaled_dot_product_attention(in[0], in[1], in[2], masked ? std::optional<Tensor>(pad) : std::nullopt,
                                                causal);
          },
          {q.t, k.t, v.t}, str_cat("sdpa causal ", causal, " masked ", masked));
  // cross_entropy computes its loss in f32: finite differences in f32 need a larger step and a
  // looser tolerance; the analytic float64 gradient softmax - onehot is checked tightly.
  std::vector<int64_t> tv = {4, -100, 0, 2, 1, 1};
  Tensor targets = Tensor::from_vector(tv, {2, 3});
  for (Reduction red : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
    check_grads([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], targets, -100, red); }, {x.t},
                str_cat("cross_entropy ", int(red)), Tol{2e-3, 2e-2}, 1e-3);
    Values w = random_values(red == Reduction::None ? 6 : 1);
    Shape ws = red == Reduction::None ? Shape{2, 3} : Shape{};
    auto g =
        grad([&](const std::vector<Tensor>& in) { return sum(cross_entropy(in[0], targets, -100, red) * make(w, ws)); },
             {x.t});
    Values ref(30, 0.0);
    for (int r = 0; r < 6; ++r) {
      if (tv[r] == -100) continue;
      Values p = softmax_row(Values(x.v.begin() + r * 5, x.v.begin() + r * 5 + 5), false);
      double c = red == Reduction::None ? w[r] : red == Reduction::Sum ? w[0] : w[0] / 5;
      for (int j = 0; j < 5; ++j) ref[r * 5 + j] = c * (p[j] - (j == tv[r]));
    }
    expect_close(g[0], ref, {2, 3, 5}, Tol{1e-7, 1e-5}, str_cat("cross_entropy analytic gradient ", int(red)));
    check_grads([&](const std::vector<Tensor>& in) { return reference::cross_entropy(in[0], targets, -100, red); },
                {x.t}, str_cat("reference cross_entropy ", int(red)));
  }
}

}  // namespace
}  // namespace wick
