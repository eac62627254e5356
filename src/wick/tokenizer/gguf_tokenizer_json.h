// The tokenizer.json that Tokenizer::from_gguf builds from GGUF metadata, complete with every field
// the Hugging Face tokenizers library reads, so it can be written beside a model for transformers.
#pragma once

#include <nlohmann/json.hpp>

#include "wick/tokenizer/tokenizer.h"

namespace wick::tok {

nlohmann::json gguf_tokenizer_json(const GgufTokenizerData& data);

}  // namespace wick::tok
