// Elementwise ops: dtype promotion and broadcasting, then a Unary/Binary/Where node.
#include <cmath>

#include "wick/core/ops.h"
#include "wick/core/primitives.h"

namespace wick {

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

}  // namespace wick
