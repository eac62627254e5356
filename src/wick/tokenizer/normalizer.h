// Normalizers of HF tokenizer.json ("normalizer" field): text -> normalized text.
#pragma once

#include <memory>
#include <string>

#include "wick/tokenizer/json_util.h"

namespace wick::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
  // Builds a normalizer from its JSON object; `where` names it in errors (unknown types included).
  static std::unique_ptr<Normalizer> from_json(const json& j, const std::string& where);
};

}  // namespace wick::tok
