// Matrix products: the op, the dense linear layer built on it, and the vjp of Matmul.
#include "wick/core/ops/matmul.h"

#include "wick/core/ops.h"
#include "wick/core/ops/common.h"

namespace wick {

using detail::check_device;
using detail::check_floating;

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_device("matmul", a, b);
  WICK_CHECK(a.ndim() >= 1 && b.ndim() >= 1, "matmul: operands must have at least 1 dim, got ", shape_str(a.shape()),
             " and ", shape_str(b.shape()));
  check_floating("matmul", a);
  check_floating("matmul", b);
  WICK_CHECK(a.shape(-1) == b.shape(b.ndim() == 1 ? 0 : -2), "matmul: expected a[..., M, K] and b[..., K, N], got ",
             shape_str(a.shape()), " and ", shape_str(b.shape()));
  if (a.ndim() == 1 || b.ndim() == 1) {
    // Promote 1-D operands to matrices, then drop the added dims (N first, then M).
    Tensor out = matmul(a.ndim() == 1 ? unsqueeze(a, 0) : a, b.ndim() == 1 ? unsqueeze(b, 1) : b);
    if (b.ndim() == 1) out = squeeze(out, -1);
    if (a.ndim() == 1) out = squeeze(out, b.ndim() == 1 ? -1 : -2);
    return out;
  }
  int64_t m = a.shape(-2), k = a.shape(-1), n = b.shape(-1);
  Dtype dtype = promote_types(a.dtype(), b.dtype());
  Tensor aa = astype(a, dtype), bb = astype(b, dtype);
  // A plain weight matrix against batched rows: fold the batch into M (one large GEMM).
  if (b.ndim() == 2 && a.ndim() > 2) {
    Shape out_shape(a.shape().begin(), a.shape().end() - 1);
    out_shape.push_back(n);
    int64_t rows = numel(Shape(a.shape().begin(), a.shape().end() - 1));  // not -1: K may be 0
    return reshape(matmul(reshape(aa, {rows, k}), bb), out_shape);
  }
  Shape batch_a(a.shape().begin(), a.shape().end() - 2), batch_b(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(batch_a, batch_b, "matmul");
  Shape sa = batch, sb = batch, so = batch;
  sa.insert(sa.end(), {m, k});
  sb.insert(sb.end(), {k, n});
  so.insert(so.end(), {m, n});
  return Tensor::make(so, dtype, a.device(), std::make_shared<Matmul>(), {broadcast_to(aa, sa), broadcast_to(bb, sb)});
}

Tensor linear(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias) {
  WICK_CHECK(weight.ndim() == 2, "linear: weight must be [out, in], got ", shape_str(weight.shape()));
  WICK_CHECK(x.ndim() >= 1 && x.shape(-1) == weight.shape(1), "linear: input ", shape_str(x.shape()),
             " does not match weight ", shape_str(weight.shape()));
  Tensor y = matmul(x, transpose(weight, 0, 1));
  if (bias) {
    WICK_CHECK(bias->ndim() == 1 && bias->shape(0) == weight.shape(0), "linear: bias ", shape_str(bias->shape()),
               " does not match weight ", shape_str(weight.shape()));
    y = y + *bias;
  }
  return y;
}

std::vector<Tensor> Matmul::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                const Tensor&) {
  std::vector<Tensor> out;
  for (int i : argnums) {
    if (i == 0) out.push_back(matmul(g, transpose(in[1], -1, -2)));
    else out.push_back(matmul(transpose(in[0], -1, -2), g));
  }
  return out;
}

}  // namespace wick
