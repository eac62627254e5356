// Vector-Jacobian products of every primitive, written with ordinary ops so they run on any
// device (and are themselves differentiable where the ops are).
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "wick/core/ops.h"
#include "wick/core/primitives.h"

namespace wick {

std::vector<Tensor> Primitive::vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) {
  fail(name(), ": no gradient is defined for this op");
}

namespace {

Tensor zero_like_scalar(const Tensor& like) { return zeros({}, like.dtype(), like.device()); }

// d out / d x for out = Fn(x), times g. Those written with y = out are listed in
// unary_vjp_reads_output (the rest read x alone).
template <class Fn>
constexpr bool unary_vjp_reads_output = std::is_same_v<Fn, fn::Exp> || std::is_same_v<Fn, fn::Sqrt> ||
                                        std::is_same_v<Fn, fn::Rsqrt> || std::is_same_v<Fn, fn::Tanh> ||
                                        std::is_same_v<Fn, fn::Sigmoid>;
Tensor unary_vjp(fn::Neg, const Tensor&, const Tensor&, const Tensor& g) { return -g; }
Tensor unary_vjp(fn::Exp, const Tensor&, const Tensor& y, const Tensor& g) { return g * y; }
Tensor unary_vjp(fn::Log, const Tensor& x, const Tensor&, const Tensor& g) { return g / x; }
Tensor unary_vjp(fn::Sqrt, const Tensor&, const Tensor& y, const Tensor& g) { return g * 0.5 / y; }
Tensor unary_vjp(fn::Rsqrt, const Tensor&, const Tensor& y, const Tensor& g) { return g * -0.5 * y * y * y; }
Tensor unary_vjp(fn::Abs, const Tensor& x, const Tensor&, const Tensor& g) {
  Tensor z = zero_like_scalar(x);
  return where(gt(x, z), g, where(lt(x, z), -g, zeros({}, g.dtype(), g.device())));
}
Tensor unary_vjp(fn::Tanh, const Tensor&, const Tensor& y, const Tensor& g) { return g * (1.0 - y * y); }
Tensor unary_vjp(fn::Sin, const Tensor& x, const Tensor&, const Tensor& g) { return g * cos(x); }
Tensor unary_vjp(fn::Cos, const Tensor& x, const Tensor&, const Tensor& g) { return -g * sin(x); }
Tensor unary_vjp(fn::Erf, const Tensor& x, const Tensor&, const Tensor& g) {
  return g * (2.0 / std::sqrt(M_PI)) * exp(-(x * x));
}
Tensor unary_vjp(fn::Sigmoid, const Tensor&, const Tensor& y, const Tensor& g) { return g * y * (1.0 - y); }
Tensor unary_vjp(fn::Silu, const Tensor& x, const Tensor&, const Tensor& g) {
  Tensor s = sigmoid(x);
  return g * s * (1.0 + x * (1.0 - s));
}
Tensor unary_vjp(fn::Relu, const Tensor& x, const Tensor&, const Tensor& g) {
  return where(gt(x, zero_like_scalar(x)), g, zeros({}, g.dtype(), g.device()));
}
Tensor unary_vjp(fn::GeluErf, const Tensor& x, const Tensor&, const Tensor& g) {
  Tensor cdf = 0.5 * (1.0 + erf(x * M_SQRT1_2));
  Tensor pdf = exp(-0.5 * x * x) * (1.0 / std::sqrt(2 * M_PI));
  return g * (cdf + x * pdf);
}
Tensor unary_vjp(fn::GeluTanh, const Tensor& x, const Tensor&, const Tensor& g) {
  const double c = std::sqrt(2.0 / M_PI);
  Tensor t = tanh(c * (x + 0.044715 * x * x * x));
  return g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3 * 0.044715 * x * x));
}

// Share of the gradient for maximum/minimum: 1 where a wins, 1/2 on ties (as torch does).
Tensor winner_share(const Tensor& a, const Tensor& b, bool is_max) {
  Tensor one = ones({}, a.dtype(), a.device()), half = full({}, 0.5, a.dtype(), a.device());
  Tensor wins = is_max ? gt(a, b) : lt(a, b);
  return where(wins, one, where(eq(a, b), half, zero_like_scalar(a)));
}

