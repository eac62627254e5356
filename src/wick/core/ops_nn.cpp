// Linear algebra, indexing and neural-network ops (and the reference compositions of the fused ones).
#include <cmath>

#include "wick/core/autograd.h"
#include "wick/core/ops.h"
#include "wick/core/primitives.h"

namespace wick {

namespace {

void check_device(const char* op, const Tensor& a, const Tensor& b) {
  WICK_CHECK(a.device() == b.device(), op, ": tensors are on different devices (", a.device().str(), " and ",
             b.device().str(), ")");
}

void check_floating(const char* op, const Tensor& x) {
  WICK_CHECK(is_floating(x.dtype()), op, ": expected a floating tensor, got ", dtype_name(x.dtype()));
}

void check_index(const char* op, const Tensor& index) {
  WICK_CHECK(index.dtype() == Dtype::I32 || index.dtype() == Dtype::I64, op, ": index must be i32 or i64, got ",
             dtype_name(index.dtype()));
}

Tensor bool_mask_to_additive(const Tensor& mask, Dtype dtype) {
  if (mask.dtype() != Dtype::Bool) return astype(mask, dtype);
  return where(mask, zeros({}, dtype, mask.device()), full({}, -INFINITY, dtype, mask.device()));
}

}  // namespace

// ---------------------------------------------------------------- linear algebra
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

// ---------------------------------------------------------------- indexing
Tensor take(const Tensor& x, const Tensor& index, int dim) {
  check_device("take", x, index);
  check_index("take", index);
  WICK_CHECK(x.ndim() > 0, "take: expected a tensor with at least 1 dim, got a 0-dim tensor");
  int d = normalize_dim(dim, x.ndim(), "take");
  Shape shape(x.shape().begin(), x.shape().begin() + d);
  shape.insert(shape.end(), index.shape().begin(), index.shape().end());
  shape.insert(shape.end(), x.shape().begin() + d + 1, x.shape().end());
  return Tensor::make(shape, x.dtype(), x.device(), std::make_shared<Gather>(d), {x, index});
}

Tensor index_select(const Tensor& x, int dim, const Tensor& index) {
  WICK_CHECK(index.ndim() == 1, "index_select: index must be 1-D, got ", shape_str(index.shape()));
  return take(x, index, dim);
}

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  WICK_CHECK(weight.ndim() == 2, "embedding: weight must be [vocab, hidden], got ", shape_str(weight.shape()));
  return take(weight, ids, 0);
}

Tensor index_add(const Tensor& x, int dim, const Tensor& index, const Tensor& src) {
  check_device("index_add", x, index);
  check_device("index_add", x, src);
  check_index("index_add", index);
  WICK_CHECK(x.ndim() > 0, "index_add: expected a tensor with at least 1 dim, got a 0-dim tensor");
  int d = normalize_dim(dim, x.ndim(), "index_add");
  WICK_CHECK(index.ndim() == 1, "index_add: index must be 1-D, got ", shape_str(index.shape()));
  Shape expected = x.shape();
  expected[d] = index.shape(0);
  WICK_CHECK(src.shape() == expected, "index_add: src must have shape ", shape_str(expected), ", got ",
             shape_str(src.shape()));
  return Tensor::make(x.shape(), x.dtype(), x.device(), std::make_shared<ScatterAdd>(d),
                      {x, index, astype(src, x.dtype())});
}

Tensor slice_update(Tensor dst, const Tensor& src, const Shape& start) {
  check_device("slice_update", dst, src);
  WICK_CHECK(src.ndim() == dst.ndim() && int(start.size()) == dst.ndim(), "slice_update: dst ",
             shape_str(dst.shape()), ", src ", shape_str(src.shape()), " and start ", shape_str(start),
             " must have the same rank");
  for (int i = 0; i < dst.ndim(); ++i)
    WICK_CHECK(start[i] >= 0 && start[i] + src.shape(i) <= dst.shape(i), "slice_update: src ", shape_str(src.shape()),
               " at ", shape_str(start), " does not fit in dst ", shape_str(dst.shape()));
  Shape shape = dst.shape();
  Dtype dtype = dst.dtype();
  Device device = dst.device();
  std::vector<Tensor> inputs;
  inputs.push_back(std::move(dst));
  inputs.push_back(astype(src, dtype));
  return Tensor::make(shape, dtype, device, std::make_shared<SliceUpdate>(start, Shape(start.size(), 1)), std::move(inputs));
}

