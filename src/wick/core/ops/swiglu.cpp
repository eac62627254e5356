// SwiGLU: the op, the vjp and the reference composition.
#include "wick/core/ops/swiglu.h"

#include "wick/core/ops.h"
#include "wick/core/ops/common.h"

namespace wick {

using detail::check_device;
using detail::check_floating;
using detail::pick;

Tensor swiglu(const Tensor& gate, const Tensor& up) {
  check_floating("swiglu", gate);
  check_device("swiglu", gate, up);
  WICK_CHECK(gate.shape() == up.shape() && gate.dtype() == up.dtype(), "swiglu: gate ", gate.str(), " and up ",
             up.str(), " must have the same shape and dtype");
  return Tensor::make(gate.shape(), gate.dtype(), gate.device(), std::make_shared<SwiGLU>(), {gate, up});
}

std::vector<Tensor> SwiGLU::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                const Tensor&) {
  const Shape& shape = in[0].shape();
  Dtype dtype = in[0].dtype();
  return pick(argnums, Tensor::make_siblings({shape, shape}, {dtype, dtype}, in[0].device(),
                                             std::make_shared<SwiGLUBackward>(), {in[0], in[1], g}));
}

void SwiGLUBackward::allocate_outputs(const std::vector<Tensor>& in, const std::vector<Tensor>& outs) {
  const Tensor &gate = in[0], &up = in[1];
  bool halves = gate.ndim() > 0 && gate.storage() == up.storage() && gate.strides() == up.strides() &&
                gate.strides().back() == 1 && up.offset() == gate.offset() + gate.shape().back();
  if (halves) {
    Tensor::allocate_side_by_side(outs);
  } else {
    for (const Tensor& t : outs) t.allocate();
  }
}

namespace reference {

Tensor swiglu(const Tensor& gate, const Tensor& up) { return silu(gate) * up; }

}  // namespace reference

}  // namespace wick
