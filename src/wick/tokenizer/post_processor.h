// Post-processors of HF tokenizer.json ("post_processor" field): add special tokens around a sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "wick/tokenizer/json_util.h"

namespace wick::tok {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Called only when special tokens are requested; a single sequence (no pairs).
  virtual void process(std::vector<int32_t>& ids) const = 0;
  static std::unique_ptr<PostProcessor> from_json(const json& j, const std::string& where);
};

}  // namespace wick::tok