// Only the requested cotangents are computed (a constant operand, e.g. a scalar, costs nothing).
// Div and Pow are the ones written with y = out (binary_vjp_reads_output).
template <class Fn>
constexpr bool binary_vjp_reads_output = std::is_same_v<Fn, fn::Div> || std::is_same_v<Fn, fn::Pow>;
template <class Fn>
std::pair<Tensor, Tensor> binary_vjp(const Tensor& a, const Tensor& b, const Tensor& y, const Tensor& g, bool need_a,
                                     bool need_b) {
  auto when = [](bool need, auto f) { return need ? Tensor(f()) : Tensor(); };
  if constexpr (std::is_same_v<Fn, fn::Add>) return {when(need_a, [&] { return g; }), when(need_b, [&] { return g; })};
  if constexpr (std::is_same_v<Fn, fn::Sub>) return {when(need_a, [&] { return g; }), when(need_b, [&] { return -g; })};
  if constexpr (std::is_same_v<Fn, fn::Mul>)
    return {when(need_a, [&] { return g * b; }), when(need_b, [&] { return g * a; })};
  if constexpr (std::is_same_v<Fn, fn::Div>)
    return {when(need_a, [&] { return g / b; }), when(need_b, [&] { return -g * y / b; })};
  if constexpr (std::is_same_v<Fn, fn::Pow>)
    return {when(need_a, [&] { return g * b * pow(a, b - 1.0); }), when(need_b, [&] { return g * y * log(a); })};
  if constexpr (std::is_same_v<Fn, fn::Maximum> || std::is_same_v<Fn, fn::Minimum>) {
    constexpr bool is_max = std::is_same_v<Fn, fn::Maximum>;
    return {when(need_a, [&] { return g * winner_share(a, b, is_max); }),
            when(need_b, [&] { return g * winner_share(b, a, is_max); })};
  }
  // Comparisons are piecewise constant.
  return {Tensor(), Tensor()};
}

bool requested(const std::vector<int>& argnums, int i) {
  return std::find(argnums.begin(), argnums.end(), i) != argnums.end();
}

std::vector<Tensor> pick(const std::vector<int>& argnums, const std::vector<Tensor>& all) {
  std::vector<Tensor> out;
  for (int i : argnums) out.push_back(all[i]);
  return out;
}

}  // namespace

template <class Fn>
std::vector<Tensor> Unary<Fn>::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                   const Tensor& out) {
  return {unary_vjp(Fn{}, in[0], out, g)};
}

template <class Fn>
std::vector<Tensor> Binary<Fn>::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                    const Tensor& out) {
  auto [da, db] = binary_vjp<Fn>(in[0], in[1], out, g, requested(argnums, 0), requested(argnums, 1));
  return pick(argnums, {da, db});
}

template <class Fn>
bool Unary<Fn>::vjp_reads_output() const {
  return unary_vjp_reads_output<Fn>;
}

template <class Fn>
bool Binary<Fn>::vjp_reads_output() const {
  return binary_vjp_reads_output<Fn>;
}

#define WICK_INSTANTIATE(F) template class Unary<fn::F>;
WICK_UNARY_FNS(WICK_INSTANTIATE)
#undef WICK_INSTANTIATE
#define WICK_INSTANTIATE(F) template class Binary<fn::F>;
WICK_ARITH_FNS(WICK_INSTANTIATE)
WICK_COMPARE_FNS(WICK_INSTANTIATE)
#undef WICK_INSTANTIATE

std::vector<Tensor> Where::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                               const Tensor&) {
  Tensor z = zeros({}, g.dtype(), g.device());
  Tensor da = requested(argnums, 1) ? where(in[0], g, z) : Tensor();
  Tensor db = requested(argnums, 2) ? where(in[0], z, g) : Tensor();
  return pick(argnums, {Tensor(), da, db});
}

std::vector<Tensor> AsType::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>&, const Tensor&) {
  return {astype(g, in[0].dtype())};
}

std::vector<Tensor> ToDevice::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>&, const Tensor&) {
  return {to_device(g, in[0].device())};
}

std::vector<Tensor> Reshape::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>&, const Tensor&) {
  return {reshape(g, in[0].shape())};
}

