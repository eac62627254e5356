// The batched-adapter LoRA op: checks, node creation and the reference composition.
#include "wick/core/ops/lora_gather.h"

#include <algorithm>

#include "wick/core/ops.h"
#include "wick/core/ops/common.h"
#include "wick/core/primitives.h"

namespace wick {

namespace {

void check_slots(const char* op, const Tensor& slots, int64_t n) {
  WICK_CHECK(slots.dtype() == Dtype::I32 && slots.ndim() == 1 && slots.shape(0) == n, op,
             ": slots must be i32 [", n, "], got ", dtype_name(slots.dtype()), " ", shape_str(slots.shape()));
}

void check_devices(const char* op, const Tensor& first, std::initializer_list<const Tensor*> rest) {
  for (const Tensor* t : rest) detail::check_device(op, first, *t);
}

// The checks of a shrink of x[N, in] by a_stack[S, r, in] (op names the caller).
void check_shrink(const char* op, const Tensor& x, const Tensor& slots, const Tensor& a_stack) {
  WICK_CHECK(x.ndim() == 2, op, ": expected x[N, in], got ", shape_str(x.shape()));
  int64_t n = x.shape(0), in = x.shape(1);
  WICK_CHECK(a_stack.ndim() == 3 && a_stack.shape(2) == in, op, ": expected a_stack[S, r, ", in, "], got ",
             shape_str(a_stack.shape()));
  int64_t r = a_stack.shape(1);
  WICK_CHECK(r >= 1 && r <= LoraGatherShrink::kMaxRank, op, ": rank ", r, " is outside 1..",
             LoraGatherShrink::kMaxRank);
  check_slots(op, slots, n);
  WICK_CHECK(is_floating(x.dtype()) && a_stack.dtype() == x.dtype(), op,
             ": x and a_stack must share a floating dtype, got ", dtype_name(x.dtype()), " and ",
             dtype_name(a_stack.dtype()));
  check_devices(op, x, {&slots, &a_stack});
}

Dtype shrink_dtype(Dtype x) { return x == Dtype::F64 ? Dtype::F64 : Dtype::F32; }

// The checks of an expand's output parts (widths summing to `out`, each taking r = t's columns / P
// rank columns) against t[N, P r] and b_stack[S, out, r]; one part is the same as none.
void check_parts(const char* op, std::vector<int64_t>& parts, int64_t out, const Tensor& t, const Tensor& b_stack) {
  int64_t covered = 0;
  for (int64_t w : parts) {
    WICK_CHECK(w >= 1, op, ": part widths must be positive, got ", shape_str(parts));
    covered += w;
  }
  WICK_CHECK(parts.empty() || covered == out, op, ": part widths ", shape_str(parts), " sum to ", covered,
             ", not base's ", out, " columns");
  const int64_t num_parts = std::max<int64_t>(1, int64_t(parts.size()));
  WICK_CHECK(t.shape(1) % num_parts == 0, op, ": t's ", t.shape(1), " rank columns do not split into ", num_parts,
             " parts");
  int64_t r = t.shape(1) / num_parts;
  WICK_CHECK(b_stack.ndim() == 3 && b_stack.shape(1) == out && b_stack.shape(2) == r, op, ": expected b_stack[S, ",
             out, ", ", r, "], got ", shape_str(b_stack.shape()));
  if (parts.size() == 1) parts.clear();
}

// The checks shared by the expand and the update alone: the parts, N slots, f32 scales per slot, a
// floating b_stack and t in the shrink's dtype for it (f32, f64 for f64).
void check_update(const char* op, std::vector<int64_t>& parts, int64_t n, int64_t out, const Tensor& t,
                  const Tensor& slots, const Tensor& b_stack, const Tensor& scales) {
  check_parts(op, parts, out, t, b_stack);
  check_slots(op, slots, n);
  const int64_t s = b_stack.shape(0);
  WICK_CHECK(scales.dtype() == Dtype::F32 && scales.ndim() == 1 && scales.shape(0) == s, op,
             ": scales must be f32 [", s, "], got ", dtype_name(scales.dtype()), " ", shape_str(scales.shape()));
  WICK_CHECK(is_floating(b_stack.dtype()), op, ": b_stack must be floating, got ", dtype_name(b_stack.dtype()));
  const Dtype acc = shrink_dtype(b_stack.dtype());
  WICK_CHECK(t.dtype() == acc, op, ": t must be ", dtype_name(acc), " for a ", dtype_name(b_stack.dtype()),
             " b_stack (as lora_gather_shrink gives it), got ", dtype_name(t.dtype()));
}

}  // namespace

Tensor lora_gather_shrink(const Tensor& x, const Tensor& slots, const Tensor& a_stack) {
  check_shrink("lora_gather_shrink", x, slots, a_stack);
  return Tensor::make({x.shape(0), a_stack.shape(1)}, shrink_dtype(x.dtype()), x.device(),
                      std::make_shared<LoraGatherShrink>(), {x, slots, a_stack});
}

std::vector<Tensor> rms_norm_lora_shrink(const Tensor& x, const Tensor& weight, double eps, const Tensor& slots,
                                         const Tensor& a_stack) {
  const char* op = "rms_norm_lora_shrink";
  check_shrink(op, x, slots, a_stack);
  WICK_CHECK(weight.shape() == Shape{x.shape(1)}, op, ": weight must be [", x.shape(1), "] for input ",
             shape_str(x.shape()), ", got ", shape_str(weight.shape()));
  check_devices(op, x, {&weight});
  return Tensor::make_siblings({x.shape(), {x.shape(0), a_stack.shape(1)}}, {x.dtype(), shrink_dtype(x.dtype())},
                               x.device(), std::make_shared<RMSNormLoraShrink>(eps),
                               {x, astype(weight, x.dtype()), slots, a_stack});
}

Tensor lora_gather_expand(Tensor base, const Tensor& t, const Tensor& slots, const Tensor& b_stack,
                          const Tensor& scales, std::vector<int64_t> parts) {
  const char* op = "lora_gather_expand";
  WICK_CHECK(t.ndim() == 2 && base.ndim() == 2 && base.shape(0) == t.shape(0), op,
             ": expected base[N, out] and t[N, r], got ", shape_str(base.shape()), " and ", shape_str(t.shape()));
  WICK_CHECK(is_floating(base.dtype()) && b_stack.dtype() == base.dtype(), op,
             ": base and b_stack must share a floating dtype, got ", dtype_name(base.dtype()), " and ",
             dtype_name(b_stack.dtype()));
  check_update(op, parts, t.shape(0), base.shape(1), t, slots, b_stack, scales);
  check_devices(op, base, {&t, &slots, &b_stack, &scales});
  Shape shape = base.shape();
  Dtype dtype = base.dtype();
  Device device = base.device();
  // Built apart from the call: an initializer list in the call would hold base until it returns,
  // and the node could not take over base's buffer.
  std::vector<Tensor> inputs{std::move(base), t, slots, b_stack, scales};
  return Tensor::make(shape, dtype, device, std::make_shared<LoraGatherExpand>(std::move(parts)), std::move(inputs));
}

Tensor lora_gather_delta(const Tensor& t, const Tensor& slots, const Tensor& b_stack, const Tensor& scales,
                         std::vector<int64_t> parts) {
  const char* op = "lora_gather_delta";
  WICK_CHECK(t.ndim() == 2 && b_stack.ndim() == 3, op, ": expected t[N, r] and b_stack[S, out, r], got ",
             shape_str(t.shape()), " and ", shape_str(b_stack.shape()));
  const int64_t n = t.shape(0), out = b_stack.shape(1);
  check_update(op, parts, n, out, t, slots, b_stack, scales);
  check_devices(op, t, {&slots, &b_stack, &scales});
  return Tensor::make({n, out}, b_stack.dtype(), t.device(), std::make_shared<LoraGatherDelta>(std::move(parts)),
                      {t, slots, b_stack, scales});
}

Tensor lora_gather_add(Tensor base, const Tensor& x, const Tensor& slots, const Tensor& a_stack,
                       const Tensor& b_stack, const Tensor& scales) {
  const char* op = "lora_gather_add";
  WICK_CHECK(x.ndim() == 2 && base.ndim() == 2 && base.shape(0) == x.shape(0), op,
             ": expected base[N, out] and x[N, in], got ", shape_str(base.shape()), " and ", shape_str(x.shape()));
  int64_t in = x.shape(1), out = base.shape(1);
  WICK_CHECK(a_stack.ndim() == 3 && b_stack.ndim() == 3 && a_stack.shape(0) == b_stack.shape(0) &&
                 a_stack.shape(2) == in && b_stack.shape(1) == out && b_stack.shape(2) == a_stack.shape(1),
             op, ": expected a_stack[S, r, ", in, "] and b_stack[S, ", out, ", r], got ", shape_str(a_stack.shape()),
             " and ", shape_str(b_stack.shape()));
  WICK_CHECK(base.dtype() == x.dtype(), op, ": base and x must share a dtype, got ", dtype_name(base.dtype()),
             " and ", dtype_name(x.dtype()));
  return lora_gather_expand(std::move(base), lora_gather_shrink(x, slots, a_stack), slots, b_stack, scales);
}

std::vector<Tensor> swiglu_lora_shrink(const Tensor& gate, const Tensor& up, const Tensor& slots,
                                       const Tensor& a_stack) {
  const char* op = "swiglu_lora_shrink";
  check_shrink(op, gate, slots, a_stack);
  WICK_CHECK(up.shape() == gate.shape() && up.dtype() == gate.dtype(), op, ": gate and up must share shape and dtype, got ",
             gate.str(), " and ", up.str());
  check_devices(op, gate, {&up});
  return Tensor::make_siblings({gate.shape(), {gate.shape(0), a_stack.shape(1)}},
                               {gate.dtype(), shrink_dtype(gate.dtype())}, gate.device(),
                               std::make_shared<SwiGLULoraShrink>(), {gate, up, slots, a_stack});
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
