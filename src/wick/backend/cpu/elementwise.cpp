// CPU kernels of the elementwise primitives, fills and random draws; large tensors are split across
// the thread pool.
#include <cmath>
#include <cstdint>

#include "wick/backend/cpu/strided.h"
#include "wick/backend/cpu/vec_math.h"
#include "wick/core/primitives.h"
#include "wick/core/random_bits.h"

namespace wick {

using cpu::cdata;
using cpu::parallel_for_each_strided;
using cpu::mdata;

namespace {

template <typename D, typename S>
D convert(S s) {
  if constexpr (std::is_same_v<D, bool>) {
    return static_cast<compute_t<S>>(s) != compute_t<S>(0);
  } else if constexpr (std::is_same_v<S, bool>) {
    return D(compute_t<D>(s ? 1 : 0));
  } else {
    return D(static_cast<compute_t<D>>(static_cast<compute_t<S>>(s)));
  }
}

// GELU (erf form) of contiguous f32 values, in a loop without calls that the compiler vectorises
// (one copy per instruction set, chosen when the program loads). With z = |x| / sqrt(2):
// erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z / 2), P the Chebyshev fit of Numerical Recipes'
// erfcc (relative error below 1.2e-7 for every z); exp as 2^k times Cephes' expf polynomial on
// [-ln 2 / 2, ln 2 / 2] (vec_math.h); then 1 + erf(x / sqrt 2) is 2 - erfc(z) for x >= 0 and
// erfc(z) for x < 0, so the result keeps a relative error of a few 1e-7 on both sides (libm's erff is a call per value).
__attribute__((target_clones("avx512f", "avx2,fma", "default"))) void gelu_erf_f32(const float* __restrict x,
                                                                                  float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i];
    float z = std::fabs(v) * 0.70710678118654752f;
    float t = 1.0f / (1.0f + 0.5f * z);
    float p = -0.82215223f + t * 0.17087277f;
    p = 1.48851587f + t * p;
    p = -1.13520398f + t * p;
    p = 0.27886807f + t * p;
    p = -0.18628806f + t * p;
    p = 0.09678418f + t * p;
    p = 0.37409196f + t * p;
    p = 1.00002368f + t * p;
    p = -1.26551223f + t * p;
    float e = p - z * z;
    e = e < -87.0f ? -87.0f : e;  // 2^k stays a normal float; erfc is then far below f32's resolution of 2
    float erfc = t * cpu::exp_f32(e);
    y[i] = 0.5f * v * (v >= 0.0f ? 2.0f - erfc : erfc);
  }
}

}  // namespace

template <class Fn>
void Unary<Fn>::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor& x = in[0];
  out.allocate();
  if constexpr (std::is_same_v<Fn, fn::GeluErf>) {
    if (x.dtype() == Dtype::F32 && x.is_contiguous()) {
      const float* src = cdata<float>(x);
      float* dst = mdata<float>(out);
      cpu::parallel_for(x.numel(), 1 << 14, [&](int64_t b, int64_t e) { gelu_erf_f32(src + b, dst + b, e - b); });
      return;
    }
  }
  dispatch_all(x.dtype(), [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      fail(Fn::name, ": not defined for bool tensors");
    } else {
      const T* src = cdata<T>(x);
      T* dst = mdata<T>(out);
      parallel_for_each_strided<2>(out.shape(), {out.strides(), x.strides()}, [&](int64_t o, int64_t i) {
        dst[o] = T(static_cast<compute_t<T>>(Fn{}(static_cast<compute_t<T>>(src[i]))));
      });
    }
  });
}

