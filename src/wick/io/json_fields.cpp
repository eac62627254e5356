// Typed JSON field access for the Hugging Face folder file parsers.
#include "wick/io/json_fields.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "wick/base/error.h"

namespace wick::io::detail {

json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open");
  std::stringstream text;
  text << in.rdbuf();
  try {
    return json::parse(text.str());
  } catch (const json::exception& e) {
    fail(path, ": invalid JSON: ", e.what());
  }
}

JsonFields::JsonFields(const json& object, std::string source)
    : object_(&object), source_(std::move(source)) {
  if (!object.is_object()) fail(source_, ": expected a JSON object, got ", object.type_name());
}

void JsonFields::wrong_type(const std::string& key, const char* expected) const {
  std::string got = (*object_)[key].dump();
  if (got.size() > 80) got = got.substr(0, 77) + "...";
  fail(source_, ": field '", key, "' must be ", expected, ", got ", got);
}

const json* JsonFields::raw(const std::string& key) const {
  auto it = object_->find(key);
  if (it == object_->end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<int64_t> JsonFields::integer(const std::string& key) const {
  const json* v = raw(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX)) wrong_type(key, "an int64");
    return v->get<int64_t>();
  }
  // Some configs write integral values as floats (e.g. 2048.0).
  if (v->is_number_float()) {
    double d = v->get<double>();
    if (std::floor(d) == d && std::fabs(d) < 9.2e18) return int64_t(d);
  }
  wrong_type(key, "an integer");
}

std::optional<double> JsonFields::number(const std::string& key) const {
  const json* v = raw(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) wrong_type(key, "a number");
  return v->get<double>();
}

std::optional<bool> JsonFields::boolean(const std::string& key) const {
  const json* v = raw(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) wrong_type(key, "true or false");
  return v->get<bool>();
}

std::optional<std::string> JsonFields::string(const std::string& key) const {
  const json* v = raw(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) wrong_type(key, "a string");
  return v->get<std::string>();
}

std::vector<std::string> JsonFields::strings(const std::string& key) const {
  const json* v = raw(key);
  if (v == nullptr) return {};
  if (!v->is_array()) wrong_type(key, "a list of strings");
  std::vector<std::string> out;
  for (const auto& s : *v) {
    if (!s.is_string()) wrong_type(key, "a list of strings");
    out.push_back(s.get<std::string>());
  }
  return out;
}

std::vector<int64_t> JsonFields::integer_or_list(const std::string& key) const {
  const json* v = raw(key);
  if (v == nullptr) return {};
  if (v->is_number_integer()) return {v->get<int64_t>()};
  if (!v->is_array()) wrong_type(key, "an integer or a list of integers");
  std::vector<int64_t> out;
  for (const auto& x : *v) {
    if (!x.is_number_integer()) wrong_type(key, "an integer or a list of integers");
    out.push_back(x.get<int64_t>());
  }
  return out;
}

std::optional<JsonFields> JsonFields::object(const std::string& key) const {
  const json* v = raw(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_object()) wrong_type(key, "an object");
  return JsonFields(*v, source_ + ": " + key);
}

}  // namespace wick::io::detail
