// CPU kernels of softmax / log-softmax and their backward (row-wise, rows split across the thread
// pool; statistics in double).
#include <algorithm>
#include <cmath>

#include "wick/backend/cpu/strided.h"
#include "wick/backend/cpu/thread_pool.h"
#include "wick/core/primitives.h"

namespace wick {

using cpu::cdata;
using cpu::mdata;
using cpu::row_grain;

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

}  // namespace wick
