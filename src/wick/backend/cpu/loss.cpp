// CPU kernels of cross-entropy and its backward (per row; a stable log-sum-exp in double), and of the
// linear cross-entropy in chunks of rows.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "wick/backend/cpu/gemm.h"
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


namespace {

void gemm(bool tb, int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c) {
  cpu::gemm(false, tb, m, n, k, a, k, b, tb ? k : n, c, n);
}
void gemm(bool tb, int64_t m, int64_t n, int64_t k, const double* a, const double* b, double* c) {
  cpu::gemm(false, tb, m, n, k, a, k, b, tb ? k : n, c, n);
}

// A row-major copy of a contiguous tensor in A (f32 for 16-bit floats), or its own data when it is
// already of type A.
template <typename A>
const A* as_acc(const Tensor& t, std::vector<A>& copy) {
  if (t.dtype() == dtype_of<A>::value) return cdata<A>(t);
  copy.resize(size_t(t.numel()));
  dispatch_float(t.dtype(), "linear_cross_entropy", [&]<typename T>() {
    const T* p = cdata<T>(t);
    for (int64_t i = 0; i < t.numel(); ++i) copy[i] = A(p[i]);
  });
  return copy.data();
}

// The chunked loop in A (double for f64, else float) over the rows that have a target (`target`
// holds -1 for ignored rows: their loss and gradient are 0, and they take no part in the
// products): each chunk's rows are gathered, multiplied by the head and scattered back.
template <typename A>
void linear_xent(const A* px, const A* pw, const std::vector<int64_t>& target, int64_t n, int64_t d, int64_t v,
                 int64_t rows, float* loss, A* dx) {
  std::vector<int64_t> kept;
  for (int64_t r = 0; r < n; ++r) {
    if (target[r] >= 0) kept.push_back(r);
    loss[r] = 0.0f;
  }
  int64_t nk = int64_t(kept.size());
  if (nk == 0 || v == 0) return;
  std::vector<A> logits(size_t(std::min(rows, nk) * v)), xc(size_t(std::min(rows, nk) * d)), dxc;
  if (dx) dxc.resize(xc.size());
  for (int64_t r0 = 0; r0 < nk; r0 += rows) {
    int64_t len = std::min(rows, nk - r0);
    for (int64_t i = 0; i < len; ++i) std::copy_n(px + kept[r0 + i] * d, d, xc.data() + i * d);
    gemm(true, len, v, d, xc.data(), pw, logits.data());
    cpu::parallel_for(len, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        A* row = logits.data() + i * v;
        int64_t t = target[kept[r0 + i]];
        A m = -INFINITY;
        for (int64_t j = 0; j < v; ++j) m = std::max(m, row[j]);
        double s = 0;
        for (int64_t j = 0; j < v; ++j) s += std::exp(double(row[j] - m));
        loss[kept[r0 + i]] = float(std::log(s) + double(m) - double(row[t]));
        if (!dx) continue;
        A inv = A(1.0 / s);
        for (int64_t j = 0; j < v; ++j) row[j] = std::exp(row[j] - m) * inv;
        row[t] -= A(1);
      }
    });
    if (!dx) continue;
    gemm(false, len, d, v, logits.data(), pw, dxc.data());
    for (int64_t i = 0; i < len; ++i) std::copy_n(dxc.data() + i * d, d, dx + kept[r0 + i] * d);
  }
}

}  // namespace

// A chunk of the rows that have a target at a time: logits = x_c @ weight^T (cpu::gemm; 16-bit
// floats widened to f32), each row's loss and, when the gradient is kept, the row turned in place
// into softmax - onehot, then dx_c = that @ weight; ignored rows cost nothing.
void LinearCrossEntropy::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor x = cpu::contiguous_copy(in[0]);
  Tensor weight = cpu::contiguous_copy(in[1]);
  Tensor targets = cpu::contiguous_copy(in[2]);
  out.allocate();
  int64_t n = x.shape(0), d = x.shape(1), v = weight.shape(0);
  std::vector<int64_t> target(static_cast<size_t>(n));
  dispatch_index(targets.dtype(), name(), [&]<typename I>() {
    const I* pt = cdata<I>(targets);
    for (int64_t r = 0; r < n; ++r) {
      int64_t t = pt[r];
      WICK_CHECK(t == ignore_index_ || (t >= 0 && t < v), "linear_cross_entropy: target ", t,
                 " is out of range for ", v, " classes");
      target[r] = t == ignore_index_ ? -1 : t;
    }
  });
  auto run = [&]<typename A>() {
    std::vector<A> xc, wc, dx;
    if (keep_grad_) dx.assign(size_t(n * d), A(0));
    linear_xent<A>(as_acc<A>(x, xc), as_acc<A>(weight, wc), target, n, d, v,
                   chunk_rows(n, v, int64_t(sizeof(A)), int64_t(64) << 20), mdata<float>(out),
                   keep_grad_ ? dx.data() : nullptr);
    if (!keep_grad_) return;
    dx_unit_ = Tensor::empty({n, d}, x.dtype(), out.device());
    dispatch_float(x.dtype(), name(), [&]<typename T>() {
      T* p = mdata<T>(dx_unit_);
      for (int64_t i = 0; i < n * d; ++i) p[i] = T(compute_t<T>(dx[i]));
    });
  };
  if (x.dtype() == Dtype::F64)
    run.template operator()<double>();
  else
    run.template operator()<float>();
}

}  // namespace wick
