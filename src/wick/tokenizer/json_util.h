// Small helpers to read tokenizer.json fields with errors that name the file and the field.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "wick/core/error.h"

namespace wick::tok {

using json = nlohmann::json;

// `where` is a path such as "tokenizer.json: normalizer.normalizers[1]".
inline const json& require_field(const json& obj, const char* key, const std::string& where) {
  WICK_CHECK(obj.is_object(), where, ": expected an object, got ", obj.type_name());
  auto it = obj.find(key);
  WICK_CHECK(it != obj.end(), where, ": missing field '", key, "'");
  return *it;
}

inline std::string require_string(const json& obj, const char* key, const std::string& where) {
  const json& v = require_field(obj, key, where);
  WICK_CHECK(v.is_string(), where, ".", key, ": expected a string, got ", v.type_name());
  return v.get<std::string>();
}

template <typename T>
T value_or(const json& obj, const char* key, T fallback, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    fail(where, ".", key, ": wrong type (", it->type_name(), ")");
  }
}

inline std::string type_of(const json& obj, const std::string& where) { return require_string(obj, "type", where); }

}  // namespace wick::tok
