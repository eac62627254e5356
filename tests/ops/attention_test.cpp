// scaled_dot_product_attention on every device: grouped heads, bool and additive masks, causal
// masks aligned to the end, rows that see no key, views, and the shapes that select each kernel
// (head dims up to 256, keys past one tile, the tensor-core forward and backward for bf16/f16, on
// the GPU also with tensor cores off), against a float64 loop and the wick::reference composition;
// gradients against finite differences (one element at a time, or along a random direction for
// large inputs) and, in lower precisions, against the float64 gradients of the rounded inputs.
#include <cmath>

#include "support/testing.h"
#if defined(WICK_HAVE_CUDA)
#include "wick/backend/cuda/settings.h"
#endif

namespace wick {
namespace {

using namespace testing;

const Dtype kDtypes[] = {Dtype::F64, Dtype::F32, Dtype::BF16, Dtype::F16};

Values softmax_row(const Values& r) {
  double m = *std::max_element(r.begin(), r.end()), s = 0;
  for (double v : r) s += std::exp(v - m);
  Values out;
  for (double v : r) out.push_back(std::exp(v - m) / s);
  return out;
}

// Attention in double: q[B,Hq,Tq,D], k/v[B,Hkv,Tk,*], mask additive and already broadcast to
// [B,Hq,Tq,Tk] (or empty). A query that sees no key attends to nothing: its output is 0.
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
        bool sees_a_key = std::any_of(s.begin(), s.end(), [](double x) { return x != -INFINITY; });
        Values p = sees_a_key ? softmax_row(s) : Values(Tk, 0.0);
        for (int64_t c = 0; c < Dv; ++c) {
          double acc = 0;
          for (int64_t j = 0; j < Tk; ++j) acc += p[j] * v[((b * Hkv + hk) * Tk + j) * Dv + c];
          out.push_back(acc);
        }
      }
    }
  return out;
}

// A mask tensor as additive float64 values broadcast to [B, Hq, Tq, Tk]; bool: 0 where true, -inf
// where false.
Values full_mask(const Tensor& mask, int64_t B, int64_t Hq, int64_t Tq, int64_t Tk) {
  Values mv = values(mask), out;
  const Shape full{B, Hq, Tq, Tk};
  for (int64_t i = 0; i < numel(full); ++i) {
    double m = mv[ravel_broadcast(unravel(i, full), mask.shape())];
    out.push_back(mask.dtype() == Dtype::Bool ? (m != 0 ? 0.0 : -INFINITY) : m);
  }
  return out;
}

// The kernels each device has: on the GPU, bf16/f16 run on tensor cores where the shapes suit them,
// or on CUDA cores when told so; both are checked.
std::vector<bool> tensor_core_settings(Device device) {
  return device.is_cuda() ? std::vector<bool>{true, false} : std::vector<bool>{true};
}
void use_attention_tensor_cores(bool on) {
#if defined(WICK_HAVE_CUDA)
  cuda::set_attention_tensor_cores(on);
#else
  (void)on;
#endif
}

WICK_DEVICE_SUITE(Attention);