// ---------------------------------------------------------------- normalisation and activations
Tensor softmax(const Tensor& x, int dim) {
  check_floating("softmax", x);
  int d = normalize_dim(dim, x.ndim(), "softmax");
  if (x.ndim() > 0 && d != x.ndim() - 1) return transpose(softmax(transpose(x, d, -1), -1), d, -1);
  return Tensor::make(x.shape(), x.dtype(), x.device(), std::make_shared<Softmax>(false), {x});
}

Tensor log_softmax(const Tensor& x, int dim) {
  check_floating("log_softmax", x);
  int d = normalize_dim(dim, x.ndim(), "log_softmax");
  if (x.ndim() > 0 && d != x.ndim() - 1) return transpose(log_softmax(transpose(x, d, -1), -1), d, -1);
  return Tensor::make(x.shape(), x.dtype(), x.device(), std::make_shared<Softmax>(true), {x});
}

Tensor layer_norm(const Tensor& x, const std::optional<Tensor>& weight, const std::optional<Tensor>& bias, double eps) {
  check_floating("layer_norm", x);
  WICK_CHECK(x.ndim() >= 1, "layer_norm: input must have at least 1 dim");
  int64_t h = x.shape(-1);
  std::vector<Tensor> inputs{x};
  for (const auto* p : {&weight, &bias}) {
    if (!*p) continue;
    WICK_CHECK((*p)->shape() == Shape{h}, "layer_norm: weight/bias must be [", h, "] for input ",
               shape_str(x.shape()), ", got ", shape_str((*p)->shape()));
    check_device("layer_norm", x, **p);
    inputs.push_back(astype(**p, x.dtype()));
  }
  return Tensor::make(x.shape(), x.dtype(), x.device(),
                      std::make_shared<LayerNorm>(eps, weight.has_value(), bias.has_value()), inputs);
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  check_floating("rms_norm", x);
  WICK_CHECK(x.ndim() >= 1, "rms_norm: input must have at least 1 dim");
  WICK_CHECK(weight.shape() == Shape{x.shape(-1)}, "rms_norm: weight must be [", x.shape(-1),
             "] for input ", shape_str(x.shape()), ", got ", shape_str(weight.shape()));
  check_device("rms_norm", x, weight);
  return Tensor::make(x.shape(), x.dtype(), x.device(), std::make_shared<RMSNorm>(eps), {x, astype(weight, x.dtype())});
}

Tensor swiglu(const Tensor& gate, const Tensor& up) {
  check_floating("swiglu", gate);
  check_device("swiglu", gate, up);
  WICK_CHECK(gate.shape() == up.shape() && gate.dtype() == up.dtype(), "swiglu: gate ", gate.str(), " and up ",
             up.str(), " must have the same shape and dtype");
  return Tensor::make(gate.shape(), gate.dtype(), gate.device(), std::make_shared<SwiGLU>(), {gate, up});
}

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
  Tensor y = Tensor::make({x2.shape(0), b.shape(0)}, dtype, x.device(), std::make_shared<LoraDelta>(scale),
                          {x2, astype(a, dtype), astype(b, dtype)});
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
  return Tensor::make(out_shape, dtype, x.device(), std::make_shared<LoraDelta>(scale, true, donate),
                      {x2, astype(a, dtype), astype(b, dtype), std::move(base)});
}