std::vector<Tensor> Permute::vjp(const std::vector<Tensor>&, const Tensor& g, const std::vector<int>&, const Tensor&) {
  std::vector<int> inverse(perm_.size());
  for (size_t i = 0; i < perm_.size(); ++i) inverse[perm_[i]] = int(i);
  return {permute(g, inverse)};
}

std::vector<Tensor> Slice::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>&, const Tensor&) {
  Tensor base = zeros(in[0].shape(), g.dtype(), g.device());
  return {Tensor::make(base.shape(), g.dtype(), g.device(), std::make_shared<SliceUpdate>(start_, step_), {base, g})};
}

std::vector<Tensor> BroadcastTo::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>&,
                                     const Tensor&) {
  const Shape& from = in[0].shape();
  const Shape& to = g.shape();
  size_t lead = to.size() - from.size();
  std::vector<int> dims;
  for (size_t i = 0; i < to.size(); ++i)
    if (i < lead || (from[i - lead] == 1 && to[i] != 1)) dims.push_back(int(i));
  return {reshape(sum(g, dims, true), from)};
}

const char* Reduce::name() const {
  switch (kind_) {
    case ReduceKind::Sum: return "sum";
    case ReduceKind::Max: return "max";
    case ReduceKind::Min: return "min";
  }
  return "reduce";
}

std::vector<Tensor> Reduce::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>&,
                                const Tensor& out) {
  const Tensor& x = in[0];
  if (kind_ == ReduceKind::Sum) return {broadcast_to(g, x.shape())};
  // The gradient is shared evenly between tied extremes (torch.amax semantics).
  Tensor hit = astype(eq(x, out), g.dtype());
  Tensor count = sum(hit, axes_, true);
  return {broadcast_to(g, x.shape()) * hit / count};
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

std::vector<Tensor> Gather::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                const Tensor&) {
  Tensor base = zeros(in[0].shape(), g.dtype(), g.device());
  Tensor dx = Tensor::make(base.shape(), g.dtype(), g.device(), std::make_shared<ScatterAdd>(axis_), {base, in[1], g});
  return pick(argnums, {dx, Tensor()});
}

std::vector<Tensor> ScatterAdd::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                    const Tensor&) {
  Tensor dsrc = Tensor::make(in[2].shape(), g.dtype(), g.device(), std::make_shared<Gather>(axis_), {g, in[1]});
  return pick(argnums, {g, Tensor(), dsrc});
}

std::vector<Tensor> SliceUpdate::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                     const Tensor&) {
  const Tensor& src = in[1];
  Tensor hole = zeros(src.shape(), g.dtype(), g.device());
  Tensor ddst = Tensor::make(g.shape(), g.dtype(), g.device(), std::make_shared<SliceUpdate>(start_, step_), {g, hole});
  Tensor dsrc = Tensor::make(src.shape(), g.dtype(), g.device(), std::make_shared<Slice>(start_, step_), {g});
  return pick(argnums, {ddst, dsrc});
}

std::vector<Tensor> Concat::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                const Tensor&) {
  std::vector<Tensor> all;
  int64_t start = 0;
  for (const Tensor& x : in) {
    all.push_back(narrow(g, axis_, start, x.shape(axis_)));
    start += x.shape(axis_);
  }
  return pick(argnums, all);
}

std::vector<Tensor> Softmax::vjp(const std::vector<Tensor>&, const Tensor& g, const std::vector<int>&, const Tensor& y) {
  return {Tensor::make(y.shape(), y.dtype(), y.device(), std::make_shared<SoftmaxBackward>(log_), {y, g})};
}

namespace {
// Sums a per-row quantity [..., H] down to [H].
Tensor sum_rows(const Tensor& x) { return sum(reshape(x, {-1, x.shape(-1)}), {0}); }
}  // namespace

