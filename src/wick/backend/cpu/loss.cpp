// CPU kernels of cross-entropy and its backward (per row; a stable log-sum-exp in double).
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
