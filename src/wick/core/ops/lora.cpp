// LoRA updates of one adapter: the ops, the vjp and the reference compositions.
#include "wick/core/ops/lora.h"

#include "wick/core/ops.h"
#include "wick/core/ops/common.h"

namespace wick {

using detail::check_device;
using detail::check_floating;

Tensor lora_delta(const Tensor& x, const Tensor& a, const Tensor& b, double scale) {
  check_floating("lora_delta", x);
  check_device("lora_delta", x, a);
  check_device("lora_delta", x, b);
  WICK_CHECK(a.ndim() == 2 && b.ndim() == 2 && x.ndim() >= 1 && a.shape(1) == x.shape(-1) && b.shape(1) == a.shape(0),
             "lora_delta: expected x[..., in], A[r, in], B[out, r], got ", shape_str(x.shape()), ", ",
             shape_str(a.shape()), ", ", shape_str(b.shape()));
  WICK_CHECK(a.shape(0) <= LoraDelta::kMaxRank, "lora_delta: rank ", a.shape(0), " is above the fused limit of ",
             LoraDelta::kMaxRank);
  Dtype dtype = x.dtype();
  Shape out_shape = x.shape();
  out_shape.back() = b.shape(0);
  Tensor x2 = reshape(x, {-1, x.shape(-1)});
  bool keep_xa = grad_enabled() && b.tracks_grad();
  Tensor y = Tensor::make({x2.shape(0), b.shape(0)}, dtype, x.device(),
                          std::make_shared<LoraDelta>(scale, false, false, keep_xa), {x2, astype(a, dtype), astype(b, dtype)});
  return reshape(y, out_shape);
}

Tensor lora_add(Tensor base, const Tensor& x, const Tensor& a, const Tensor& b, double scale) {
  check_floating("lora_add", x);
  check_device("lora_add", x, a);
  check_device("lora_add", x, b);
  check_device("lora_add", x, base);
  WICK_CHECK(a.ndim() == 2 && b.ndim() == 2 && x.ndim() >= 1 && a.shape(1) == x.shape(-1) && b.shape(1) == a.shape(0),
             "lora_add: expected x[..., in], A[r, in], B[out, r], got ", shape_str(x.shape()), ", ",
             shape_str(a.shape()), ", ", shape_str(b.shape()));
  Shape out_shape = x.shape();
  out_shape.back() = b.shape(0);
  WICK_CHECK(base.shape() == out_shape, "lora_add: base ", shape_str(base.shape()), " does not match the update ",
             shape_str(out_shape));
  WICK_CHECK(base.dtype() == x.dtype(), "lora_add: base is ", dtype_name(base.dtype()), " but x is ",
             dtype_name(x.dtype()));
  WICK_CHECK(a.shape(0) <= LoraDelta::kMaxRank, "lora_add: rank ", a.shape(0), " is above the fused limit of ",
             LoraDelta::kMaxRank);
  Dtype dtype = x.dtype();
  // The buffer is taken over when this call holds the only handle on base and can_overwrite allows
  // it (base untraced, or made by a primitive whose vjp does not read it, e.g. a product or its bias
  // add). Decided here, once: the backends follow LoraDelta::donate.
  bool donate = base.is_evaluated() && can_overwrite(base);
  Tensor x2 = reshape(x, {-1, x.shape(-1)});
  bool keep_xa = grad_enabled() && b.tracks_grad();
  return Tensor::make(out_shape, dtype, x.device(), std::make_shared<LoraDelta>(scale, true, donate, keep_xa),
                      {x2, astype(a, dtype), astype(b, dtype), std::move(base)});
}

std::vector<Tensor> LoraDelta::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                   const Tensor&) {
  const Tensor &x = in[0], &a = in[1], &b = in[2];
  // lora_add's output has the base's shape; the update's products work on [M, out].
  Tensor g2d = accumulate_ ? reshape(g, {x.shape(0), b.shape(0)}) : g;
  Tensor gb = matmul(g2d, b * scale_);  // [M, r]; the scale applied to B [out, r], the smaller
  std::vector<Tensor> all;
  for (int i : argnums) {
    if (i == 0) all.push_back(matmul(gb, a));
    else if (i == 1) all.push_back(matmul(transpose(gb, 0, 1), x));
    else if (i == 2) all.push_back(matmul(transpose(g2d, 0, 1), xa_.defined() ? xa_ : matmul(x, transpose(a, 0, 1))) * scale_);
    else all.push_back(g);  // lora_add's base passes straight through
  }
  xa_ = Tensor();
  return all;
}

namespace reference {

Tensor lora_delta(const Tensor& x, const Tensor& a, const Tensor& b, double scale) {
  return matmul(matmul(x, transpose(a, 0, 1)), transpose(b, 0, 1)) * scale;
}
Tensor lora_add(const Tensor& base, const Tensor& x, const Tensor& a, const Tensor& b, double scale) {
  return base + reference::lora_delta(x, a, b, scale);
}

}  // namespace reference

}  // namespace wick
