// The batched-adapter LoRA op: checks, node creation and the reference composition.
#include "wick/core/ops/lora_gather.h"

#include "wick/core/ops.h"
#include "wick/core/primitives.h"

namespace wick {

Tensor lora_gather_add(Tensor base, const Tensor& x, const Tensor& slots, const Tensor& a_stack,
                       const Tensor& b_stack, const Tensor& scales) {
  const char* op = "lora_gather_add";
  WICK_CHECK(x.ndim() == 2 && base.ndim() == 2 && base.shape(0) == x.shape(0), op,
             ": expected base[N, out] and x[N, in], got ", shape_str(base.shape()), " and ", shape_str(x.shape()));
  int64_t n = x.shape(0), in = x.shape(1), out = base.shape(1);
  WICK_CHECK(a_stack.ndim() == 3 && b_stack.ndim() == 3 && a_stack.shape(0) == b_stack.shape(0) &&
                 a_stack.shape(2) == in && b_stack.shape(1) == out && b_stack.shape(2) == a_stack.shape(1),
             op, ": expected a_stack[S, r, ", in, "] and b_stack[S, ", out, ", r], got ", shape_str(a_stack.shape()),
             " and ", shape_str(b_stack.shape()));
  int64_t s = a_stack.shape(0), r = a_stack.shape(1);
  WICK_CHECK(r >= 1 && r <= LoraGatherAdd::kMaxRank, op, ": rank ", r, " is outside 1..", LoraGatherAdd::kMaxRank);
  WICK_CHECK(slots.dtype() == Dtype::I32 && slots.ndim() == 1 && slots.shape(0) == n, op,
             ": slots must be i32 [", n, "], got ", dtype_name(slots.dtype()), " ", shape_str(slots.shape()));
  WICK_CHECK(scales.dtype() == Dtype::F32 && scales.ndim() == 1 && scales.shape(0) == s, op,
             ": scales must be f32 [", s, "], got ", dtype_name(scales.dtype()), " ", shape_str(scales.shape()));
  WICK_CHECK(is_floating(x.dtype()) && base.dtype() == x.dtype() && a_stack.dtype() == x.dtype() &&
                 b_stack.dtype() == x.dtype(),
             op, ": base, x, a_stack and b_stack must share a floating dtype, got ", dtype_name(base.dtype()), ", ",
             dtype_name(x.dtype()), ", ", dtype_name(a_stack.dtype()), ", ", dtype_name(b_stack.dtype()));
  for (const Tensor* t : {&x, &slots, &a_stack, &b_stack, &scales})
    WICK_CHECK(t->device() == base.device(), op, ": tensors are on different devices (", base.device().str(), " and ",
               t->device().str(), ")");
  Shape shape = base.shape();
  Dtype dtype = base.dtype();
  Device device = base.device();
  // Built apart from the call: an initializer list in the call would hold base until it returns,
  // and the node could not take over base's buffer.
  std::vector<Tensor> inputs{std::move(base), x, slots, a_stack, b_stack, scales};
  return Tensor::make(shape, dtype, device, std::make_shared<LoraGatherAdd>(), std::move(inputs));
}

namespace reference {

Tensor lora_gather_add(const Tensor& base, const Tensor& x, const Tensor& slots, const Tensor& a_stack,
                       const Tensor& b_stack, const Tensor& scales) {
  Tensor active = ge(slots, zeros({}, Dtype::I32, slots.device()));                  // [N]
  Tensor index = where(active, slots, zeros({}, Dtype::I32, slots.device()));        // [N], 0 where unused
  Tensor a = take(a_stack, index, 0), b = take(b_stack, index, 0);                   // [N, r, in], [N, out, r]
  Tensor t = matmul(a, unsqueeze(x, 2));                                              // [N, r, 1]
  Tensor update = squeeze(matmul(b, t), 2);                                          // [N, out]
  Tensor scale = astype(where(active, take(scales, index, 0), zeros({}, Dtype::F32, slots.device())), x.dtype());
  return base + update * unsqueeze(scale, 1);
}

}  // namespace reference

}  // namespace wick
