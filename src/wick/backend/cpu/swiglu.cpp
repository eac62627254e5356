// CPU kernels of SwiGLU and its backward (any strides; large tensors split across the thread pool).
#include "wick/backend/cpu/strided.h"
#include "wick/backend/cpu/thread_pool.h"
#include "wick/core/primitives.h"

namespace wick {

using cpu::cdata;
using cpu::parallel_for_each_strided;
using cpu::mdata;

void SwiGLU::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor &a = in[0], &b = in[1];
  out.allocate();
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
