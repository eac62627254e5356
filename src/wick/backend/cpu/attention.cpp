// CPU kernels of scaled dot-product attention, forward and backward. Math in the compute type
// (double for f64, else f32). Each task holds one head's keys transposed ([D, Tk]) so that a query's
// scores, like every other step, are weighted sums of contiguous rows that the compiler vectorises
// (16 sums held in registers while the rows stream past) instead of short dot products; tasks are
// split across the thread pool: the forward per query head and block of queries, the backward per
// kv head (its query heads and all their rows), so each task owns the rows of dk and dv it adds into.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "wick/backend/cpu/strided.h"
#include "wick/backend/cpu/thread_pool.h"
#include "wick/backend/cpu/vec_math.h"
#include "wick/core/primitives.h"

namespace wick {

using cpu::cdata;
using cpu::mdata;

namespace {

// Shared shape bookkeeping of the attention kernels.
struct AttnDims {
  int64_t B, Hq, Hkv, Tq, Tk, D, Dv, group;
};
AttnDims attn_dims(const Tensor& q, const Tensor& k, const Tensor& v) {
  return {q.shape(0), q.shape(1), k.shape(1), q.shape(2), k.shape(2), q.shape(3), v.shape(3), q.shape(1) / k.shape(1)};
}

// The tensor itself when its last dim is contiguous (rows are read through the other strides),
// else a contiguous copy.
Tensor rows_readable(const Tensor& t) { return t.shape(-1) <= 1 || t.strides()[3] == 1 ? t : cpu::contiguous_copy(t); }

// A [B, H, T, C] tensor whose rows are contiguous: row (b, h, t) starts at b*s0 + h*s1 + t*s2.
template <typename T>
struct Rows {
  const T* p;
  int64_t s0, s1, s2;
  explicit Rows(const Tensor& t) : p(cdata<T>(t)), s0(t.strides()[0]), s1(t.strides()[1]), s2(t.strides()[2]) {}
  const T* row(int64_t b, int64_t h, int64_t t) const { return p + b * s0 + h * s1 + t * s2; }
};

template <typename T>
using acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

// dst[0, n) += a * src[0, n)
template <typename A>
inline void axpy(int64_t n, A a, const A* __restrict src, A* __restrict dst) {
  for (int64_t j = 0; j < n; ++j) dst[j] += a * src[j];
}

// y[0, width) = sum over r < count of w[r] * rows[r * ld, r * ld + width): 16 columns at a time,
// their sums held in registers while the rows stream past. Scores (the keys transposed, weighted
// by the query), outputs (values weighted by probabilities) and dq (keys weighted by ds) are all
// of this form.
template <typename A>
void weighted_rows(int64_t count, const A* __restrict w, const A* __restrict rows, int64_t ld, int64_t width,
                   A* __restrict y) {
  constexpr int64_t L = 16;
  int64_t c0 = 0;
  for (; c0 + L <= width; c0 += L) {
    A acc[L] = {};
    for (int64_t r = 0; r < count; ++r) {
      const A wr = w[r];
      const A* row = rows + r * ld + c0;
      for (int64_t l = 0; l < L; ++l) acc[l] += wr * row[l];
    }
    for (int64_t l = 0; l < L; ++l) y[c0 + l] = acc[l];
  }
  if (c0 == width) return;
  const int64_t rest = width - c0;
  A acc[L] = {};
  for (int64_t r = 0; r < count; ++r) {
    const A wr = w[r];
    const A* row = rows + r * ld + c0;
    for (int64_t l = 0; l < rest; ++l) acc[l] += wr * row[l];
  }
  for (int64_t l = 0; l < rest; ++l) y[c0 + l] = acc[l];
}

// e^x for x <= 0 (a score minus the row's maximum); exactly 0 below -87, where f32's vectorised exp
// stops, and for masked keys (-inf).
template <typename A>
inline A exp_nonpositive(A x) {
  if constexpr (std::is_same_v<A, float>) {
    float e = cpu::exp_f32(x < -87.0f ? -87.0f : x);
    return x < -87.0f ? 0.0f : e;
  } else {
    return std::exp(x);
  }
}

// Keys [0, n) of one kv head: transposed into kt [D, n] (row stride ld), and optionally as rows k [n, D],
// both in the compute type.
template <typename T, typename A>
void load_keys(const Rows<T>& src, int64_t b, int64_t h, int64_t n, int64_t D, int64_t ld, A* kt, A* k) {
  for (int64_t j = 0; j < n; ++j) {
    const T* r = src.row(b, h, j);
    for (int64_t c = 0; c < D; ++c) kt[c * ld + j] = A(compute_t<T>(r[c]));
    if (k)
      for (int64_t c = 0; c < D; ++c) k[j * D + c] = A(compute_t<T>(r[c]));
  }
}

// Softmax probabilities of one query row over keys [0, n) (later keys are causally hidden):
// p[j] = softmax(scale * q . k_j + mask_j), all 0 when every key is masked. `q` is in the compute type.
template <typename A>
void row_probs(const A* q, const A* kt, int64_t ld, int64_t D, int64_t n, const float* mrow, int64_t mstride,
               A scale, A* p) {
  weighted_rows(D, q, kt, ld, n, p);
  A m = -INFINITY;
  for (int64_t j = 0; j < n; ++j) {
    p[j] = p[j] * scale + (mrow ? A(mrow[j * mstride]) : A(0));
    m = std::max(m, p[j]);
  }
  if (std::isinf(m) && m < 0) {
    std::fill(p, p + n, A(0));
    return;
  }
  A sum = 0;
  for (int64_t j = 0; j < n; ++j) {
    p[j] = exp_nonpositive(p[j] - m);
    sum += p[j];
  }
  A inv = A(1) / sum;
  for (int64_t j = 0; j < n; ++j) p[j] *= inv;
}

// Keys query i may see: all, or under the causal mask those up to i + (Tk - Tq).
int64_t visible_keys(const AttnDims& d, bool causal, int64_t i) {
  return causal ? std::clamp<int64_t>(i + (d.Tk - d.Tq) + 1, 0, d.Tk) : d.Tk;
}

constexpr int64_t kQueryBlock = 64;  // query rows per task of the forward

}  // namespace

void Attention::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor q = rows_readable(in[0]), k = rows_readable(in[1]), v = rows_readable(in[2]);
  out.allocate();
  AttnDims d = attn_dims(q, k, v);
  const float* pm = has_mask_ ? cdata<float>(in[3]) : nullptr;
  Strides ms = has_mask_ ? in[3].strides() : Strides(4, 0);
  dispatch_float(q.dtype(), name(), [&]<typename T>() {
    using A = acc_t<T>;
    Rows<T> rq(q), rk(k), rv(v);
    T* po = mdata<T>(out);
    int64_t blocks = (d.Tq + kQueryBlock - 1) / kQueryBlock;
    // Tasks (b, h, block of queries); a task of few rows still pays for loading the keys, so the
    // grain asks for about a block's worth of work per range.
    int64_t per_task = std::min(d.Tq, kQueryBlock) * d.Tk * (d.D + d.Dv);
    int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(per_task, 1));
    cpu::parallel_for(d.B * d.Hq * blocks, grain, [&](int64_t t0, int64_t t1) {
      std::vector<A> kt(size_t(d.D * d.Tk)), vr(size_t(d.Tk * d.Dv)), p(size_t(d.Tk)), qa(size_t(d.D)),
          acc(size_t(d.Dv));
      for (int64_t t = t0; t < t1; ++t) {
        int64_t b = t / (d.Hq * blocks), h = t / blocks % d.Hq, i0 = t % blocks * kQueryBlock;
        int64_t i1 = std::min(d.Tq, i0 + kQueryBlock), hk = h / d.group;
        int64_t n = visible_keys(d, causal_, i1 - 1);
        load_keys<T, A>(rk, b, hk, n, d.D, d.Tk, kt.data(), nullptr);
        for (int64_t j = 0; j < n; ++j) {
          const T* r = rv.row(b, hk, j);
          for (int64_t c = 0; c < d.Dv; ++c) vr[j * d.Dv + c] = A(compute_t<T>(r[c]));
        }
        for (int64_t i = i0; i < i1; ++i) {
          int64_t ni = visible_keys(d, causal_, i);
          const T* qr = rq.row(b, h, i);
          for (int64_t c = 0; c < d.D; ++c) qa[c] = A(compute_t<T>(qr[c]));
          const float* mrow = pm ? pm + b * ms[0] + h * ms[1] + i * ms[2] : nullptr;
          row_probs(qa.data(), kt.data(), d.Tk, d.D, ni, mrow, ms[3], A(scale_), p.data());
          weighted_rows(ni, p.data(), vr.data(), d.Dv, d.Dv, acc.data());
          T* orow = po + ((b * d.Hq + h) * d.Tq + i) * d.Dv;
          for (int64_t c = 0; c < d.Dv; ++c) orow[c] = T(compute_t<T>(acc[c]));
        }
      }
    });
  });
}

