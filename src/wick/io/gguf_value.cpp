// Typed access to GGUF metadata values, with errors that name the key and both types.
#include <limits>

#include "wick/base/error.h"
#include "wick/io/gguf.h"

namespace wick::io {

bool GgufValue::is_integer() const {
  return std::holds_alternative<uint64_t>(value) || std::holds_alternative<int64_t>(value);
}

int64_t GgufValue::as_int(std::string_view what) const {
  if (const auto* u = std::get_if<uint64_t>(&value)) {
    if (*u > uint64_t(std::numeric_limits<int64_t>::max())) fail(what, ": ", *u, " does not fit in int64");
    return int64_t(*u);
  }
  if (const auto* i = std::get_if<int64_t>(&value)) return *i;
  fail(what, ": expected an integer, got ", gguf_value_type_name(type));
}

uint64_t GgufValue::as_uint(std::string_view what) const {
  if (const auto* u = std::get_if<uint64_t>(&value)) return *u;
  if (const auto* i = std::get_if<int64_t>(&value)) {
    if (*i < 0) fail(what, ": expected a non-negative integer, got ", *i);
    return uint64_t(*i);
  }
  fail(what, ": expected an unsigned integer, got ", gguf_value_type_name(type));
}

double GgufValue::as_float(std::string_view what) const {
  if (const auto* d = std::get_if<double>(&value)) return *d;
  if (const auto* u = std::get_if<uint64_t>(&value)) return double(*u);
  if (const auto* i = std::get_if<int64_t>(&value)) return double(*i);
  fail(what, ": expected a number, got ", gguf_value_type_name(type));
}

bool GgufValue::as_bool(std::string_view what) const {
  if (const auto* b = std::get_if<bool>(&value)) return *b;
  fail(what, ": expected a bool, got ", gguf_value_type_name(type));
}

const std::string& GgufValue::as_string(std::string_view what) const {
  if (const auto* s = std::get_if<std::string>(&value)) return *s;
  fail(what, ": expected a string, got ", gguf_value_type_name(type));
}

const GgufArray& GgufValue::as_array(std::string_view what) const {
  if (const auto* a = std::get_if<GgufArray>(&value)) return *a;
  fail(what, ": expected an array, got ", gguf_value_type_name(type));
}

}  // namespace wick::io
