// CPU kernels of SwiGLU and its backward (any strides; large tensors split across the thread pool).
// Contiguous f32 operands, the training and prefill case, and f32 matrices with contiguous rows
// (a stacked gate/up product's halves) go through loops the compiler vectorises (the sigmoid from
// vec_math.h, one copy per instruction set); other dtypes and views through the strided loop with
// the scalar functions.
#include <algorithm>

#include "wick/backend/cpu/strided.h"
#include "wick/backend/cpu/thread_pool.h"
#include "wick/backend/cpu/vec_math.h"
#include "wick/core/primitives.h"

namespace wick {

using cpu::cdata;
using cpu::parallel_for_each_strided;
using cpu::mdata;

namespace {

__attribute__((target_clones("avx512f", "avx2,fma", "default"))) void swiglu_f32(const float* __restrict a,
                                                                                const float* __restrict b,
                                                                                float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * cpu::sigmoid_f32(a[i]) * b[i];
}

// d gate = g b s (1 + a (1 - s)), d up = g a s, with s = sigmoid(a).
__attribute__((target_clones("avx512f", "avx2,fma", "default"))) void swiglu_backward_f32(
    const float* __restrict a, const float* __restrict b, const float* __restrict g, float* __restrict d_gate,
    float* __restrict d_up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float av = a[i], s = cpu::sigmoid_f32(av);
    d_gate[i] = g[i] * b[i] * s * (1.0f + av * (1.0f - s));
    d_up[i] = g[i] * av * s;
  }
}

bool all_contiguous_f32(std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    if (t->dtype() != Dtype::F32 || !t->is_contiguous()) return false;
  return true;
}

// f32 matrices whose rows are contiguous at any pitch: the column halves of a stacked gate/up product.
bool rows_contiguous_f32(std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    if (t->dtype() != Dtype::F32 || t->ndim() != 2 || t->strides()[1] != 1 || t->strides()[0] < t->shape(1))
      return false;
  return true;
}

constexpr int64_t kGrain = int64_t(1) << 14;

}  // namespace

void SwiGLU::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor &a = in[0], &b = in[1];
  out.allocate();
  if (all_contiguous_f32({&a, &b}) && a.shape() == out.shape() && b.shape() == out.shape()) {
    const float *pa = cdata<float>(a), *pb = cdata<float>(b);
    float* dst = mdata<float>(out);
    cpu::parallel_for(out.numel(), kGrain, [&](int64_t s, int64_t e) { swiglu_f32(pa + s, pb + s, dst + s, e - s); });
    return;
  }
  if (rows_contiguous_f32({&a, &b}) && a.shape() == out.shape() && b.shape() == out.shape()) {
    const float *pa = cdata<float>(a), *pb = cdata<float>(b);
    float* dst = mdata<float>(out);
    const int64_t cols = out.shape(1), sa = a.strides()[0], sb = b.strides()[0];
    cpu::parallel_for(out.shape(0), std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) swiglu_f32(pa + r * sa, pb + r * sb, dst + r * cols, cols);
    });
    return;
  }
  dispatch_float(a.dtype(), "swiglu", [&]<typename T>() {
    using C = compute_t<T>;
    const T* pa = cdata<T>(a);
    const T* pb = cdata<T>(b);
    T* dst = mdata<T>(out);
    parallel_for_each_strided<3>(out.shape(), {out.strides(), a.strides(), b.strides()}, [&](int64_t o, int64_t i, int64_t j) {
      dst[o] = T(C(fn::Silu{}(C(pa[i])) * C(pb[j])));
    });
  });
}

void SwiGLUBackward::eval_outputs_cpu(const std::vector<Tensor>& in, const std::vector<Tensor>& outs) {
  const Tensor &a = in[0], &b = in[1], &g = in[2];
  const Tensor &d_gate = outs[0], &d_up = outs[1];
  allocate_outputs(in, outs);  // side by side when gate and up are (split's vjp then joins them)
  // Contiguous gate and up: the outputs are contiguous too (allocate_outputs).
  if (all_contiguous_f32({&a, &b, &g}) && b.shape() == a.shape() && g.shape() == a.shape()) {
    const float *pa = cdata<float>(a), *pb = cdata<float>(b), *pg = cdata<float>(g);
    float *dg = mdata<float>(d_gate), *du = mdata<float>(d_up);
    cpu::parallel_for(a.numel(), kGrain, [&](int64_t s, int64_t e) {
      swiglu_backward_f32(pa + s, pb + s, pg + s, dg + s, du + s, e - s);
    });
    return;
  }
  dispatch_float(a.dtype(), name(), [&]<typename T>() {
    using C = compute_t<T>;
    const T *pa = cdata<T>(a), *pb = cdata<T>(b), *pg = cdata<T>(g);
    T *dst_gate = mdata<T>(d_gate), *dst_up = mdata<T>(d_up);
    parallel_for_each_strided<4>(a.shape(), {d_gate.strides(), a.strides(), b.strides(), g.strides()},
                        [&](int64_t o, int64_t i, int64_t j, int64_t k) {
                          C av = C(pa[i]), bv = C(pb[j]), gv = C(pg[k]);
                          C s = fn::Sigmoid{}(av);
                          dst_gate[o] = T(C(gv * bv * s * (C(1) + av * (C(1) - s))));
                          dst_up[o] = T(C(gv * av * s));
                        });
  });
}

}  // namespace wick
