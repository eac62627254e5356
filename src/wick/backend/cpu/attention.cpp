// CPU kernels of scaled dot-product attention, forward and backward (per query row, rows split
// across the thread pool; scores and probabilities in double).
#include <algorithm>
#include <cmath>
#include <vector>

#include "wick/backend/cpu/strided.h"
#include "wick/backend/cpu/thread_pool.h"
#include "wick/core/primitives.h"

namespace wick {

using cpu::cdata;
using cpu::mdata;
using cpu::row_grain;

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

void AttentionBackward::eval_outputs_cpu(const std::vector<Tensor>& in, const std::vector<Tensor>& outs) {
  Tensor q = cpu::contiguous_copy(in[0]), k = cpu::contiguous_copy(in[1]), v = cpu::contiguous_copy(in[2]);
  size_t at = has_mask_ ? 4 : 3;
  Tensor o = cpu::contiguous_copy(in[at]), dout = cpu::contiguous_copy(in[at + 1]);
  for (const Tensor& out : outs) out.allocate();
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
    const std::vector<double>* parts[] = {&dq, &dk, &dv};
    for (size_t i = 0; i < 3; ++i) {
      T* dst = mdata<T>(outs[i]);
      for (double val : *parts[i]) *dst++ = T(compute_t<T>(val));
    }
  });
}

}  // namespace wick
