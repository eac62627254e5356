// Typed, optional field access on a JSON object, with errors naming the file and field.
// Internal to wick_formats (the Hugging Face folder file parsers).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace wick::io::detail {

using nlohmann::json;

// Parses the file at `path` as JSON; errors name the path (and the parser's position).
json read_json_file(const std::string& path);

// Fields of one JSON object. Absent and null fields read as std::nullopt (HF writes null for
// "unset"); a present field of the wrong type throws wick::Error naming `source` and the field.
class JsonFields {
 public:
  JsonFields(const json& object, std::string source);

  const json* raw(const std::string& key) const;  // nullptr when absent or null
  std::optional<int64_t> integer(const std::string& key) const;
  std::optional<double> number(const std::string& key) const;  // integer or float
  std::optional<bool> boolean(const std::string& key) const;
  std::optional<std::string> string(const std::string& key) const;
  std::vector<std::string> strings(const std::string& key) const;
  // An integer or a list of integers (HF's eos_token_id may be either).
  std::vector<int64_t> integer_or_list(const std::string& key) const;
  // A nested object's fields (std::nullopt when absent or null).
  std::optional<JsonFields> object(const std::string& key) const;

  const std::string& source() const { return source_; }
  [[noreturn]] void wrong_type(const std::string& key, const char* expected) const;

 private:
  const json* object_;
  std::string source_;
};

}  // namespace wick::io::detail
