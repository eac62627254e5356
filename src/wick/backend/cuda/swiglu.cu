// CUDA kernels of SwiGLU and its backward (any strides; 16-bit floats compute in float).
#include "wick/backend/cuda/kernel_utils.cuh"
#include "wick/core/primitives.h"

namespace wick {

using cuda::cptr;
using cuda::dev_t;
using cuda::from_c;
using cuda::launch_strided;
using cuda::mptr;
using cuda::to_c;

namespace {

template <typename D>
struct SwiGLUOp {
  const D* a;
  const D* b;
  D* y;
  __device__ void operator()(const int64_t* off) const {
    y[off[0]] = from_c<D>(fn::Silu{}(to_c(a[off[1]])) * to_c(b[off[2]]));
  }
};

// d gate and d up of silu(a) * b, written to two outputs of one layout.
template <typename D>
struct SwiGLUBackwardOp {
  const D* a;
  const D* b;
  const D* g;
  D* d_gate;
  D* d_up;
  __device__ void operator()(const int64_t* off) const {
    using C = cuda::dcompute_t<D>;
    C av = to_c(a[off[1]]), bv = to_c(b[off[2]]), gv = to_c(g[off[3]]);
    C s = C(1) / (C(1) + exp(-av));
    d_gate[off[0]] = from_c<D>(gv * bv * s * (C(1) + av * (C(1) - s)));
    d_up[off[0]] = from_c<D>(gv * av * s);
  }
};

}  // namespace

void SwiGLUBackward::eval_outputs_cuda(const std::vector<Tensor>& in, const std::vector<Tensor>& outs) {
  const Tensor &a = in[0], &b = in[1], &g = in[2];
  const Tensor &d_gate = outs[0], &d_up = outs[1];
  d_gate.allocate();
  d_up.allocate();
  dispatch_float(a.dtype(), name(), [&]<typename T>() {
    launch_strided<4>(a.shape(), {contiguous_strides(a.shape()), a.strides(), b.strides(), g.strides()},
                      d_gate.device().index,
                      SwiGLUBackwardOp<dev_t<T>>{cptr<T>(a), cptr<T>(b), cptr<T>(g), mptr<T>(d_gate), mptr<T>(d_up)},
                      name());
  });
}

void SwiGLU::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor &a = in[0], &b = in[1];
  out.allocate();
  dispatch_float(a.dtype(), "swiglu", [&]<typename T>() {
    launch_strided<3>(out.shape(), {out.strides(), a.strides(), b.strides()}, out.device().index,
                      SwiGLUOp<dev_t<T>>{cptr<T>(a), cptr<T>(b), mptr<T>(out)}, "swiglu");
  });
}

}  // namespace wick