namespace reference {
Tensor lora_delta(const Tensor& x, const Tensor& a, const Tensor& b, double scale) {
  return matmul(matmul(x, transpose(a, 0, 1)), transpose(b, 0, 1)) * scale;
}
Tensor lora_add(const Tensor& base, const Tensor& x, const Tensor& a, const Tensor& b, double scale) {
  return base + reference::lora_delta(x, a, b, scale);
}
}  // namespace reference

// ---------------------------------------------------------------- rotary embeddings
Tensor rope_inv_freq(int rotary_dim, double theta, Device device) {
  WICK_CHECK(rotary_dim > 0 && rotary_dim % 2 == 0, "rope: rotary_dim must be positive and even, got ", rotary_dim);
  std::vector<float> f(rotary_dim / 2);
  for (int i = 0; i < rotary_dim / 2; ++i) f[i] = float(1.0 / std::pow(theta, double(2 * i) / rotary_dim));
  return Tensor::from_vector(f, {int64_t(f.size())}, device);
}

namespace {
struct RopeArgs {
  Tensor positions, inv_freq;
  int rotary_dim;
};

RopeArgs rope_args(const Tensor& x, const Tensor& positions, const RopeOptions& options) {
  check_floating("rope", x);
  WICK_CHECK(x.ndim() == 4, "rope: expected x[batch, heads, seq, head_dim], got ", shape_str(x.shape()));
  check_index("rope", positions);
  check_device("rope", x, positions);
  int64_t b = x.shape(0), t = x.shape(2), d = x.shape(3);
  int rd = options.rotary_dim < 0 ? int(d) : options.rotary_dim;
  WICK_CHECK(rd > 0 && rd % 2 == 0 && rd <= d, "rope: rotary_dim ", rd, " must be even and at most head_dim ", d);
  Tensor pos = positions;
  if (pos.ndim() == 1) pos = unsqueeze(pos, 0);
  WICK_CHECK(pos.ndim() == 2 && pos.shape(1) == t && (pos.shape(0) == b || pos.shape(0) == 1),
             "rope: positions must be [seq] or [batch, seq] for x ", shape_str(x.shape()), ", got ",
             shape_str(positions.shape()));
  pos = contiguous(broadcast_to(astype(pos, Dtype::I64), {b, t}));
  Tensor inv = options.inv_freq ? *options.inv_freq : rope_inv_freq(rd, options.theta, x.device());
  WICK_CHECK(inv.shape() == Shape{rd / 2}, "rope: inv_freq must be [", rd / 2, "], got ", shape_str(inv.shape()));
  check_device("rope", x, inv);
  return {pos, contiguous(astype(inv, Dtype::F32)), rd};
}
}  // namespace

Tensor rope(const Tensor& x, const Tensor& positions, const RopeOptions& options) {
  RopeArgs a = rope_args(x, positions, options);
  return Tensor::make(x.shape(), x.dtype(), x.device(), std::make_shared<RoPE>(options.interleaved, a.rotary_dim, false),
                      {x, a.positions, a.inv_freq});
}

Tensor rope(const Tensor& x, int64_t offset, const RopeOptions& options) {
  WICK_CHECK(x.ndim() == 4, "rope: expected x[batch, heads, seq, head_dim], got ", shape_str(x.shape()));
  return rope(x, arange(double(offset), double(offset + x.shape(2)), 1, Dtype::I64, x.device()), options);
}

// ---------------------------------------------------------------- attention
namespace {
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
  return Tensor::make(shape, q.dtype(), q.device(), std::make_shared<Attention>(a.scale, causal, a.mask.defined()), inputs);
}

