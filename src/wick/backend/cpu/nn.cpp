// CPU kernels of the fused neural-network primitives (row-wise, rows split across the thread pool;
// statistics in double).
#include <algorithm>
#include <cmath>
#include <limits>

#include "wick/backend/cpu/strided.h"
#include "wick/backend/cpu/thread_pool.h"
#include "wick/core/primitives.h"

namespace wick {

using cpu::cdata;
using cpu::mdata;

namespace {

// Rows per range of the thread pool for kernels doing a few operations per value of a row of
// `width` values: about 4096 values of work per range.
int64_t row_grain(int64_t width) { return std::max<int64_t>(1, 4096 / std::max<int64_t>(width, 1)); }

}  // namespace

void Softmax::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor x = cpu::contiguous_copy(in[0]);
  out.allocate();
  int64_t cols = x.ndim() ? x.shape(-1) : 1, rows = cols ? x.numel() / cols : 0;
  dispatch_float(x.dtype(), name(), [&]<typename T>() {
    const T* px = cdata<T>(x);
    T* po = mdata<T>(out);
    cpu::parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* row = px + r * cols;
        double m = -INFINITY;
        for (int64_t j = 0; j < cols; ++j) m = std::max(m, double(row[j]));
        if (std::isinf(m) && m < 0) m = 0;  // an all -inf row stays -inf / NaN as in torch
        double s = 0;
        for (int64_t j = 0; j < cols; ++j) s += std::exp(double(row[j]) - m);
        double lse = std::log(s);
        for (int64_t j = 0; j < cols; ++j) {
          double v = double(row[j]) - m;
          po[r * cols + j] = T(compute_t<T>(log_ ? v - lse : std::exp(v) / s));
        }
      }
    });
  });
}

void LayerNorm::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor x = cpu::contiguous_copy(in[0]);
  Tensor w = has_weight_ ? cpu::contiguous_copy(in[1]) : Tensor();
  Tensor b = has_bias_ ? cpu::contiguous_copy(in[has_weight_ ? 2 : 1]) : Tensor();
  out.allocate();
  int64_t h = x.shape(-1), rows = h ? x.numel() / h : 0;
  dispatch_float(x.dtype(), name(), [&]<typename T>() {
    const T* px = cdata<T>(x);
    const T* pw = has_weight_ ? cdata<T>(w) : nullptr;
    const T* pb = has_bias_ ? cdata<T>(b) : nullptr;
    T* po = mdata<T>(out);
    cpu::parallel_for(rows, row_grain(h), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* row = px + r * h;
        double mu = 0, var = 0;
        for (int64_t j = 0; j < h; ++j) mu += double(row[j]);
        mu /= double(h);
        for (int64_t j = 0; j < h; ++j) var += (double(row[j]) - mu) * (double(row[j]) - mu);
        double rstd = 1.0 / std::sqrt(var / double(h) + eps_);
        for (int64_t j = 0; j < h; ++j) {
          double y = (double(row[j]) - mu) * rstd;
          if (pw) y *= double(pw[j]);
          if (pb) y += double(pb[j]);
          po[r * h + j] = T(compute_t<T>(y));
        }
      }
    });
  });
}

void RMSNorm::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor x = cpu::contiguous_copy(in[0]);
  Tensor w = cpu::contiguous_copy(in[1]);
  out.allocate();
  int64_t h = x.shape(-1), rows = h ? x.numel() / h : 0;
  dispatch_float(x.dtype(), name(), [&]<typename T>() {
    const T* px = cdata<T>(x);
    const T* pw = cdata<T>(w);
    T* po = mdata<T>(out);
    cpu::parallel_for(rows, row_grain(h), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* row = px + r * h;
        double ss = 0;
        for (int64_t j = 0; j < h; ++j) ss += double(row[j]) * double(row[j]);
        double rs = 1.0 / std::sqrt(ss / double(h) + eps_);
        for (int64_t j = 0; j < h; ++j) po[r * h + j] = T(compute_t<T>(double(row[j]) * rs * double(pw[j])));
      }
    });
  });
}

