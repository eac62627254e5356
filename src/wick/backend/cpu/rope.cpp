// CPU kernel of rotary position embeddings (and of their inverse, the vjp).
#include <cmath>

#include "wick/backend/cpu/strided.h"
#include "wick/backend/cpu/thread_pool.h"
#include "wick/core/primitives.h"

namespace wick {

using cpu::cdata;
using cpu::mdata;

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

}  // namespace wick