template <class Fn>
void Binary<Fn>::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor &a = in[0], &b = in[1];
  out.allocate();
  dispatch_all(a.dtype(), [&]<typename T>() {
    using C = compute_t<T>;
    using R = decltype(Fn{}(C(), C()));
    const T* pa = cdata<T>(a);
    const T* pb = cdata<T>(b);
    if constexpr (std::is_same_v<R, bool>) {
      bool* dst = mdata<bool>(out);
      parallel_for_each_strided<3>(out.shape(), {out.strides(), a.strides(), b.strides()},
                          [&](int64_t o, int64_t i, int64_t j) { dst[o] = Fn{}(C(pa[i]), C(pb[j])); });
    } else if constexpr (std::is_same_v<T, bool>) {
      fail(Fn::name, ": not defined for bool tensors");
    } else {
      T* dst = mdata<T>(out);
      parallel_for_each_strided<3>(out.shape(), {out.strides(), a.strides(), b.strides()},
                          [&](int64_t o, int64_t i, int64_t j) { dst[o] = T(C(Fn{}(C(pa[i]), C(pb[j])))); });
    }
  });
}

#define WICK_INSTANTIATE(F) template void Unary<fn::F>::eval_cpu(const std::vector<Tensor>&, const Tensor&);
WICK_UNARY_FNS(WICK_INSTANTIATE)
#undef WICK_INSTANTIATE
#define WICK_INSTANTIATE(F) template void Binary<fn::F>::eval_cpu(const std::vector<Tensor>&, const Tensor&);
WICK_ARITH_FNS(WICK_INSTANTIATE)
WICK_COMPARE_FNS(WICK_INSTANTIATE)
#undef WICK_INSTANTIATE

void Where::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor &c = in[0], &a = in[1], &b = in[2];
  out.allocate();
  dispatch_all(a.dtype(), [&]<typename T>() {
    const bool* pc = cdata<bool>(c);
    const T* pa = cdata<T>(a);
    const T* pb = cdata<T>(b);
    T* dst = mdata<T>(out);
    parallel_for_each_strided<4>(out.shape(), {out.strides(), c.strides(), a.strides(), b.strides()},
                        [&](int64_t o, int64_t k, int64_t i, int64_t j) { dst[o] = pc[k] ? pa[i] : pb[j]; });
  });
}

void AsType::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor& x = in[0];
  out.allocate();
  dispatch_all(x.dtype(), [&]<typename S>() {
    dispatch_all(out.dtype(), [&]<typename D>() {
      const S* src = cdata<S>(x);
      D* dst = mdata<D>(out);
      parallel_for_each_strided<2>(out.shape(), {out.strides(), x.strides()},
                          [&](int64_t o, int64_t i) { dst[o] = convert<D, S>(src[i]); });
    });
  });
}

void Full::eval_cpu(const std::vector<Tensor>&, const Tensor& out) {
  out.allocate();
  dispatch_all(out.dtype(), [&]<typename T>() {
    T v = convert<T, double>(value_);
    T* dst = mdata<T>(out);
    for (int64_t i = 0, n = out.numel(); i < n; ++i) dst[i] = v;
  });
}

void Arange::eval_cpu(const std::vector<Tensor>&, const Tensor& out) {
  out.allocate();
  dispatch_all(out.dtype(), [&]<typename T>() {
    T* dst = mdata<T>(out);
    for (int64_t i = 0, n = out.numel(); i < n; ++i) dst[i] = convert<T, double>(start_ + double(i) * step_);
  });
}

void Random::eval_cpu(const std::vector<Tensor>&, const Tensor& out) {
  out.allocate();
  float* dst = mdata<float>(out);
  int64_t n = out.numel();
  // Counter-based draws: element i's value depends on i alone, so ranges can run in any order.
  cpu::parallel_for(n, int64_t(1) << 12, [&](int64_t begin, int64_t end) {
    if (kind_ == RandomKind::Uniform) {
      for (int64_t i = begin; i < end; ++i) dst[i] = rng::uniform(seed_, counter_ + uint64_t(i));
    } else {
      for (int64_t i = begin; i < end; ++i) dst[i] = rng::normal(seed_, counter_, uint64_t(i));
    }
  });
}

namespace cpu {
Tensor contiguous_copy(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  AsType().eval_cpu({x}, out);
  return out;
}
}  // namespace cpu

}  // namespace wick