void NormBackward::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor x = cpu::contiguous_copy(in[0]);
  Tensor w = has_weight_ ? cpu::contiguous_copy(in[1]) : Tensor();
  Tensor g = cpu::contiguous_copy(in[has_weight_ ? 2 : 1]);
  out.allocate();
  int64_t h = x.shape(-1), rows = h ? x.numel() / h : 0;
  dispatch_float(x.dtype(), name(), [&]<typename T>() {
    const T *px = cdata<T>(x), *pg = cdata<T>(g), *pw = has_weight_ ? cdata<T>(w) : nullptr;
    T* po = mdata<T>(out);
    cpu::parallel_for(rows, row_grain(h), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T *xr = px + r * h, *gr = pg + r * h;
        double mean = 0, ss = 0;
        if (!rms_) {
          for (int64_t j = 0; j < h; ++j) mean += double(xr[j]);
          mean /= double(h);
        }
        for (int64_t j = 0; j < h; ++j) ss += (double(xr[j]) - mean) * (double(xr[j]) - mean);
        double rstd = 1.0 / std::sqrt(ss / double(h) + eps_);
        // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)); RMSNorm has no mean terms.
        double sum_d = 0, sum_dx = 0;
        for (int64_t j = 0; j < h; ++j) {
          double d = double(gr[j]) * (pw ? double(pw[j]) : 1.0);
          sum_d += d;
          sum_dx += d * (double(xr[j]) - mean) * rstd;
        }
        double mean_d = rms_ ? 0.0 : sum_d / double(h), mean_dx = sum_dx / double(h);
        for (int64_t j = 0; j < h; ++j) {
          double d = double(gr[j]) * (pw ? double(pw[j]) : 1.0);
          double xhat = (double(xr[j]) - mean) * rstd;
          po[r * h + j] = T(compute_t<T>(rstd * (d - mean_d - xhat * mean_dx)));
        }
      }
    });
  });
}

void SoftmaxBackward::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor y = cpu::contiguous_copy(in[0]);
  Tensor g = cpu::contiguous_copy(in[1]);
  out.allocate();
  int64_t cols = y.ndim() ? y.shape(-1) : 1, rows = cols ? y.numel() / cols : 0;
  dispatch_float(y.dtype(), name(), [&]<typename T>() {
    const T *py = cdata<T>(y), *pg = cdata<T>(g);
    T* po = mdata<T>(out);
    cpu::parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T *yr = py + r * cols, *gr = pg + r * cols;
        double dot = 0;
        for (int64_t j = 0; j < cols; ++j) dot += double(gr[j]) * (log_ ? 1.0 : double(yr[j]));
        for (int64_t j = 0; j < cols; ++j) {
          double yv = double(yr[j]), gv = double(gr[j]);
          po[r * cols + j] = T(compute_t<T>(log_ ? gv - std::exp(yv) * dot : yv * (gv - dot)));
        }
      }
    });
  });
}

void RoPE::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor x = cpu::contiguous_copy(in[0]);
  const Tensor& pos = in[1];  // contiguous i64 [B, T] (made so by the op)
  const Tensor& inv = in[2];  // contiguous f32 [rotary_dim / 2]
  out.allocate();
  int64_t B = x.shape(0), H = x.shape(1), T_ = x.shape(2), D = x.shape(3), half = rotary_dim_ / 2;
  const int64_t* pp = cdata<int64_t>(pos);
  const float* pf = cdata<float>(inv);
  dispatch_float(x.dtype(), name(), [&]<typename T>() {
    using C = compute_t<T>;
    const T* px = cdata<T>(x);
    T* po = mdata<T>(out);
    std::vector<C> cs(half), sn(half);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T_; ++t) {
        for (int64_t i = 0; i < half; ++i) {
          // The angle is formed in f32 (as HF does) unless the data itself is f64.
          C angle = std::is_same_v<C, double> ? C(double(pp[b * T_ + t]) * double(pf[i]))
                                              : C(float(pp[b * T_ + t]) * pf[i]);
          cs[i] = std::cos(angle);
          sn[i] = inverse_ ? -std::sin(angle) : std::sin(angle);
        }
        for (int64_t h = 0; h < H; ++h) {
          const T* src = px + ((b * H + h) * T_ + t) * D;
          T* dst = po + ((b * H + h) * T_ + t) * D;
          for (int64_t i = 0; i < half; ++i) {
            int64_t i1 = interleaved_ ? 2 * i : i, i2 = interleaved_ ? 2 * i + 1 : i + half;
            C x1 = C(src[i1]), x2 = C(src[i2]);
            dst[i1] = T(x1 * cs[i] - x2 * sn[i]);
            dst[i2] = T(x2 * cs[i] + x1 * sn[i]);
          }
          for (int64_t i = rotary_dim_; i < D; ++i) dst[i] = src[i];
        }
      }
  });
}

