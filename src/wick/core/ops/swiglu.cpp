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

namespace reference {

Tensor swiglu(const Tensor& gate, const Tensor& up) { return silu(gate) * up; }

}  // namespace reference

}  // namespace wick
