// The tokenizer stored in a GGUF file's metadata, built with the tokenizer library (the bridge
// between wick_formats and wick_tokenizer, which know nothing of each other).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "wick/io/gguf.h"
#include "wick/io/gguf_model.h"
#include "wick/tokenizer/tokenizer.h"

namespace wick::models {

tok::Tokenizer tokenizer_from_gguf(const io::GgufFile& file);
// The same from the tokenizer metadata already read (io::gguf_tokenizer_data).
tok::Tokenizer tokenizer_from_gguf(const io::GgufTokenizerData& data);
// Its tokenizer.json, as a Hugging Face folder holds it (transformers loads it).
nlohmann::json tokenizer_json_from_gguf(const io::GgufFile& file);

// The other way: the tokenizer.* metadata of a GGUF for the byte-level BPE tokenizer (GPT-2 style:
// SmolLM2, Qwen2, Llama 3) of the Hugging Face folder `dir`, with its special ids and chat
// template; throws wick::Error for other tokenizers (SentencePiece, WordPiece).
std::vector<std::pair<std::string, io::GgufValue>> gguf_tokenizer_metadata(const std::string& dir);

}  // namespace wick::models
