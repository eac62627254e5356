// CPU reductions: sums accumulate in double (floats) or int64 (integers); max/min propagate NaN.
#include <algorithm>
#include <cmath>
#include <limits>

#include "wick/backend/cpu/strided.h"
#include "wick/core/primitives.h"

namespace wick {

using cpu::cdata;
using cpu::mdata;

namespace {

// Splits x's dims into kept (outer) and reduced (inner) lists and calls
// f(output_index, first_input_offset) for each output element and g(offset) to walk its inputs.
struct ReduceLayout {
  Shape outer_shape, inner_shape;
  Strides outer_strides, inner_strides;
};

ReduceLayout reduce_layout(const Tensor& x, const std::vector<int>& axes) {
  ReduceLayout l;
  for (int d = 0; d < x.ndim(); ++d) {
    bool reduced = std::find(axes.begin(), axes.end(), d) != axes.end();
    (reduced ? l.inner_shape : l.outer_shape).push_back(x.shape()[d]);
    (reduced ? l.inner_strides : l.outer_strides).push_back(x.strides()[d]);
  }
  return l;
}

// Visits every offset of a multi-dim index space.
template <class F>
void for_each_offset(const Shape& shape, const Strides& strides, int64_t base, F&& f) {
  cpu::for_each_strided<1>(shape, {strides}, [&](int64_t o) { f(base + o); });
}

}  // namespace

void Reduce::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor& x = in[0];
  out.allocate();
  ReduceLayout l = reduce_layout(x, axes_);
  dispatch_all(x.dtype(), [&]<typename T>() {
    using C = compute_t<T>;
    using Acc = std::conditional_t<std::is_floating_point_v<C>, double, int64_t>;
    const T* src = cdata<T>(x);
    T* dst = mdata<T>(out);
    int64_t o = 0;
    for_each_offset(l.outer_shape, l.outer_strides, 0, [&](int64_t base) {
      if (kind_ == ReduceKind::Sum) {
        Acc acc = 0;
        for_each_offset(l.inner_shape, l.inner_strides, base, [&](int64_t i) { acc += Acc(C(src[i])); });
        dst[o++] = T(C(acc));
      } else {
        bool is_max = kind_ == ReduceKind::Max;
        C best = C(src[base]);
        for_each_offset(l.inner_shape, l.inner_strides, base, [&](int64_t i) {
          C v = C(src[i]);
          if constexpr (std::is_floating_point_v<C>) {
            if (std::isnan(v) || std::isnan(best)) {
              best = std::numeric_limits<C>::quiet_NaN();
              return;
            }
          }
          if (is_max ? v > best : v < best) best = v;
        });
        dst[o++] = T(best);
      }
    });
  });
}

void ArgReduce::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor& x = in[0];
  out.allocate();
  ReduceLayout l = reduce_layout(x, {axis_});
  int64_t n = x.shape()[axis_], step = x.strides()[axis_];
  dispatch_all(x.dtype(), [&]<typename T>() {
    using C = compute_t<T>;
    const T* src = cdata<T>(x);
    int64_t* dst = mdata<int64_t>(out);
    int64_t o = 0;
    for_each_offset(l.outer_shape, l.outer_strides, 0, [&](int64_t base) {
      C best = C(src[base]);
      int64_t best_i = 0;
      for (int64_t i = 1; i < n; ++i) {
        C v = C(src[base + i * step]);
        if constexpr (std::is_floating_point_v<C>) {
          if (std::isnan(best)) break;  // the first NaN wins, as in torch
          if (std::isnan(v)) {
            best = v;
            best_i = i;
            break;
          }
        }
        if (is_max_ ? v > best : v < best) {
          best = v;
          best_i = i;
        }
      }
      dst[o++] = best_i;
    });
  });
}

}  // namespace wick
