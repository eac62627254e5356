// Elementwise ops: dtype promotion and broadcasting, then a Unary/Binary/Where node; the vjps of
// those primitives.
#include "wick/core/ops/elementwise.h"

#include <cmath>
#include <type_traits>

#include "wick/core/ops.h"
#include "wick/core/ops/common.h"

namespace wick {

using detail::pick;
using detail::requested;

namespace {

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  WICK_CHECK(a.device() == b.device(), op, ": tensors are on different devices (", a.device().str(), " and ",
             b.device().str(), ")");
}

template <class Fn>
Tensor unary(const Tensor& x, bool float_only = true) {
  Tensor in = x;
  if (float_only && !is_floating(x.dtype())) in = astype(x, Dtype::F32);
  return Tensor::make(in.shape(), in.dtype(), in.device(), std::make_shared<Unary<Fn>>(), {in});
}

template <class Fn>
Tensor binary(const Tensor& a, const Tensor& b, bool compare = false) {
  check_same_device(Fn::name, a, b);
  Dtype dtype = promote_types(a.dtype(), b.dtype());
  Shape shape = broadcast_shapes(a.shape(), b.shape(), Fn::name);
  Tensor aa = broadcast_to(astype(a, dtype), shape);
  Tensor bb = broadcast_to(astype(b, dtype), shape);
  return Tensor::make(shape, compare ? Dtype::Bool : dtype, a.device(), std::make_shared<Binary<Fn>>(), {aa, bb});
}

// A double operand becomes a 0-dim tensor of the other operand's dtype (f32 for a fractional
// value against an integer tensor; i64 for a whole one against a bool tensor, as in torch).
Tensor scalar_like(double value, const Tensor& like) {
  Dtype dtype = like.dtype();
  if (!is_floating(dtype) && value != std::floor(value)) dtype = Dtype::F32;
  else if (dtype == Dtype::Bool) dtype = Dtype::I64;
  return scalar(value, dtype, like.device());
}

}  // namespace

Tensor neg(const Tensor& x) { return unary<fn::Neg>(x, false); }
Tensor exp(const Tensor& x) { return unary<fn::Exp>(x); }
Tensor log(const Tensor& x) { return unary<fn::Log>(x); }
Tensor sqrt(const Tensor& x) { return unary<fn::Sqrt>(x); }
Tensor rsqrt(const Tensor& x) { return unary<fn::Rsqrt>(x); }
Tensor abs(const Tensor& x) { return unary<fn::Abs>(x, false); }
Tensor tanh(const Tensor& x) { return unary<fn::Tanh>(x); }
Tensor sin(const Tensor& x) { return unary<fn::Sin>(x); }
Tensor cos(const Tensor& x) { return unary<fn::Cos>(x); }
Tensor sigmoid(const Tensor& x) { return unary<fn::Sigmoid>(x); }
Tensor silu(const Tensor& x) { return unary<fn::Silu>(x); }
Tensor relu(const Tensor& x) { return unary<fn::Relu>(x, false); }
Tensor gelu(const Tensor& x) { return unary<fn::GeluErf>(x); }
Tensor gelu_tanh(const Tensor& x) { return unary<fn::GeluTanh>(x); }
Tensor erf(const Tensor& x) { return unary<fn::Erf>(x); }
Tensor square(const Tensor& x) { return mul(x, x); }

Tensor add(const Tensor& a, const Tensor& b) { return binary<fn::Add>(a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary<fn::Sub>(a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary<fn::Mul>(a, b); }
Tensor div(const Tensor& a, const Tensor& b) {
  // Integer division would truncate; like torch's true division, compute in floating point.
  if (!is_floating(a.dtype()) && !is_floating(b.dtype())) return binary<fn::Div>(astype(a, Dtype::F32), b);
  return binary<fn::Div>(a, b);
}
Tensor pow(const Tensor& a, const Tensor& b) { return binary<fn::Pow>(a, b); }
Tensor pow(const Tensor& a, double exponent) { return pow(a, scalar_like(exponent, a)); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary<fn::Maximum>(a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary<fn::Minimum>(a, b); }
Tensor eq(const Tensor& a, const Tensor& b) { return binary<fn::Equal>(a, b, true); }
Tensor ne(const Tensor& a, const Tensor& b) { return binary<fn::NotEqual>(a, b, true); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary<fn::Less>(a, b, true); }
Tensor le(const Tensor& a, const Tensor& b) { return binary<fn::LessEqual>(a, b, true); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary<fn::Greater>(a, b, true); }
Tensor ge(const Tensor& a, const Tensor& b) { return binary<fn::GreaterEqual>(a, b, true); }

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  check_same_device("where", condition, a);
  check_same_device("where", a, b);
  WICK_CHECK(condition.dtype() == Dtype::Bool, "where: condition must be bool, got ", dtype_name(condition.dtype()));
  Dtype dtype = promote_types(a.dtype(), b.dtype());
  Shape shape = broadcast_shapes(broadcast_shapes(condition.shape(), a.shape(), "where"), b.shape(), "where");
  return Tensor::make(shape, dtype, a.device(), std::make_shared<Where>(),
                      {broadcast_to(condition, shape), broadcast_to(astype(a, dtype), shape),
                       broadcast_to(astype(b, dtype), shape)});
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, double b) { return add(a, scalar_like(b, a)); }
Tensor operator-(const Tensor& a, double b) { return sub(a, scalar_like(b, a)); }
Tensor operator*(const Tensor& a, double b) { return mul(a, scalar_like(b, a)); }
Tensor operator/(const Tensor& a, double b) { return div(a, scalar_like(b, a)); }
Tensor operator+(double a, const Tensor& b) { return add(scalar_like(a, b), b); }
Tensor operator-(double a, const Tensor& b) { return sub(scalar_like(a, b), b); }
Tensor operator*(double a, const Tensor& b) { return mul(scalar_like(a, b), b); }
Tensor operator/(double a, const Tensor& b) { return div(scalar_like(a, b), b); }

// ---------------------------------------------------------------- vjps
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

}  // namespace wick