WICK_DEVICE_TEST(Attention, MatchesFloat64) {
  const int64_t B = 2, Hq = 4, Tq = 3, Tk = 5, D = 8, Dv = 6;
  for (Dtype dt : kDtypes)
    for (int64_t Hkv : {4, 2, 1})
      for (int masking = 0; masking < 4; ++masking)
        for (bool causal : {false, true}) {
          Rand q = rand({B, Hq, Tq, D}, dt), k = rand({B, Hkv, Tk, D}, dt), v = rand({B, Hkv, Tk, Dv}, dt);
          std::optional<Tensor> mask;
          if (masking == 1) {  // bool padding mask [B, 1, 1, Tk]; every row keeps its first key
            mask = make({1, 0, 1, 1, 0, 1, 1, 1, 1, 0}, {B, 1, 1, Tk}, Dtype::Bool);
          } else if (masking == 2) {  // additive [1, 1, Tq, Tk]
            mask = make(random_values(Tq * Tk, -1, 1), {1, 1, Tq, Tk}, Dtype::F32);
          } else if (masking == 3) {  // additive padding mask [B, 1, 1, Tk] in q's dtype
            // (the kernels read masks as f32, so an f64 mask is given f32 values)
            Values add = random_values(B * Tk, -2, 0);
            add[3] = -INFINITY;
            mask = make(add, {B, 1, 1, Tk}, dt == Dtype::F64 ? Dtype::F32 : dt);
          }
          Values fm = mask ? full_mask(*mask, B, Hq, Tq, Tk) : Values{};
          double scale = causal ? 0.3 : 1 / std::sqrt(double(D));
          std::optional<double> scale_arg = causal ? std::optional<double>(0.3) : std::nullopt;
          Values ref = attention_ref(q.v, k.v, v.v, fm, B, Hq, Hkv, Tq, Tk, D, Dv, causal, scale);
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

WICK_DEVICE_TEST(Attention, RowsThatSeeNoKey) {
  // Causal with Tq > Tk: the first queries see no key; a padding mask can hide every key too.
  Rand q = rand({2, 2, 4, 3}), k = rand({2, 1, 2, 3}), v = rand({2, 1, 2, 2});
  Tensor mask = make({1, 1, 0, 0}, {2, 1, 1, 2}, Dtype::Bool);
  for (bool causal : {true, false}) {
    std::optional<Tensor> m = causal ? std::nullopt : std::optional<Tensor>(mask);
    Values fm = causal ? Values{} : full_mask(mask, 2, 2, 4, 2);
    Values ref = attention_ref(q.v, k.v, v.v, fm, 2, 2, 1, 4, 2, 3, 2, causal, 1 / std::sqrt(3.0));
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

struct AttnCase {
  int64_t B, Hq, Hkv, Tq, Tk, D, Dv;
  bool causal;
  int mask;  // 0: none, 1: bool [Tq, Tk], 2: additive f32 [B, 1, 1, Tk]
};
const AttnCase kAttn[] = {
    {1, 1, 1, 1, 1, 8, 8, false, 0},
    {2, 4, 2, 7, 7, 16, 16, true, 0},
    {1, 2, 2, 33, 33, 64, 64, true, 0},
    {2, 6, 2, 5, 70, 64, 32, true, 0},
    {1, 2, 1, 40, 40, 128, 128, false, 1},
    {2, 4, 4, 17, 129, 32, 48, false, 2},
    {1, 14, 2, 1, 300, 64, 64, true, 2},
    {1, 2, 2, 65, 65, 256, 256, true, 0},
    // At least 64 queries and head dims that are multiples of 16 up to 128: the GPU's tensor-core
    // forward for bf16/f16.
    {2, 4, 2, 100, 100, 64, 64, true, 0},
    {1, 2, 2, 130, 200, 128, 128, false, 2},
    {1, 2, 1, 64, 64, 32, 48, false, 1},
    {1, 3, 3, 200, 150, 16, 16, true, 0},
};

std::string case_name(const AttnCase& c) {
  return str_cat("B", c.B, " Hq", c.Hq, " Hkv", c.Hkv, " Tq", c.Tq, " Tk", c.Tk, " D", c.D, " Dv", c.Dv, " causal",
                 c.causal, " mask", c.mask);
}

std::optional<Tensor> case_mask(const AttnCase& c, Device device) {
  if (c.mask == 1) return gt(rand({c.Tq, c.Tk}, Dtype::F32, -2, 2, device).t, scalar(-1.0, Dtype::F32, device));
  if (c.mask == 2) return rand({c.B, 1, 1, c.Tk}, Dtype::F32, -2, 2, device).t;
  return std::nullopt;
}

WICK_DEVICE_TEST(Attention, KernelShapes) {
  for (const AttnCase& c : kAttn)
    for (Dtype dt : kDtypes) {
      Rand q = rand({c.B, c.Hq, c.Tq, c.D}, dt), k = rand({c.B, c.Hkv, c.Tk, c.D}, dt),
           v = rand({c.B, c.Hkv, c.Tk, c.Dv}, dt);
      std::optional<Tensor> mask = case_mask(c, device());
      Values fm = mask ? full_mask(*mask, c.B, c.Hq, c.Tq, c.Tk) : Values{};
      Values ref = attention_ref(q.v, k.v, v.v, fm, c.B, c.Hq, c.Hkv, c.Tq, c.Tk, c.D, c.Dv, c.causal,
                                 1 / std::sqrt(double(c.D)));
      Shape so{c.B, c.Hq, c.Tq, c.Dv};
      std::string what = case_name(c) + " " + dtype_name(dt);
      // f32: dot products over head dims up to 256; 16-bit: P is rounded before its product with V.
      Tol tol = dt == Dtype::F64 ? Tol{1e-10, 1e-10} : dt == Dtype::F32 ? Tol{1e-4, 1e-4} : Tol{0.02, 0.02};
      Tol composed = dt == Dtype::BF16 ? Tol{0.1, 0.05} : dt == Dtype::F16 ? Tol{0.03, 0.02} : tol;
      for (bool tensor_cores : tensor_core_settings(device())) {
        use_attention_tensor_cores(tensor_cores);
        std::string at = what + (tensor_cores ? "" : " without tensor cores");
        expect_close(scaled_dot_product_attention(q.t, k.t, v.t, mask, c.causal), ref, so, tol, at);
        expect_close(reference::scaled_dot_product_attention(q.t, k.t, v.t, mask, c.causal, std::nullopt), ref, so,
                     composed, at + " reference");
      }
      use_attention_tensor_cores(true);
    }
}

// A q transposed from a [B, T, H, D] projection (a non-contiguous view), as models produce it.
WICK_DEVICE_TEST(Attention, TransposedProjections) {
  for (Dtype dt : kDtypes) {
    Rand qt = rand({2, 9, 4, 32}, dt), kt = rand({2, 9, 2, 32}, dt), vt = rand({2, 9, 2, 32}, dt);
    auto heads_first = [](const Values& x, int64_t H) {  // [2, 9, H, 32] -> [2, H, 9, 32]
      Values out;
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t t = 0; t < 9; ++t)
            for (int64_t d = 0; d < 32; ++d) out.push_back(x[((b * 9 + t) * H + h) * 32 + d]);
      return out;
    };
    Values ref = attention_ref(heads_first(qt.v, 4), heads_first(kt.v, 2), heads_first(vt.v, 2), {}, 2, 4, 2, 9, 9, 32,
                               32, true, 1 / std::sqrt(32.0));
    Tol tol = dt == Dtype::F64 ? tol_for(dt) : dt == Dtype::F32 ? Tol{1e-5, 1e-5} : Tol{0.02, 0.02};
    expect_close(scaled_dot_product_attention(transpose(qt.t, 1, 2), transpose(kt.t, 1, 2), transpose(vt.t, 1, 2),
                                              std::nullopt, true),
                 ref, {2, 4, 9, 32}, tol, dtype_name(dt));
  }
}

// q, k, v as the model hands them over: heads of one [B, T, Hq + 2 Hkv, D] projection split and
// transposed (read in place by the GPU's tensor-core kernels), and the output's gradient arriving
// as the transposed view of rows. Output and gradients equal those of contiguous copies of every
// operand: bit for bit on the GPU (the same kernels over other addresses), within rounding on the
// CPU (whose kernels may take other paths for dense operands).
WICK_DEVICE_TEST(Attention, StridedOperandsGiveTheSameResults) {
  for (Dtype dt : {Dtype::BF16, Dtype::F16, Dtype::F32})
    for (int64_t d : {64, 128}) {
      const int64_t B = 2, T = 96, Hq = 4, Hkv = 2;
      Tensor qkv = rand({B, T, Hq + 2 * Hkv, d}, dt).t;
      Tensor w = rand({B * T, Hq * d}, dt).t;
      auto loss = [&](bool copies) {
        return [&, copies](const std::vector<Tensor>& in) {
          std::vector<Tensor> parts = split(in[0], {Hq, Hkv, Hkv}, 2);
          Tensor q = transpose(parts[0], 1, 2), k = transpose(parts[1], 1, 2), v = transpose(parts[2], 1, 2);
          if (copies) q = contiguous(q), k = contiguous(k), v = contiguous(v);
          Tensor y = scaled_dot_product_attention(q, k, v, std::nullopt, true);
          if (copies) y = contiguous(y);
          Tensor rows = reshape(transpose(y, 1, 2), {B * T, Hq * d});
          return sum(astype(rows * w, Dtype::F64));
        };
      };
      std::string what = str_cat(dtype_name(dt), " head dim ", d);
      auto [strided_loss, strided] = value_and_grad(loss(false), {qkv});
      auto [copied_loss, copied] = value_and_grad(loss(true), {qkv});
      bool exact = device().is_cuda();
      Tol tol = exact ? Tol{0, 0} : dt == Dtype::F32 ? Tol{1e-5, 1e-5} : Tol{2e-2, 2e-2};
      EXPECT_NEAR(strided_loss.item<double>(), copied_loss.item<double>(),
                  exact ? 0.0 : 1e-4 * std::abs(copied_loss.item<double>()))
          << what;
      expect_close(strided[0], values(copied[0]), qkv.shape(), tol, what);
    }
}

// The backward as a model takes it: q, k, v transposed views of [B, T, H, D] projections and an
// output gradient that is a view too (the output is transposed back), odd sizes, a padding mask,
// GQA; f32 and bf16 against the float64 gradients of the same values.
WICK_DEVICE_TEST(Attention, GradientsOfTransposedProjections) {
  const int64_t B = 2, T = 11, Hq = 6, Hkv = 2, D = 40, Dv = 24;
  Rand qt = rand({B, T, Hq, D}), kt = rand({B, T, Hkv, D}), vt = rand({B, T, Hkv, Dv});
  Tensor w = rand({B, T, Hq, Dv}).t;
  Tensor pad = make({1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, {B, 1, 1, T}, Dtype::Bool);
  for (bool masked : {false, true}) {
    std::optional<Tensor> mask = masked ? std::optional<Tensor>(pad) : std::nullopt;
    auto loss = [&](const std::vector<Tensor>& in) {
      Tensor y = scaled_dot_product_attention(transpose(in[0], 1, 2), transpose(in[1], 1, 2), transpose(in[2], 1, 2),
                                              mask, true);
      return sum(astype(transpose(y, 1, 2), Dtype::F64) * w);
    };
    std::vector<Tensor> want = grad(loss, {qt.t, kt.t, vt.t});
    for (Dtype dt : {Dtype::F32, Dtype::BF16}) {
      std::vector<Tensor> rounded{astype(astype(qt.t, dt), Dtype::F64), astype(astype(kt.t, dt), Dtype::F64),
                                  astype(astype(vt.t, dt), Dtype::F64)};
      if (dt != Dtype::F32) want = grad(loss, rounded);
      std::vector<Tensor> got = grad(loss, {astype(qt.t, dt), astype(kt.t, dt), astype(vt.t, dt)});
      Tol tol = dt == Dtype::F32 ? Tol{1e-5, 1e-4} : Tol{0.05, 0.02};
      const char* names[] = {"dq", "dk", "dv"};
      for (int i = 0; i < 3; ++i)
        expect_close(got[i], values(want[i]), want[i].shape(), tol,
                     str_cat(names[i], " ", dtype_name(dt), masked ? " masked" : ""));
    }
  }
}

WICK_DEVICE_TEST(Attention, Gradients) {
  Rand q = rand({1, 4, 2, 3}), k = rand({1, 2, 4, 3}), v = rand({1, 2, 4, 2});
  Tensor pad = make({1, 1, 0, 1}, {1, 1, 1, 4}, Dtype::Bool);
  for (bool causal : {false, true})
    for (bool masked : {false, true})
      check_grads(
          [&](const std::vector<Tensor>& in) {
            return scaled_dot_product_attention(in[0], in[1], in[2], masked ? std::optional<Tensor>(pad) : std::nullopt,
                                                causal);
          },
          {q.t, k.t, v.t}, str_cat("sdpa causal ", causal, " masked ", masked));
}

// The gradients at the kernel shapes: float64 along random directions against finite differences,
// f32 against the float64 gradients.
WICK_DEVICE_TEST(Attention, GradientsAtKernelShapes) {
  for (const AttnCase& c : kAttn) {
    std::vector<Tensor> in{rand({c.B, c.Hq, c.Tq, c.D}).t, rand({c.B, c.Hkv, c.Tk, c.D}).t,
                           rand({c.B, c.Hkv, c.Tk, c.Dv}).t};
    std::optional<Tensor> mask = case_mask(c, device());
    auto f = [&](const std::vector<Tensor>& x) {
      return scaled_dot_product_attention(x[0], x[1], x[2], mask, c.causal);
    };
    check_directional_grads(f, in, case_name(c));
    check_grads_in(Dtype::F32, f, in, 1e-4, case_name(c));
  }
}

// The bf16/f16 backward (on the GPU tensor cores where the shapes suit: head dim 64 or 128, at least
// 64 queries) against the float64 backward of the same rounded inputs. P and dS are rounded to the
// data type before their matrix products, so the check is on the relative error of each gradient
// as a whole: |g - ref| / |ref|.
WICK_DEVICE_TEST(Attention, HalfPrecisionGradients) {
  struct Case {
    int64_t B, Hq, Hkv, Tq, Tk, D;
    bool causal;
    int mask;
  };
  const Case cases[] = {{2, 14, 2, 128, 128, 64, true, 0},  {1, 4, 2, 100, 100, 64, true, 0},
                        {1, 2, 2, 130, 200, 128, false, 2}, {2, 4, 4, 64, 64, 64, false, 1},
                        {1, 2, 1, 96, 40, 64, true, 0},     {1, 3, 1, 70, 150, 128, true, 2},
                        {1, 2, 2, 40, 40, 64, true, 0}};
  auto rel = [](const Tensor& got, const Tensor& want) {
    Values g = values(got), w = values(want);
    double num = 0, den = 0;
    for (size_t i = 0; i < g.size(); ++i) num += (g[i] - w[i]) * (g[i] - w[i]), den += w[i] * w[i];
    return std::sqrt(num / std::max(den, 1e-30));
  };
  for (const Case& c : cases) {
    AttnCase ac{c.B, c.Hq, c.Hkv, c.Tq, c.Tk, c.D, c.D, c.causal, c.mask};
    std::optional<Tensor> mask = case_mask(ac, device());
    Tensor w = rand({c.B, c.Hq, c.Tq, c.D}).t;
    auto loss = [&](const std::vector<Tensor>& in) {
      Tensor y = scaled_dot_product_attention(in[0], in[1], in[2], mask, c.causal);
      return sum(astype(y, Dtype::F64) * w);
    };
    std::vector<Tensor> x64{rand({c.B, c.Hq, c.Tq, c.D}).t, rand({c.B, c.Hkv, c.Tk, c.D}).t,
                            rand({c.B, c.Hkv, c.Tk, c.D}).t};
    for (Dtype dt : {Dtype::BF16, Dtype::F16}) {
      std::vector<Tensor> xs, rounded;
      for (const Tensor& x : x64) {
        xs.push_back(astype(x, dt));
        rounded.push_back(astype(xs.back(), Dtype::F64));
      }
      auto want = grad(loss, rounded);
      for (bool tensor_cores : tensor_core_settings(device())) {
        use_attention_tensor_cores(tensor_cores);
        auto got = grad(loss, xs);
        double limit = dt == Dtype::BF16 ? 2e-2 : 4e-3;
        const char* names[] = {"dq", "dk", "dv"};
        for (int i = 0; i < 3; ++i)
          EXPECT_LT(rel(got[i], want[i]), limit)
              << names[i] << " " << dtype_name(dt) << " " << case_name(ac) << " tensor cores " << tensor_cores;
        if (mask) continue;
        // The backward node alone, without the logsumexp a traced forward keeps: it runs the
        // forward again and must give the same gradients, up to the order in which the tensor-core
        // backward at head dim 64 adds dq's (and a shared kv head's dk, dv) parts: atomics in f32,
        // so an element may round to the neighbouring bf16/f16 value.
        Tensor out = scaled_dot_product_attention(xs[0], xs[1], xs[2], std::nullopt, c.causal);
        std::vector<Tensor> alone = Tensor::make_siblings(
            {xs[0].shape(), xs[1].shape(), xs[2].shape()}, {dt, dt, dt}, device(),
            std::make_shared<AttentionBackward>(1 / std::sqrt(double(c.D)), c.causal, false),
            {xs[0], xs[1], xs[2], out, astype(w, dt)});
        for (int i = 0; i < 3; ++i)
          EXPECT_LT(rel(alone[i], got[i]), 2e-4)
              << names[i] << " without the kept logsumexp " << dtype_name(dt) << " " << case_name(ac);
      }
      use_attention_tensor_cores(true);
    }
  }
}

WICK_DEVICE_TEST(Attention, GradientsInLowerPrecision) {
  std::vector<Tensor> x64{rand({1, 2, 3, 4}).t, rand({1, 1, 5, 4}).t};
  for (Dtype dt : {Dtype::F32, Dtype::BF16, Dtype::F16})
    check_grads_in(
        dt, [](auto& in) { return scaled_dot_product_attention(in[0], in[1], in[1], std::nullopt, true); }, x64,
        dt == Dtype::F32   ? 1e-5
        : dt == Dtype::F16 ? 1e-2
                           : 5e-2,
        "attention");
}

}  // namespace
}  // namespace wick
