// CPU kernels of LayerNorm, RMSNorm and their backward (row-wise, rows split across the thread pool;
// statistics in double).
#include <algorithm>
#include <cmath>

#include "wick/backend/cpu/strided.h"
#include "wick/backend/cpu/thread_pool.h"
#include "wick/core/primitives.h"

namespace wick {

using cpu::cdata;
using cpu::mdata;
using cpu::row_grain;

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

}  // namespace wick
