// Small helpers to read tokenizer.json fields with errors that name the file and the field.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "wick/base/error.h"

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
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // get<T> would convert a float (undefined behavior when out of range) or wrap an integer silently.
    bool fits = it->is_number_unsigned() ? std::in_range<T>(it->get<uint64_t>())
                                         : it->is_number_integer() && std::in_range<T>(it->get<int64_t>());
    WICK_CHECK(fits, where, ".", key, ": expected an integer in [", std::numeric_limits<T>::min(), ", ",
               std::numeric_limits<T>::max(), "], got ", it->dump());
    return it->is_number_unsigned() ? static_cast<T>(it->get<uint64_t>()) : static_cast<T>(it->get<int64_t>());
  }
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    fail(where, ".", key, ": wrong type (", it->type_name(), ")");
  }
}

// Token ids index dense tables (Vocab), so they are bounded: a larger id in a tokenizer.json is
// corrupt data, not a vocabulary (the largest real ones have a few hundred thousand entries).
inline constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;

// The id `v` holds when it is an integer in [0, kMaxTokenId].
inline std::optional<int32_t> as_token_id(const json& v) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u <= static_cast<uint64_t>(kMaxTokenId)) return static_cast<int32_t>(u);
  } else if (v.is_number_integer()) {
    int64_t i = v.get<int64_t>();
    if (i >= 0 && i <= kMaxTokenId) return static_cast<int32_t>(i);
  }
  return std::nullopt;
}

inline int32_t require_token_id(const json& v, const std::string& where) {
  WICK_CHECK(v.is_number_integer(), where, ": expected an integer id, got ", v.type_name());
  auto id = as_token_id(v);
  WICK_CHECK(id, where, ": id ", v.dump(), " is out of range (token ids must be in [0, ", kMaxTokenId, "])");
  return *id;
}

inline std::string type_of(const json& obj, const std::string& where) { return require_string(obj, "type", where); }

}  // namespace wick::tok
