// GGUF tokenizer metadata to a tokenizer.
#include "wick/models/gguf_tokenizer.h"

#include <nlohmann/json.hpp>

#include "wick/io/gguf_model.h"
#include "wick/tokenizer/gguf_tokenizer_json.h"

namespace wick::models {

namespace {

tok::GgufTokenizerData tokenizer_data(const io::GgufTokenizerData& d) {
  tok::GgufTokenizerData t;
  t.model = d.model;
  t.tokens = d.tokens;
  t.scores = d.scores;
  t.token_types = d.token_type;
  t.merges = d.merges;
  auto id = [](const std::optional<int64_t>& v) -> std::optional<int32_t> {
    return v ? std::optional<int32_t>(int32_t(*v)) : std::nullopt;
  };
  t.bos_id = id(d.bos_token_id);
  t.eos_id = id(d.eos_token_id);
  t.unk_id = id(d.unknown_token_id);
  t.pad_id = id(d.padding_token_id);
  t.add_bos = d.add_bos_token.value_or(false);
  t.add_eos = d.add_eos_token.value_or(false);
  t.add_space_prefix = d.add_space_prefix.value_or(true);
  if (!d.pre.empty()) t.pre = d.pre;
  return t;
}

}  // namespace

tok::Tokenizer tokenizer_from_gguf(const io::GgufFile& file) { return tokenizer_from_gguf(io::gguf_tokenizer_data(file)); }

tok::Tokenizer tokenizer_from_gguf(const io::GgufTokenizerData& data) {
  return tok::Tokenizer::from_gguf(tokenizer_data(data));
}

nlohmann::json tokenizer_json_from_gguf(const io::GgufFile& file) {
  return tok::gguf_tokenizer_json(tokenizer_data(io::gguf_tokenizer_data(file)));
}

}  // namespace wick::models
