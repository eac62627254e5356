// Element types, their sizes and names, type promotion, and the one dtype-dispatch helper.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "wick/base/error.h"
#include "wick/base/half.h"

namespace wick {

// Room is left after the dense types for quantized block types.
enum class Dtype : uint8_t { Bool, U8, I32, I64, F16, BF16, F32, F64 };

size_t dtype_size(Dtype dtype);
const char* dtype_name(Dtype dtype);
// Accepts "f32", "float32", "bf16", "bfloat16", "f16", "float16", "f64", "i32", "i64", "u8", "bool".
Dtype parse_dtype(const std::string& name);
bool is_floating(Dtype dtype);
bool is_integral(Dtype dtype);  // bool counts as integral
// The dtype two operands are computed in (PyTorch-like: float beats int, wider beats narrower,
// bf16 with f16 gives f32).
Dtype promote_types(Dtype a, Dtype b);

template <typename T>
struct dtype_of;
template <> struct dtype_of<bool> { static constexpr Dtype value = Dtype::Bool; };
template <> struct dtype_of<uint8_t> { static constexpr Dtype value = Dtype::U8; };
template <> struct dtype_of<int32_t> { static constexpr Dtype value = Dtype::I32; };
template <> struct dtype_of<int64_t> { static constexpr Dtype value = Dtype::I64; };
template <> struct dtype_of<f16> { static constexpr Dtype value = Dtype::F16; };
template <> struct dtype_of<bf16> { static constexpr Dtype value = Dtype::BF16; };
template <> struct dtype_of<float> { static constexpr Dtype value = Dtype::F32; };
template <> struct dtype_of<double> { static constexpr Dtype value = Dtype::F64; };
template <typename T>
inline constexpr Dtype dtype_v = dtype_of<T>::value;

// The type arithmetic on T is carried out in on the CPU (16-bit floats compute in float).
template <typename T> struct compute_type { using type = T; };
template <> struct compute_type<f16> { using type = float; };
template <> struct compute_type<bf16> { using type = float; };
template <typename T>
using compute_t = typename compute_type<T>::type;

// Calls f.template operator()<T>() with T the C++ storage type of dtype, e.g.
//   dispatch_all(x.dtype(), [&]<typename T>() { ... });
// The narrower helpers reject dtypes the caller cannot handle, naming the op.
template <typename F>
decltype(auto) dispatch_all(Dtype dtype, F&& f) {
  switch (dtype) {
    case Dtype::Bool: return f.template operator()<bool>();
    case Dtype::U8: return f.template operator()<uint8_t>();
    case Dtype::I32: return f.template operator()<int32_t>();
    case Dtype::I64: return f.template operator()<int64_t>();
    case Dtype::F16: return f.template operator()<f16>();
    case Dtype::BF16: return f.template operator()<bf16>();
    case Dtype::F32: return f.template operator()<float>();
    case Dtype::F64: return f.template operator()<double>();
  }
  fail("unknown dtype ", int(dtype));
}

template <typename F>
decltype(auto) dispatch_float(Dtype dtype, const char* op, F&& f) {
  switch (dtype) {
    case Dtype::F16: return f.template operator()<f16>();
    case Dtype::BF16: return f.template operator()<bf16>();
    case Dtype::F32: return f.template operator()<float>();
    case Dtype::F64: return f.template operator()<double>();
    default: break;
  }
  fail(op, ": expected a floating dtype, got ", dtype_name(dtype));
}

template <typename F>
decltype(auto) dispatch_index(Dtype dtype, const char* op, F&& f) {
  switch (dtype) {
    case Dtype::I32: return f.template operator()<int32_t>();
    case Dtype::I64: return f.template operator()<int64_t>();
    default: break;
  }
  fail(op, ": expected an index dtype (i32 or i64), got ", dtype_name(dtype));
}

}  // namespace wick
