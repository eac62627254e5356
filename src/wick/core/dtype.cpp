// Dtype names, sizes and promotion rules.
#include "wick/core/dtype.h"

namespace wick {

size_t dtype_size(Dtype dtype) {
  switch (dtype) {
    case Dtype::Bool: case Dtype::U8: return 1;
    case Dtype::F16: case Dtype::BF16: return 2;
    case Dtype::I32: case Dtype::F32: return 4;
    case Dtype::I64: case Dtype::F64: return 8;
  }
  fail("unknown dtype ", int(dtype));
}

const char* dtype_name(Dtype dtype) {
  switch (dtype) {
    case Dtype::Bool: return "bool";
    case Dtype::U8: return "u8";
    case Dtype::I32: return "i32";
    case Dtype::I64: return "i64";
    case Dtype::F16: return "f16";
    case Dtype::BF16: return "bf16";
    case Dtype::F32: return "f32";
    case Dtype::F64: return "f64";
  }
  return "unknown";
}

Dtype parse_dtype(const std::string& name) {
  if (name == "f32" || name == "float32" || name == "float") return Dtype::F32;
  if (name == "bf16" || name == "bfloat16") return Dtype::BF16;
  if (name == "f16" || name == "float16" || name == "half") return Dtype::F16;
  if (name == "f64" || name == "float64" || name == "double") return Dtype::F64;
  if (name == "i32" || name == "int32") return Dtype::I32;
  if (name == "i64" || name == "int64") return Dtype::I64;
  if (name == "u8" || name == "uint8") return Dtype::U8;
  if (name == "bool") return Dtype::Bool;
  fail("unknown dtype '", name, "' (expected f32, bf16, f16, f64, i32, i64, u8 or bool)");
}

bool is_floating(Dtype d) { return d == Dtype::F16 || d == Dtype::BF16 || d == Dtype::F32 || d == Dtype::F64; }
bool is_integral(Dtype d) { return !is_floating(d); }

Dtype promote_types(Dtype a, Dtype b) {
  if (a == b) return a;
  if (is_floating(a) != is_floating(b)) return is_floating(a) ? a : b;
  if (is_floating(a)) {
    if ((a == Dtype::F16 && b == Dtype::BF16) || (a == Dtype::BF16 && b == Dtype::F16)) return Dtype::F32;
    return dtype_size(a) >= dtype_size(b) ? a : b;
  }
  if (a == Dtype::Bool) return b;
  if (b == Dtype::Bool) return a;
  return dtype_size(a) >= dtype_size(b) ? a : b;
}

}  // namespace wick
