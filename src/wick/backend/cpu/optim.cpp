// CPU kernels of the ops over all parameters: the AdamW step (each tensor's elements split over the
// thread pool) and the cast of many tensors (astype's kernel on each).
#include <cmath>

#include "wick/backend/cpu/strided.h"
#include "wick/backend/cpu/thread_pool.h"
#include "wick/core/primitives.h"

namespace wick {

namespace {
// One tensor's elements [b, e): plain arrays that do not alias, so the loop vectorizes (the file is
// built with -fno-math-errno: sqrt of the non-negative second moment never sets errno).
template <typename T, typename C>
void adamw_range(const T* __restrict p, const T* __restrict g, const T* __restrict m, const T* __restrict v,
                 T* __restrict po, T* __restrict mo, T* __restrict vo, int64_t b, int64_t e, C b1, C b2, C eps,
                 C decay, C rate, C inv_c2) {
  for (int64_t j = b; j < e; ++j) {
    C gj = C(g[j]);
    C mj = b1 * C(m[j]) + (C(1) - b1) * gj;
    C vj = b2 * C(v[j]) + (C(1) - b2) * gj * gj;
    C denom = std::sqrt(vj) * inv_c2 + eps;
    po[j] = T(C(p[j]) * decay - mj / denom * rate);
    mo[j] = T(mj);
    vo[j] = T(vj);
  }
}
}  // namespace

void AdamWUpdate::eval_outputs_cpu(const std::vector<Tensor>& in, const std::vector<Tensor>& out) {
  size_t n = steps_.size();
  const AdamWHyper& h = hyper_;
  dispatch_float(in[0].dtype(), name(), [&]<typename T>() {
    using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
    const C b1 = C(h.beta1), b2 = C(h.beta2), eps = C(h.eps), decay = C(1.0 - h.lr * h.weight_decay);
    for (size_t i = 0; i < n; ++i) {
      Tensor p = cpu::contiguous_copy(in[i]), g = cpu::contiguous_copy(in[n + i]);
      Tensor m = cpu::contiguous_copy(in[2 * n + i]), v = cpu::contiguous_copy(in[3 * n + i]);
      for (size_t k = 0; k < 3; ++k) out[k * n + i].allocate();
      const T *pp = cpu::cdata<T>(p), *pg = cpu::cdata<T>(g), *pm = cpu::cdata<T>(m), *pv = cpu::cdata<T>(v);
      T *op = cpu::mdata<T>(out[i]), *om = cpu::mdata<T>(out[n + i]), *ov = cpu::mdata<T>(out[2 * n + i]);
      const C rate = C(rate_over_c1(i)), inv_c2 = C(inv_sqrt_c2(i));
      cpu::parallel_for(p.numel(), 1 << 14, [&](int64_t b, int64_t e) {
        adamw_range<T, C>(pp, pg, pm, pv, op, om, ov, b, e, b1, b2, eps, decay, rate, inv_c2);
      });
    }
  });
}

void AstypeAll::eval_outputs_cpu(const std::vector<Tensor>& in, const std::vector<Tensor>& out) {
  AsType cast;
  for (size_t i = 0; i < in.size(); ++i) cast.eval_cpu({in[i]}, out[i]);
}

}  // namespace wick