// ---------------------------------------------------------------- loss
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index, Reduction reduction) {
  check_floating("cross_entropy", logits);
  check_index("cross_entropy", targets);
  check_device("cross_entropy", logits, targets);
  WICK_CHECK(logits.ndim() >= 1, "cross_entropy: logits must have a class dim");
  Shape batch(logits.shape().begin(), logits.shape().end() - 1);
  WICK_CHECK(targets.shape() == batch, "cross_entropy: logits ", shape_str(logits.shape()), " need targets of shape ",
             shape_str(batch), ", got ", shape_str(targets.shape()));
  int64_t v = logits.shape(-1);
  Tensor flat_logits = reshape(logits, {-1, v});
  Tensor flat_targets = reshape(targets, {-1});
  Tensor losses = Tensor::make({flat_targets.shape(0)}, Dtype::F32, logits.device(),
                               std::make_shared<CrossEntropy>(ignore_index), {flat_logits, flat_targets});
  if (reduction == Reduction::None) return reshape(losses, batch);
  Tensor total = sum(losses);
  if (reduction == Reduction::Sum) return total;
  Tensor count = astype(sum(ne(flat_targets, scalar(double(ignore_index), flat_targets.dtype(), targets.device()))), Dtype::F32);
  return total / count;
}

// ---------------------------------------------------------------- reference compositions
namespace reference {

Tensor softmax(const Tensor& x, int dim) {
  Tensor e = exp(x - stop_gradient(max(x, {dim}, true)));
  return e / sum(e, {dim}, true);
}

Tensor log_softmax(const Tensor& x, int dim) { return x - logsumexp(x, {dim}, true); }

Tensor layer_norm(const Tensor& x, const std::optional<Tensor>& weight, const std::optional<Tensor>& bias, double eps) {
  Tensor mu = mean(x, {-1}, true);
  Tensor centered = x - mu;
  Tensor var = mean(centered * centered, {-1}, true);
  Tensor y = centered * rsqrt(var + eps);
  if (weight) y = y * *weight;
  if (bias) y = y + *bias;
  return y;
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  return x * rsqrt(mean(x * x, {-1}, true) + eps) * weight;
}

Tensor rope(const Tensor& x, const Tensor& positions, const RopeOptions& options) {
  RopeArgs a = rope_args(x, positions, options);
  int64_t half = a.rotary_dim / 2;
  // angle[b, 1, t, i] = position[b, t] * inv_freq[i]
  Tensor angle = unsqueeze(unsqueeze(astype(a.positions, Dtype::F32), -1) * a.inv_freq, 1);
  Tensor c = astype(cos(angle), x.dtype()), s = astype(sin(angle), x.dtype());
  Tensor rot = narrow(x, -1, 0, a.rotary_dim);
  Tensor out;
  if (!options.interleaved) {
    Tensor x1 = narrow(rot, -1, 0, half), x2 = narrow(rot, -1, half, half);
    out = concat({x1 * c - x2 * s, x2 * c + x1 * s}, -1);
  } else {
    Tensor even = slice(rot, -1, 0, a.rotary_dim, 2), odd = slice(rot, -1, 1, a.rotary_dim, 2);
    Tensor y = stack({even * c - odd * s, odd * c + even * s}, -1);
    out = reshape(y, rot.shape());
  }
  if (a.rotary_dim == x.shape(3)) return out;
  return concat({out, narrow(x, -1, a.rotary_dim, x.shape(3) - a.rotary_dim)}, -1);
}

Tensor swiglu(const Tensor& gate, const Tensor& up) { return silu(gate) * up; }

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

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index, Reduction reduction) {
  int64_t v = logits.shape(-1);
  Tensor flat = reshape(logits, {-1, v});
  Tensor t = reshape(targets, {-1, 1});
  Tensor classes = reshape(arange(0, double(v), 1, t.dtype(), logits.device()), {1, v});
  Tensor picked = sum(where(eq(t, classes), flat, zeros({}, flat.dtype(), flat.device())), {-1});
  Tensor valid = ne(reshape(t, {-1}), scalar(double(ignore_index), t.dtype(), t.device()));
  Tensor losses = where(valid, logsumexp(flat, {-1}) - picked, zeros({}, flat.dtype(), flat.device()));
  if (reduction == Reduction::None) return reshape(losses, targets.shape());
  Tensor total = sum(losses);
  if (reduction == Reduction::Sum) return total;
  return total / astype(sum(valid), total.dtype());
}

}  // namespace reference

}  // namespace wick