namespace {

// Shared shape bookkeeping of the attention kernels.
struct AttnDims {
  int64_t B, Hq, Hkv, Tq, Tk, D, Dv, group;
};
AttnDims attn_dims(const Tensor& q, const Tensor& k, const Tensor& v) {
  return {q.shape(0), q.shape(1), k.shape(1), q.shape(2), k.shape(2), q.shape(3), v.shape(3), q.shape(1) / k.shape(1)};
}

// Softmax probabilities of one query row (p has Tk entries); returns false if every key is masked.
template <typename T>
void attention_probs(const AttnDims& d, const T* qrow, const T* kh, const float* mrow, int64_t mstride, bool causal,
                     double scale, int64_t i, std::vector<double>& p) {
  double m = -INFINITY;
  for (int64_t j = 0; j < d.Tk; ++j) {
    double s = -INFINITY;
    if (!causal || j <= i + (d.Tk - d.Tq)) {
      double dot = 0;
      for (int64_t c = 0; c < d.D; ++c) dot += double(qrow[c]) * double(kh[j * d.D + c]);
      s = dot * scale + (mrow ? double(mrow[j * mstride]) : 0.0);
    }
    p[j] = s;
    m = std::max(m, s);
  }
  double sum = 0;
  for (int64_t j = 0; j < d.Tk; ++j) {
    p[j] = std::isinf(m) ? 0.0 : std::exp(p[j] - m);
    sum += p[j];
  }
  for (int64_t j = 0; j < d.Tk; ++j) p[j] = sum > 0 ? p[j] / sum : 0.0;
}

}  // namespace

void Attention::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor q = cpu::contiguous_copy(in[0]), k = cpu::contiguous_copy(in[1]), v = cpu::contiguous_copy(in[2]);
  out.allocate();
  AttnDims d = attn_dims(q, k, v);
  const float* pm = has_mask_ ? cdata<float>(in[3]) : nullptr;
  Strides ms = has_mask_ ? in[3].strides() : Strides(4, 0);
  dispatch_float(q.dtype(), name(), [&]<typename T>() {
    const T *pq = cdata<T>(q), *pk = cdata<T>(k), *pv = cdata<T>(v);
    T* po = mdata<T>(out);
    // Rows (b, h, i) are independent: split across the thread pool.
    cpu::parallel_for(d.B * d.Hq * d.Tq, row_grain(d.Tk * (d.D + d.Dv)), [&](int64_t r0, int64_t r1) {
      std::vector<double> p(d.Tk), acc(d.Dv);
      for (int64_t r = r0; r < r1; ++r) {
        int64_t b = r / (d.Hq * d.Tq), h = r / d.Tq % d.Hq, i = r % d.Tq;
        int64_t hk = h / d.group;
        const T* kh = pk + (b * d.Hkv + hk) * d.Tk * d.D;
        const T* vh = pv + (b * d.Hkv + hk) * d.Tk * d.Dv;
        const float* mrow = pm ? pm + b * ms[0] + h * ms[1] + i * ms[2] : nullptr;
        attention_probs(d, pq + ((b * d.Hq + h) * d.Tq + i) * d.D, kh, mrow, ms[3], causal_, scale_, i, p);
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = 0; j < d.Tk; ++j)
          if (p[j] != 0)
            for (int64_t c = 0; c < d.Dv; ++c) acc[c] += p[j] * double(vh[j * d.Dv + c]);
        T* orow = po + ((b * d.Hq + h) * d.Tq + i) * d.Dv;
        for (int64_t c = 0; c < d.Dv; ++c) orow[c] = T(compute_t<T>(acc[c]));
      }
    });
  });
}

