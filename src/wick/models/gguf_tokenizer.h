// The tokenizer stored in a GGUF file's metadata, built with the tokenizer library (the bridge
// between wick_formats and wick_tokenizer, which know nothing of each other).
#pragma once

#include "wick/io/gguf.h"
#include "wick/tokenizer/tokenizer.h"

namespace wick::models {

tok::Tokenizer tokenizer_from_gguf(const io::GgufFile& file);

}  // namespace wick::models