// Per query row i (probabilities p recomputed): dp_j = dO . v_j; delta = sum_j p_j dp_j (which is
// dO . O, but taken from the same dp, so that sum_j ds_j stays 0 in f32: a row over one key gets
// exactly no dq); ds_j = p_j (dp_j - delta) scale; dq = sum_j ds_j k_j; dk_j += ds_j q; dv_j += p_j dO.
void AttentionBackward::eval_outputs_cpu(const std::vector<Tensor>& in, const std::vector<Tensor>& outs) {
  Tensor q = rows_readable(in[0]), k = rows_readable(in[1]), v = rows_readable(in[2]);
  size_t at = has_mask_ ? 4 : 3;
  Tensor dout = rows_readable(in[at + 1]);
  for (const Tensor& out : outs) out.allocate();
  AttnDims d = attn_dims(q, k, v);
  const float* pm = has_mask_ ? cdata<float>(in[3]) : nullptr;
  Strides ms = has_mask_ ? in[3].strides() : Strides(4, 0);
  dispatch_float(q.dtype(), name(), [&]<typename T>() {
    using A = acc_t<T>;
    Rows<T> rq(q), rk(k), rv(v), rg(dout);
    T *pdq = mdata<T>(outs[0]), *pdk = mdata<T>(outs[1]), *pdv = mdata<T>(outs[2]);
    cpu::parallel_for(d.B * d.Hkv, 1, [&](int64_t t0, int64_t t1) {
      std::vector<A> kt(size_t(d.D * d.Tk)), kr(size_t(d.Tk * d.D)), vt(size_t(d.Dv * d.Tk)), dk(size_t(d.Tk * d.D)),
          dv(size_t(d.Tk * d.Dv)), p(size_t(d.Tk)), dp(size_t(d.Tk)), ds(size_t(d.Tk)), qa(size_t(d.D)),
          ga(size_t(d.Dv)), dq(size_t(d.D));
      for (int64_t t = t0; t < t1; ++t) {
        int64_t b = t / d.Hkv, hk = t % d.Hkv;
        int64_t n = visible_keys(d, causal_, d.Tq - 1);
        load_keys<T, A>(rk, b, hk, n, d.D, d.Tk, kt.data(), kr.data());
        for (int64_t j = 0; j < n; ++j) {
          const T* r = rv.row(b, hk, j);
          for (int64_t c = 0; c < d.Dv; ++c) vt[c * d.Tk + j] = A(compute_t<T>(r[c]));
        }
        std::fill(dk.begin(), dk.end(), A(0));
        std::fill(dv.begin(), dv.end(), A(0));
        for (int64_t h = hk * d.group; h < (hk + 1) * d.group; ++h)
          for (int64_t i = 0; i < d.Tq; ++i) {
            int64_t ni = visible_keys(d, causal_, i);
            const T *qr = rq.row(b, h, i), *gr = rg.row(b, h, i);
            for (int64_t c = 0; c < d.D; ++c) qa[c] = A(compute_t<T>(qr[c]));
            for (int64_t c = 0; c < d.Dv; ++c) ga[c] = A(compute_t<T>(gr[c]));
            const float* mrow = pm ? pm + b * ms[0] + h * ms[1] + i * ms[2] : nullptr;
            row_probs(qa.data(), kt.data(), d.Tk, d.D, ni, mrow, ms[3], A(scale_), p.data());
            weighted_rows(d.Dv, ga.data(), vt.data(), d.Tk, ni, dp.data());
            A delta = 0;
            for (int64_t j = 0; j < ni; ++j) delta += p[j] * dp[j];
            for (int64_t j = 0; j < ni; ++j) ds[j] = p[j] * (dp[j] - delta) * A(scale_);
            weighted_rows(ni, ds.data(), kr.data(), d.D, d.D, dq.data());
            for (int64_t j = 0; j < ni; ++j) {
              if (p[j] == 0) continue;
              axpy(d.D, ds[j], qa.data(), dk.data() + j * d.D);
              axpy(d.Dv, p[j], ga.data(), dv.data() + j * d.Dv);
            }
            T* dqr = pdq + ((b * d.Hq + h) * d.Tq + i) * d.D;
            for (int64_t c = 0; c < d.D; ++c) dqr[c] = T(compute_t<T>(dq[c]));
          }
        T* dkr = pdk + (b * d.Hkv + hk) * d.Tk * d.D;
        T* dvr = pdv + (b * d.Hkv + hk) * d.Tk * d.Dv;
        for (int64_t i = 0; i < d.Tk * d.D; ++i) dkr[i] = T(compute_t<T>(dk[i]));
        for (int64_t i = 0; i < d.Tk * d.Dv; ++i) dvr[i] = T(compute_t<T>(dv[i]));
      }
    });
  });
}

}  // namespace wick
