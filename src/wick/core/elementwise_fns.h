// The scalar math of elementwise primitives, shared by the CPU and CUDA backends (host/device).
// Each functor computes in the compute type C (float for 16-bit floats, else the type itself).
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#if defined(__CUDACC__)
#define WICK_HD __host__ __device__ __forceinline__
#else
#define WICK_HD inline
#endif

namespace wick::fn {

using std::erf;
using std::exp;
using std::log;
using std::pow;
using std::sqrt;
using std::tanh;
using std::sin;
using std::cos;

// --- unary ---
struct Neg { static constexpr const char* name = "neg"; template <class C> WICK_HD C operator()(C x) const { return -x; } };
struct Exp { static constexpr const char* name = "exp"; template <class C> WICK_HD C operator()(C x) const { return exp(x); } };
struct Log { static constexpr const char* name = "log"; template <class C> WICK_HD C operator()(C x) const { return log(x); } };
struct Sqrt { static constexpr const char* name = "sqrt"; template <class C> WICK_HD C operator()(C x) const { return sqrt(x); } };
struct Rsqrt { static constexpr const char* name = "rsqrt"; template <class C> WICK_HD C operator()(C x) const { return C(1) / sqrt(x); } };
struct Abs { static constexpr const char* name = "abs"; template <class C> WICK_HD C operator()(C x) const { return x < C(0) ? -x : x; } };
struct Tanh { static constexpr const char* name = "tanh"; template <class C> WICK_HD C operator()(C x) const { return tanh(x); } };
struct Sin { static constexpr const char* name = "sin"; template <class C> WICK_HD C operator()(C x) const { return sin(x); } };
struct Cos { static constexpr const char* name = "cos"; template <class C> WICK_HD C operator()(C x) const { return cos(x); } };
struct Erf { static constexpr const char* name = "erf"; template <class C> WICK_HD C operator()(C x) const { return erf(x); } };
struct Sigmoid {
  static constexpr const char* name = "sigmoid";
  template <class C> WICK_HD C operator()(C x) const { return C(1) / (C(1) + exp(-x)); }
};
struct Silu {
  static constexpr const char* name = "silu";
  template <class C> WICK_HD C operator()(C x) const { return x / (C(1) + exp(-x)); }
};
struct Relu { static constexpr const char* name = "relu"; template <class C> WICK_HD C operator()(C x) const { return x > C(0) ? x : C(0); } };
// GELU with the exact erf form (PyTorch approximate='none').
struct GeluErf {
  static constexpr const char* name = "gelu";
  template <class C> WICK_HD C operator()(C x) const { return C(0.5) * x * (C(1) + erf(x * C(0.70710678118654752440))); }
};
// GELU with the tanh approximation (PyTorch approximate='tanh', HF "gelu_new"/"gelu_pytorch_tanh").
struct GeluTanh {
  static constexpr const char* name = "gelu_tanh";
  template <class C> WICK_HD C operator()(C x) const {
    return C(0.5) * x * (C(1) + tanh(C(0.79788456080286535588) * (x + C(0.044715) * x * x * x)));
  }
};

// --- binary ---
struct Add { static constexpr const char* name = "add"; template <class C> WICK_HD C operator()(C a, C b) const { return a + b; } };
struct Sub { static constexpr const char* name = "sub"; template <class C> WICK_HD C operator()(C a, C b) const { return a - b; } };
struct Mul {
  static constexpr const char* name = "mul";
  template <class C> WICK_HD C operator()(C a, C b) const {
    if constexpr (std::is_same_v<C, bool>) return a && b;  // as torch: bool * bool is logical and
    else return a * b;
  }
};
struct Div { static constexpr const char* name = "div"; template <class C> WICK_HD C operator()(C a, C b) const { return a / b; } };
struct Pow { static constexpr const char* name = "pow"; template <class C> WICK_HD C operator()(C a, C b) const { return pow(a, b); } };
// NaN-propagating, like torch.maximum/minimum.
struct Maximum {
  static constexpr const char* name = "maximum";
  template <class C> WICK_HD C operator()(C a, C b) const { return (a != a || a > b) ? a : b; }
};
struct Minimum {
  static constexpr const char* name = "minimum";
  template <class C> WICK_HD C operator()(C a, C b) const { return (a != a || a < b) ? a : b; }
};

// --- comparisons (bool result) ---
struct Equal { static constexpr const char* name = "eq"; template <class C> WICK_HD bool operator()(C a, C b) const { return a == b; } };
struct NotEqual { static constexpr const char* name = "ne"; template <class C> WICK_HD bool operator()(C a, C b) const { return a != b; } };
struct Less { static constexpr const char* name = "lt"; template <class C> WICK_HD bool operator()(C a, C b) const { return a < b; } };
struct LessEqual { static constexpr const char* name = "le"; template <class C> WICK_HD bool operator()(C a, C b) const { return a <= b; } };
struct Greater { static constexpr const char* name = "gt"; template <class C> WICK_HD bool operator()(C a, C b) const { return a > b; } };
struct GreaterEqual { static constexpr const char* name = "ge"; template <class C> WICK_HD bool operator()(C a, C b) const { return a >= b; } };

}  // namespace wick::fn

// X-macro lists used to instantiate the templated primitives in each backend.
#define WICK_UNARY_FNS(X) X(Neg) X(Exp) X(Log) X(Sqrt) X(Rsqrt) X(Abs) X(Tanh) X(Sin) X(Cos) X(Erf) X(Sigmoid) X(Silu) X(Relu) X(GeluErf) X(GeluTanh)
#define WICK_ARITH_FNS(X) X(Add) X(Sub) X(Mul) X(Div) X(Pow) X(Maximum) X(Minimum)
#define WICK_COMPARE_FNS(X) X(Equal) X(NotEqual) X(Less) X(LessEqual) X(Greater) X(GreaterEqual)

namespace wick::fn {

// Stable small ids of the elementwise functors, used by fused kernels (fusion.h) to name them.
#define WICK_ID_ENUM(F) F,
enum class UnaryId : uint8_t { WICK_UNARY_FNS(WICK_ID_ENUM) Count };
enum class ArithId : uint8_t { WICK_ARITH_FNS(WICK_ID_ENUM) Count };
#undef WICK_ID_ENUM

template <class Fn> struct unary_id;
template <class Fn> struct arith_id;
#define WICK_ID_OF(F) template <> struct unary_id<F> { static constexpr UnaryId value = UnaryId::F; };
WICK_UNARY_FNS(WICK_ID_OF)
#undef WICK_ID_OF
#define WICK_ID_OF(F) template <> struct arith_id<F> { static constexpr ArithId value = ArithId::F; };
WICK_ARITH_FNS(WICK_ID_OF)
#undef WICK_ID_OF

// Applies the functor named by `id` (the dispatch of fused kernels).
template <class C>
WICK_HD C apply_unary(UnaryId id, C x) {
  switch (id) {
#define WICK_CASE(F) case UnaryId::F: return F{}(x);
    WICK_UNARY_FNS(WICK_CASE)
#undef WICK_CASE
    default: return x;
  }
}
template <class C>
WICK_HD C apply_arith(ArithId id, C a, C b) {
  switch (id) {
#define WICK_CASE(F) case ArithId::F: return F{}(a, b);
    WICK_ARITH_FNS(WICK_CASE)
#undef WICK_CASE
    default: return a;
  }
}

}  // namespace wick::fn
