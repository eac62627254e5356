// A compiled PCRE2 regular expression (UTF + Unicode properties) for split patterns.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "wick/tokenizer/json_util.h"

namespace wick::tok {

class Regex {
 public:
  // Throws wick::Error naming the pattern and the PCRE2 message when it does not compile.
  explicit Regex(const std::string& pattern);
  // A regex that matches `literal` exactly.
  static Regex literal(std::string_view literal);

  // Non-overlapping matches from left to right as [start, end) byte offsets; `text` must be valid UTF-8.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::string pattern_;
  std::shared_ptr<Code> code_;
};

// A tokenizer.json pattern: {"String": literal} or {"Regex": pcre}.
Regex pattern_from_json(const json& j, const std::string& where);

}  // namespace wick::tok
