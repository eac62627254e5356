// Decoders of HF tokenizer.json ("decoder" field): token strings -> text.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "wick/tokenizer/json_util.h"

namespace wick::tok {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Transforms the token strings in place (HF decode_chain); the caller joins the result.
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
  static std::unique_ptr<Decoder> from_json(const json& j, const std::string& where);
};

}  // namespace wick::tok
