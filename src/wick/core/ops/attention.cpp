// Scaled dot-product attention: the op, the vjp and the reference composition.
#include "wick/core/ops/attention.h"

#include <cmath>

#include "wick/core/ops.h"
#include "wick/core/ops/common.h"

namespace wick {

using detail::check_device;
using detail::check_floating;
using detail::pick;

namespace {

Tensor bool_mask_to_additive(const Tensor& mask, Dtype dtype) {
  if (mask.dtype() != Dtype::Bool) return astype(mask, dtype);
  return where(mask, zeros({}, dtype, mask.device()), full({}, -INFINITY, dtype, mask.device()));
}

struct AttentionArgs {
  Tensor mask;
  double scale;
};

AttentionArgs attention_args(const Tensor& q, const Tensor& k, const Tensor& v, const std::optional<Tensor>& mask,
                             std::optional<double> scale) {
  const char* op = "scaled_dot_product_attention";
  check_floating(op, q);
  check_device(op, q, k);
  check_device(op, q, v);
  WICK_CHECK(q.ndim() == 4 && k.ndim() == 4 && v.ndim() == 4, op, ": expected q[B, Hq, Tq, D], k[B, Hkv, Tk, D], ",
             "v[B, Hkv, Tk, Dv], got ", shape_str(q.shape()), ", ", shape_str(k.shape()), ", ", shape_str(v.shape()));
  WICK_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype(), op, ": q, k and v must share a dtype, got ",
             dtype_name(q.dtype()), ", ", dtype_name(k.dtype()), ", ", dtype_name(v.dtype()));
  int64_t b = q.shape(0), hq = q.shape(1), tq = q.shape(2), d = q.shape(3);
  int64_t hkv = k.shape(1), tk = k.shape(2);
  WICK_CHECK(k.shape(0) == b && v.shape(0) == b && v.shape(1) == hkv && v.shape(2) == tk && k.shape(3) == d &&
                 hkv > 0 && hq % hkv == 0,
             op, ": incompatible q ", shape_str(q.shape()), ", k ", shape_str(k.shape()), ", v ", shape_str(v.shape()),
             " (heads of q must be a multiple of heads of k/v)");
  AttentionArgs args{Tensor(), scale ? *scale : 1.0 / std::sqrt(double(d))};
  if (mask) {
    check_device(op, q, *mask);
    Shape target{b, hq, tq, tk};
    bool fits = mask->ndim() <= 4;
    for (int i = 1; fits && i <= mask->ndim(); ++i) fits = mask->shape(-i) == 1 || mask->shape(-i) == target[4 - i];
    WICK_CHECK(fits, op, ": mask ", shape_str(mask->shape()), " does not broadcast to ", shape_str(target));
    args.mask = broadcast_to(bool_mask_to_additive(*mask, Dtype::F32), target);
  }
  return args;
}
}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const std::optional<Tensor>& mask,
                                    bool causal, std::optional<double> scale) {
  AttentionArgs a = attention_args(q, k, v, mask, scale);
  std::vector<Tensor> inputs{q, k, v};
  if (a.mask.defined()) inputs.push_back(a.mask);
  Shape shape{q.shape(0), q.shape(1), q.shape(2), v.shape(3)};
  bool keep_lse = grad_enabled() && (q.tracks_grad() || k.tracks_grad() || v.tracks_grad());
  return Tensor::make(shape, q.dtype(), q.device(),
                      std::make_shared<Attention>(a.scale, causal, a.mask.defined(), keep_lse), inputs);
}

std::vector<Tensor> Attention::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                   const Tensor& out) {
  const Tensor &q = in[0], &k = in[1], &v = in[2];
  std::vector<Tensor> inputs = in;
  inputs.push_back(out);
  inputs.push_back(g);
  std::vector<Tensor> all = Tensor::make_siblings({q.shape(), k.shape(), v.shape()}, {q.dtype(), q.dtype(), q.dtype()},
                                                  q.device(),
                                                  std::make_shared<AttentionBackward>(scale_, causal_, has_mask_, lse_),
                                                  inputs);
  lse_ = Tensor();  // one backward per forward, as with any saved tensor
  if (has_mask_) all.push_back(Tensor());  // masks are constants
  return pick(argnums, all);
}

namespace reference {

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const std::optional<Tensor>& mask,
                                    bool causal, std::optional<double> scale) {
  AttentionArgs a = attention_args(q, k, v, mask, scale);
  int64_t b = q.shape(0), hq = q.shape(1), tq = q.shape(2), d = q.shape(3);
  int64_t hkv = k.shape(1), tk = k.shape(2), g = hq / hkv;
  // Group the query heads by the kv head they read, instead of repeating k and v.
  Tensor qg = reshape(q, {b, hkv, g, tq, d});
  Tensor kg = unsqueeze(k, 2), vg = unsqueeze(v, 2);
  Tensor scores = matmul(qg, transpose(kg, -1, -2)) * a.scale;
  if (a.mask.defined()) scores = scores + astype(reshape(contiguous(a.mask), {b, hkv, g, tq, tk}), scores.dtype());
  if (causal) {
    Tensor i = reshape(arange(0, double(tq), 1, Dtype::I64, q.device()), {tq, 1});
    Tensor j = reshape(arange(0, double(tk), 1, Dtype::I64, q.device()), {1, tk});
    Tensor allowed = le(j, i + double(tk - tq));
    scores = where(allowed, scores, full({}, -INFINITY, scores.dtype(), q.device()));
  }
  // A query that sees no key (every score masked) attends to nothing: its output is 0, as in the
  // kernels. Its scores are replaced before the softmax so no NaN reaches values or gradients.
  Tensor zero = zeros({}, scores.dtype(), q.device());
  Tensor sees_a_key = gt(max(scores, {-1}, true), full({}, -INFINITY, scores.dtype(), q.device()));
  Tensor p = where(sees_a_key, wick::softmax(where(sees_a_key, scores, zero), -1), zero);
  return reshape(matmul(p, vg), {b, hq, tq, v.shape(3)});
}

}  // namespace reference

}  // namespace wick