void AttentionBackward::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor q = cpu::contiguous_copy(in[0]), k = cpu::contiguous_copy(in[1]), v = cpu::contiguous_copy(in[2]);
  size_t at = has_mask_ ? 4 : 3;
  Tensor o = cpu::contiguous_copy(in[at]), dout = cpu::contiguous_copy(in[at + 1]);
  out.allocate();
  AttnDims d = attn_dims(q, k, v);
  const float* pm = has_mask_ ? cdata<float>(in[3]) : nullptr;
  Strides ms = has_mask_ ? in[3].strides() : Strides(4, 0);
  dispatch_float(q.dtype(), name(), [&]<typename T>() {
    const T *pq = cdata<T>(q), *pk = cdata<T>(k), *pv = cdata<T>(v), *po = cdata<T>(o), *pg = cdata<T>(dout);
    std::vector<double> dq(q.numel(), 0.0), dk(k.numel(), 0.0), dv(v.numel(), 0.0);
    std::vector<double> p(d.Tk), dp(d.Tk);
    for (int64_t b = 0; b < d.B; ++b)
      for (int64_t h = 0; h < d.Hq; ++h) {
        int64_t hk = h / d.group;
        int64_t kbase = (b * d.Hkv + hk) * d.Tk;
        for (int64_t i = 0; i < d.Tq; ++i) {
          int64_t qi = (b * d.Hq + h) * d.Tq + i;
          const float* mrow = pm ? pm + b * ms[0] + h * ms[1] + i * ms[2] : nullptr;
          attention_probs(d, pq + qi * d.D, pk + kbase * d.D, mrow, ms[3], causal_, scale_, i, p);
          // delta = sum_c dO[c] * O[c] = sum_j p_j dp_j
          double delta = 0;
          for (int64_t c = 0; c < d.Dv; ++c) delta += double(pg[qi * d.Dv + c]) * double(po[qi * d.Dv + c]);
          for (int64_t j = 0; j < d.Tk; ++j) {
            if (p[j] == 0) continue;
            double dpj = 0;
            for (int64_t c = 0; c < d.Dv; ++c) {
              dpj += double(pg[qi * d.Dv + c]) * double(pv[(kbase + j) * d.Dv + c]);
              dv[(kbase + j) * d.Dv + c] += p[j] * double(pg[qi * d.Dv + c]);
            }
            double ds = p[j] * (dpj - delta) * scale_;
            for (int64_t c = 0; c < d.D; ++c) {
              dq[qi * d.D + c] += ds * double(pk[(kbase + j) * d.D + c]);
              dk[(kbase + j) * d.D + c] += ds * double(pq[qi * d.D + c]);
            }
          }
        }
      }
    T* dst = mdata<T>(out);
    size_t at2 = 0;
    for (const auto* part : {&dq, &dk, &dv})
      for (double val : *part) dst[at2++] = T(compute_t<T>(val));
  });
}

namespace {
// The maximum of a row and the sum of exp(x - maximum): a stable log-sum-exp is log(sum) + max.
template <typename T>
std::pair<double, double> max_and_sum_exp(const T* row, int64_t v) {
  double m = -INFINITY, s = 0;
  for (int64_t j = 0; j < v; ++j) m = std::max(m, double(row[j]));
  for (int64_t j = 0; j < v; ++j) s += std::exp(double(row[j]) - m);
  return {m, s};
}
}  // namespace

void CrossEntropy::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor logits = cpu::contiguous_copy(in[0]);
  Tensor targets = cpu::contiguous_copy(in[1]);
  out.allocate();
  int64_t n = logits.shape(0), v = logits.shape(1);
  float* po = mdata<float>(out);
  dispatch_index(targets.dtype(), name(), [&]<typename I>() {
    const I* pt = cdata<I>(targets);
    dispatch_float(logits.dtype(), name(), [&]<typename T>() {
      const T* pl = cdata<T>(logits);
      for (int64_t r = 0; r < n; ++r) {
        int64_t t = pt[r];
        if (t == ignore_index_) {
          po[r] = 0;
          continue;
        }
        WICK_CHECK(t >= 0 && t < v, "cross_entropy: target ", t, " is out of range for ", v, " classes");
        const T* row = pl + r * v;
        auto [m, s] = max_and_sum_exp(row, v);
        po[r] = float(std::log(s) + m - double(row[t]));
      }
    });
  });
}

void CrossEntropyBackward::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor logits = cpu::contiguous_copy(in[0]);
  Tensor targets = cpu::contiguous_copy(in[1]);
  Tensor dloss = cpu::contiguous_copy(in[2]);
  out.allocate();
  int64_t n = logits.shape(0), v = logits.shape(1);
  const float* pg = cdata<float>(dloss);
  dispatch_index(targets.dtype(), name(), [&]<typename I>() {
    const I* pt = cdata<I>(targets);
    dispatch_float(logits.dtype(), name(), [&]<typename T>() {
      const T* pl = cdata<T>(logits);
      T* po = mdata<T>(out);
      for (int64_t r = 0; r < n; ++r) {
        int64_t t = pt[r];
        T* orow = po + r * v;
        if (t == ignore_index_) {
          for (int64_t j = 0; j < v; ++j) orow[j] = T(compute_t<T>(0));
          continue;
        }
        WICK_CHECK(t >= 0 && t < v, "cross_entropy: target ", t, " is out of range for ", v, " classes");
        const T* row = pl + r * v;
        auto [m, s] = max_and_sum_exp(row, v);
        for (int64_t j = 0; j < v; ++j) {
          double pj = std::exp(double(row[j]) - m) / s - (j == t ? 1.0 : 0.0);
          orow[j] = T(compute_t<T>(pj * double(pg[r])));
        }
      }
    });
  });
}

}  // namespace wick