std::vector<Tensor> LayerNorm::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                   const Tensor&) {
  const Tensor& x = in[0];
  std::vector<Tensor> all(in.size());
  for (int i : argnums) {
    if (i == 0) {
      std::vector<Tensor> inputs{x};
      if (has_weight_) inputs.push_back(in[1]);
      inputs.push_back(g);
      all[0] = Tensor::make(x.shape(), x.dtype(), x.device(), std::make_shared<NormBackward>(false, eps_, has_weight_), inputs);
    }
  }
  bool want_params = std::any_of(argnums.begin(), argnums.end(), [](int i) { return i > 0; });
  if (want_params) {
    // Weight and bias gradients are sums over rows; x-hat is recomputed from x.
    Tensor mu = mean(x, {-1}, true);
    Tensor centered = x - mu;
    Tensor xhat = centered * rsqrt(mean(centered * centered, {-1}, true) + eps_);
    if (has_weight_) all[1] = sum_rows(g * xhat);
    if (has_bias_) all[has_weight_ ? 2 : 1] = sum_rows(g);
  }
  return pick(argnums, all);
}

std::vector<Tensor> RMSNorm::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                 const Tensor&) {
  const Tensor& x = in[0];
  std::vector<Tensor> all(2);
  for (int i : argnums) {
    if (i == 0)
      all[0] = Tensor::make(x.shape(), x.dtype(), x.device(), std::make_shared<NormBackward>(true, eps_, true), {x, in[1], g});
    if (i == 1) all[1] = sum_rows(g * x * rsqrt(mean(x * x, {-1}, true) + eps_));
  }
  return pick(argnums, all);
}

std::vector<Tensor> RoPE::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                              const Tensor&) {
  // A rotation's transpose is the rotation by the opposite angle.
  Tensor dx = Tensor::make(g.shape(), g.dtype(), g.device(),
                           std::make_shared<RoPE>(interleaved_, rotary_dim_, !inverse_), {g, in[1], in[2]});
  return pick(argnums, {dx, Tensor(), Tensor()});
}

std::vector<Tensor> SwiGLU::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                const Tensor&) {
  Shape packed_shape = in[0].shape();
  packed_shape.insert(packed_shape.begin(), 2);
  Tensor packed = Tensor::make(packed_shape, in[0].dtype(), in[0].device(), std::make_shared<SwiGLUBackward>(), {in[0], in[1], g});
  return pick(argnums, {squeeze(narrow(packed, 0, 0, 1), 0), squeeze(narrow(packed, 0, 1, 1), 0)});
}

std::vector<Tensor> Attention::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                   const Tensor& out) {
  const Tensor &q = in[0], &k = in[1], &v = in[2];
  std::vector<Tensor> inputs = in;
  inputs.push_back(out);
  inputs.push_back(g);
  int64_t nq = q.numel(), nk = k.numel(), nv = v.numel();
  Tensor packed = Tensor::make({nq + nk + nv}, q.dtype(), q.device(),
                               std::make_shared<AttentionBackward>(scale_, causal_, has_mask_), inputs);
  std::vector<Tensor> all{reshape(narrow(packed, 0, 0, nq), q.shape()), reshape(narrow(packed, 0, nq, nk), k.shape()),
                          reshape(narrow(packed, 0, nq + nk, nv), v.shape())};
  if (has_mask_) all.push_back(Tensor());  // masks are constants
  return pick(argnums, all);
}

std::vector<Tensor> LoraDelta::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                   const Tensor&) {
  const Tensor &x = in[0], &a = in[1], &b = in[2];
  // lora_add's output has the base's shape; the update's products work on [M, out].
  Tensor g2d = accumulate_ ? reshape(g, {x.shape(0), b.shape(0)}) : g;
  Tensor gb = matmul(g2d, b) * scale_;  // [M, r]
  std::vector<Tensor> all;
  for (int i : argnums) {
    if (i == 0) all.push_back(matmul(gb, a));
    else if (i == 1) all.push_back(matmul(transpose(gb, 0, 1), x));
    else if (i == 2) all.push_back(matmul(transpose(g2d, 0, 1), matmul(x, transpose(a, 0, 1))) * scale_);
    else all.push_back(g);  // lora_add's base passes straight through
  }
  return all;
}

std::vector<Tensor> CrossEntropy::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                      const Tensor&) {
  Tensor dlogits = Tensor::make(in[0].shape(), in[0].dtype(), in[0].device(),
                                std::make_shared<CrossEntropyBackward>(ignore_index_), {in[0], in[1], astype(g, Dtype::F32)});
  return pick(argnums, {dlogits, Tensor()});
}

}  // namespace wick
